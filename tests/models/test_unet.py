"""Segmentation networks: shapes in 2D and 3D, one copy of each weight, safe round trip."""

from __future__ import annotations

import pytest
import torch

from medlens.errors import ConfigError, ModelError
from medlens.training.checkpoint import load_weights, save_weights

pytest.importorskip("monai")

from medlens.models import create_model, list_models, model_info  # noqa: E402

TOPOLOGY_3D = {
    "kernel_sizes": [[3, 3, 3], [3, 3, 3], [1, 3, 3]],
    "strides": [[1, 1, 1], [2, 2, 2], [1, 2, 2]],
    "filters": [4, 8, 16],
}


def test_3d_logits_per_voxel_and_weights_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model("dynunet", num_classes=3, in_chans=1, **TOPOLOGY_3D).eval()
    x = torch.randn(2, 1, 8, 16, 12)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 3, 8, 16, 12) and model.spatial_dims == 3
    assert isinstance(model.get_submodule(model.cam_layer), torch.nn.Module)
    # skip connections do not duplicate weights in the state dict (safetensors refuses that)
    params = {id(p) for p in model.parameters()}
    assert len(params) == sum(1 for k in model.state_dict() if not k.endswith("running_mean"))
    path = tmp_path / "unet.safetensors"
    save_weights(model, path)
    fresh = create_model("dynunet", num_classes=3, in_chans=1, **TOPOLOGY_3D).eval()
    load_weights(fresh, path)
    with torch.no_grad():
        assert torch.equal(fresh(x), out)


def test_2d_and_bad_topologies() -> None:
    model = create_model(
        "dynunet",
        num_classes=2,
        in_chans=3,
        kernel_sizes=[[3, 3]] * 3,
        strides=[[1, 1], [2, 2], [2, 2]],
        filters=[4, 8, 16],
    )
    assert model(torch.randn(1, 3, 32, 24)).shape == (1, 2, 32, 24)
    assert list_models(kind="segmenter") == ["dynunet"]
    assert "dynunet" not in list_models(kind="classifier")
    assert model_info("dynunet").spatial_dims == (2, 3)
    with pytest.raises(ConfigError, match="one entry per level"):
        create_model("dynunet", num_classes=2, kernel_sizes=[[3, 3]], strides=[[1, 1]], filters=[4])
    with pytest.raises(ConfigError, match="segmenter"):
        create_model("dynunet", num_classes=2, image_size=64, **TOPOLOGY_3D)
    with pytest.raises(ModelError, match="did you mean dynunet"):
        create_model("dynunett", num_classes=2, **TOPOLOGY_3D)
