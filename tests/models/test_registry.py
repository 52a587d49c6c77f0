"""Every registered model honours the shared interface (one parametrized test per model)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medlens.errors import ConfigError, ModelError
from medlens.models import create_model, list_models, load_weights, model_info, save_weights

SIZE = 32
SIZE_3D = 16  # 3D-only models get (B, C, 16, 16, 16) volumes

# foundation backbones (ViT-B/L at full size) are covered on tiny snapshots in test_foundation
CLASSIFIERS = [n for n in list_models(kind="classifier") if model_info(n).family != "foundation"]


def _size(name: str) -> int:
    return SIZE_3D if model_info(name).spatial_dims == (3,) else SIZE


def _shape(name: str, batch: int, chans: int, extra: int = 0) -> tuple[int, ...]:
    """An input shape for ``name``: 2D images, or volumes for 3D-only models."""
    if model_info(name).spatial_dims == (3,):
        return (batch, chans, SIZE_3D, SIZE_3D, SIZE_3D + extra // 2)
    return (batch, chans, SIZE, SIZE + extra)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_model_contract(name: str, tmp_path) -> None:
    model = create_model(name, num_classes=2, in_chans=1, image_size=_size(name))
    assert model.model_name == name
    assert model.default_cfg.input_size == _size(name) and len(model.default_cfg.mean) == 1

    # forward, square and non-square input
    model.eval()
    for shape in [_shape(name, 2, 1), _shape(name, 2, 1, extra=16)]:
        x = torch.randn(shape)
        out = model(x)
        assert out.shape == (2, 2)
        assert torch.equal(model.forward_head(model.forward_features(x)), out)

    # backward: every trainable parameter gets a finite gradient
    model.train()
    model(torch.randn(_shape(name, 2, 1))).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

    # pre-logits features feed the classifier
    model.eval()
    x = torch.randn(_shape(name, 3, 1))
    feats = model.forward_head(model.forward_features(x), pre_logits=True)
    assert feats.shape == (3, model.get_classifier().in_features)

    # save / load round trip gives the same output
    path = save_weights(model, tmp_path / "w.safetensors")
    fresh = create_model(name, num_classes=2, in_chans=1, image_size=_size(name)).eval()
    load_weights(fresh, path)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))

    # reset_classifier changes the output size only
    model.reset_classifier(5)
    assert model(x).shape == (3, 5) and model.num_classes == 5

    # cam_layer and stages name real modules; stages are disjoint and exclude the classifier
    assert isinstance(model.get_submodule(model.cam_layer), nn.Module)
    staged = [n for group in model.stages for n in group]
    assert len(staged) == len(set(staged))
    classifier = {id(p) for p in model.get_classifier().parameters()}
    for module_name in staged:
        params = {id(p) for p in model.get_submodule(module_name).parameters()}
        assert params and not params & classifier


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_three_channels_five_classes(name: str) -> None:
    model = create_model(name, num_classes=5, in_chans=3, image_size=_size(name)).eval()
    assert model(torch.randn(_shape(name, 1, 3))).shape == (1, 5)
    assert len(model.default_cfg.mean) == 3


def test_simple_cnn_3d_and_any_size() -> None:
    model = create_model("simple_cnn", num_classes=3, in_chans=1, spatial_dims=3).eval()
    assert model(torch.randn(2, 1, 12, 20, 16)).shape == (2, 3)
    small = create_model("simple_cnn", num_classes=1, in_chans=1).eval()
    assert small(torch.randn(1, 1, 9, 13)).shape == (1, 1)


def test_vit_patch_defaults_and_checks() -> None:
    assert create_model("vit_small", num_classes=2, image_size=28).patch_size == 4
    assert create_model("vit_small", num_classes=2, depth=1).patch_size == 16
    model = create_model("vit_small", num_classes=2, in_chans=1, image_size=28, depth=1)
    with pytest.raises(ModelError, match="patch size"):
        model(torch.randn(1, 1, 28, 30))
    with pytest.raises(ConfigError, match="multiple"):
        create_model("vit_small", num_classes=2, image_size=30)


def test_vit_reshape_transform_lays_tokens_on_the_grid() -> None:
    model = create_model("vit_small", num_classes=2, in_chans=1, image_size=16, depth=1)
    tokens = torch.arange(2 * 13 * 3, dtype=torch.float32).reshape(2, 13, 3)
    grid = model.reshape_transform((1, 1, 12, 16))(tokens)
    assert grid.shape == (2, 3, 3, 4)
    assert torch.equal(grid[1, :, 0, 1], tokens[1, 2])  # token 1+1 is row 0, col 1


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(ModelError, match="did you mean resnet18"):
        create_model("resnet81", num_classes=2)
    with pytest.raises(ModelError, match="unknown model 'xyz'"):
        model_info("xyz")


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="does not take depth"):
        create_model("resnet18", num_classes=2, depth=3)
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("resnet18", num_classes=0)
    with pytest.raises(ConfigError, match="drop_rate"):
        create_model("simple_cnn", num_classes=2, drop_rate=1.5)


def test_list_models_and_info() -> None:
    assert list_models("resnet??") == ["resnet18", "resnet34", "resnet50"]
    info = model_info("efficientnet_lite0")
    assert info.family == "efficientnet" and info.cfg.imagenet == "bundled"
    assert "drop_path_rate" in info.options
    assert model_info("simple_cnn").cfg.spatial_dims == (2, 3)
    assert all(model_info(n).description for n in list_models())


def test_drop_rate_is_applied() -> None:
    model = create_model("resnet18", num_classes=2, drop_rate=0.3)
    assert math.isclose(model.head_drop.p, 0.3)


def test_public_names_exist_and_are_sorted() -> None:
    import medlens.models

    assert medlens.models.__all__ == sorted(medlens.models.__all__)
    assert all(hasattr(medlens.models, name) for name in medlens.models.__all__)


def test_3d_simple_cnn_pools_like_torch_and_exports(tmp_path) -> None:
    """The separable 3D adaptive pool equals torch's, so 3D classifiers export to ONNX."""
    from medlens.models.cnn import AdaptiveAvgPool3d

    x = torch.randn(2, 3, 7, 5, 6)
    expected = torch.nn.AdaptiveAvgPool3d(2)(x)
    torch.testing.assert_close(AdaptiveAvgPool3d(2)(x), expected, rtol=1e-6, atol=1e-6)
    pytest.importorskip("onnxruntime")
    from medlens.export import OnnxModel, export_onnx

    model = create_model(
        "simple_cnn", num_classes=1, in_chans=1, image_size=16, spatial_dims=3, widths=[4, 8, 8]
    ).eval()
    volumes = torch.randn(2, 1, 16, 16, 16)
    path = export_onnx(model, volumes, tmp_path / "cnn3d.onnx")
    with torch.no_grad():
        torch.testing.assert_close(OnnxModel(path)(volumes), model(volumes), rtol=1e-4, atol=1e-5)
