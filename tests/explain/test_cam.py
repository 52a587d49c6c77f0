"""Explainer contract: heatmap shape/range, every method and model kind, no side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.errors import ConfigError
from medlens.explain import DEFAULT_METHOD, METHODS, Explainer, explain
from medlens.models import create_model


def _check(maps: np.ndarray, shape: tuple[int, ...]) -> None:
    assert maps.shape == shape and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0
    assert maps.max() > 0.5  # normalised per image, not all zero


@pytest.mark.parametrize("method", METHODS)
def test_cnn_heatmaps_have_input_shape_and_lie_in_unit_range(method: str, lesion_model) -> None:
    x = torch.randn(2, 1, 32, 32)
    x[:, :, 10:15, 10:15] += 2
    with Explainer(lesion_model, method, occlusion_window=8) as explainer:
        _check(explainer(x), (2, 32, 32))
        _check(explainer(x, targets=[0, 1]), (2, 32, 32))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_vit_tokens_are_mapped_to_the_patch_grid(method: str) -> None:
    torch.manual_seed(0)
    model = create_model("vit_small", num_classes=3, in_chans=1, image_size=32, depth=2).eval()
    _check(explain(model, torch.randn(2, 1, 32, 48), method=method, targets=2), (2, 32, 48))


def test_torchvision_backbone_non_square_three_channels() -> None:
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=4, in_chans=3).eval()
    _check(explain(model, torch.randn(1, 3, 64, 96)), (1, 64, 96))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "occlusion"])
def test_volumes_give_volume_heatmaps(method: str) -> None:
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=2, in_chans=1, spatial_dims=3).eval()
    x = torch.randn(1, 1, 12, 20, 16)
    with Explainer(model, method, occlusion_window=4) as explainer:
        _check(explainer(x, targets=1), (1, 12, 20, 16))


def test_scorecam_refuses_volumes() -> None:
    model = create_model("simple_cnn", num_classes=2, in_chans=1, spatial_dims=3)
    with pytest.raises(ConfigError, match="2D inputs only"):
        explain(model, torch.randn(1, 1, 8, 8, 8), method="scorecam")


def _hooks(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


@pytest.mark.parametrize("method", METHODS)
def test_model_is_unchanged_after_explaining(method: str) -> None:
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=3, in_chans=1, batch_norm=True)
    model.conv1.requires_grad_(False)  # partly frozen, in training mode, with gradients
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    x = torch.randn(2, 1, 28, 28)
    before_state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    model.eval()
    with torch.no_grad():
        before_out = model(x)
    model.train()
    hooks = _hooks(model)

    with Explainer(model, method, occlusion_window=7) as explainer:
        explainer(x)
        explainer(x, targets=2)

    assert model.training and all(m.training for m in model.modules())
    assert _hooks(model) == hooks
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert {
        n: p.grad for n, p in model.named_parameters() if p.grad is not None
    }.keys() == grads.keys()
    for name, param in model.named_parameters():
        if name in grads:
            assert torch.equal(param.grad, grads[name])
    for key, value in model.state_dict().items():
        assert torch.equal(value, before_state[key]), key
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), before_out)


def test_hooks_are_removed_when_the_block_raises() -> None:
    model = create_model("simple_cnn", num_classes=2, in_chans=1)
    with pytest.raises(RuntimeError, match="boom"), Explainer(model):
        assert _hooks(model) > 0
        raise RuntimeError("boom")
    assert _hooks(model) == 0 and model.training


def test_works_under_inference_mode_and_on_a_frozen_model() -> None:
    model = create_model("simple_cnn", num_classes=2, in_chans=1).eval().requires_grad_(False)
    with torch.inference_mode():
        x = torch.randn(1, 1, 28, 28)
        _check(explain(model, x, targets=1), (1, 28, 28))
    assert not any(p.requires_grad for p in model.parameters())


def test_default_target_is_the_predicted_class(lesion_model) -> None:
    x = 0.3 * torch.randn(3, 1, 32, 32)
    x[0, :, 5:10, 20:25] += 2
    with torch.no_grad():
        predicted = (lesion_model(x)[:, 0] > 0).long().tolist()
    assert set(predicted) == {0, 1}
    for method in ("gradcam", "occlusion"):  # the two ways of picking the predicted class
        with Explainer(lesion_model, method, occlusion_window=8) as explainer:
            assert np.array_equal(explainer(x), explainer(x, targets=predicted)), method


def test_bad_use_is_a_config_error() -> None:
    model = create_model("simple_cnn", num_classes=2, in_chans=1)
    with pytest.raises(ConfigError, match="unknown explanation method"):
        Explainer(model, "lime")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no layer"):
        Explainer(model, target_layer="conv9")
    with pytest.raises(ConfigError, match="context manager"):
        Explainer(model)(torch.randn(1, 1, 28, 28))
    with pytest.raises(ConfigError, match="3 targets given for 1"):
        explain(model, torch.randn(1, 1, 28, 28), targets=[0, 1, 0])
    with pytest.raises(ConfigError, match="batch"):
        explain(model, torch.randn(1, 28, 28))
    assert DEFAULT_METHOD == "gradcam"


def test_target_layer_override(lesion_model) -> None:
    x = torch.randn(1, 1, 32, 32)
    x[:, :, 20:25, 8:13] += 2
    coarse = explain(lesion_model, x, targets=1)
    fine = explain(lesion_model, x, targets=1, target_layer="conv2.2")
    _check(fine, (1, 32, 32))
    assert not np.array_equal(coarse, fine)


def test_public_names_exist_and_are_sorted() -> None:
    import medlens.explain

    assert medlens.explain.__all__ == sorted(medlens.explain.__all__)
    assert all(hasattr(medlens.explain, name) for name in medlens.explain.__all__)
