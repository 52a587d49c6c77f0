"""Explanations of a predictor's calls: overlays, raw heatmaps, 3D, and the report gallery."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from medlens.card import ModelCard
from medlens.errors import ConfigError
from medlens.explain import (
    GALLERY_CATEGORIES,
    explain_images,
    gallery,
    output_stems,
    relevant_slices,
    save_explanation,
)
from medlens.inference import ClassificationPredictor, Predictor
from medlens.io import Image
from medlens.models import create_model
from medlens.transforms.preprocess import Preprocessing

CLASSES = ["normal", "lesion"]


def _predictor(model: torch.nn.Module, size: tuple[int, ...], **prep) -> Predictor:
    preprocessing = Preprocessing(spatial_size=size, scaling="none", **prep)
    card = ModelCard(
        task="binary", architecture=model.model_name, create_model={}, classes=CLASSES,
        preprocessing=preprocessing.model_dump(mode="json"), sha256="0" * 64, threshold=0.5,
    )  # fmt: skip
    return ClassificationPredictor(model, preprocessing, card)


def _upsampled(lesions, indices) -> list[Image]:
    """Lesion images at twice the model's size, so that preprocessing resizes them."""
    arrays = [np.kron(lesions.images[i, 0].numpy(), np.ones((2, 2), np.float32)) for i in indices]
    return [Image(array=a, spacing=(0.5, 0.5)) for a in arrays]


def _png_size(data: bytes) -> tuple[int, int]:
    with PILImage.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        return im.size


def test_explanations_map_back_to_the_original_grid(lesion_model, lesions, tmp_path) -> None:
    positives = np.flatnonzero(lesions.labels.numpy())[:3]
    predictor = _predictor(lesion_model, (32, 32))
    explained = explain_images(predictor, _upsampled(lesions, positives))
    for item, i in zip(explained, positives, strict=True):
        assert item.heatmap.shape == (32, 32) and item.display_heatmap.shape == (64, 64)
        assert item.display.shape == (64, 64) and 0 <= item.display.min() <= item.display.max() <= 1
        assert item.prediction.label == "lesion" and item.target == "lesion"
        peak = np.array(np.unravel_index(item.display_heatmap.argmax(), (64, 64)))
        assert np.hypot(*(peak - 2 * lesions.centres[i] - 0.5)) <= 2 * (lesions.radius + 2)
        assert "predicted lesion" in item.title and "gradcam for lesion" in item.title
    png, npy = save_explanation(explained[0], tmp_path / "out", "case")
    assert _png_size(png.read_bytes())[0] > 200
    assert np.array_equal(np.load(npy), explained[0].heatmap)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["case.npy", "case.png"]


def test_explicit_target_by_name_or_index(lesion_model, lesions) -> None:
    predictor = _predictor(lesion_model, (32, 32))
    images = _upsampled(lesions, [0])
    by_name = explain_images(predictor, images, target="normal", method="gradcam++")[0]
    by_index = explain_images(predictor, images, target=0, method="gradcam++")[0]
    assert by_name.target == by_index.target == "normal"
    assert np.array_equal(by_name.heatmap, by_index.heatmap)
    with pytest.raises(ConfigError, match="unknown target class 'tumour'"):
        explain_images(predictor, images, target="tumour")


def test_pad_crop_preprocessing_shows_the_model_input(lesion_model, lesions) -> None:
    predictor = _predictor(lesion_model, (32, 32), size_mode="pad_crop")
    item = explain_images(
        predictor, [Image(array=lesions.images[1, 0].numpy()[:30], spacing=(1, 1))]
    )[0]
    assert item.display.shape == item.display_heatmap.shape == (32, 32)


def test_volume_heatmap_and_slice_overlay() -> None:
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=1, in_chans=1, spatial_dims=3).eval()
    volume = np.random.default_rng(0).normal(size=(10, 20, 20)).astype(np.float32)
    predictor = _predictor(model, (8, 16, 16))
    item = explain_images(predictor, [Image(array=volume, spacing=(2.0, 1.0, 1.0))], target=1)[0]
    assert item.heatmap.shape == (8, 16, 16) and item.display_heatmap.shape == (10, 20, 20)
    assert np.isfinite(item.display_heatmap).all() and item.display_heatmap.max() <= 1
    width, _ = _png_size(item.overlay_png())
    assert width > 600  # three slices side by side


def test_relevant_slices_pick_the_hottest() -> None:
    heat = np.zeros((6, 4, 4), np.float32)
    heat[4] = 1.0
    heat[1, 0, 0] = 3.0
    heat[2, :1] = 0.5  # total 2 < 3 (slice 1) < 16 (slice 4)
    assert relevant_slices(heat, 2) == [1, 4]
    assert relevant_slices(heat, 10) == list(range(6))


def test_gallery_sorts_true_and_false_calls(lesion_model, lesions) -> None:
    predictor = _predictor(lesion_model, (32, 32))
    indices = list(range(12))
    images = _upsampled(lesions, indices)
    truth = [CLASSES[int(lesions.labels[i])] for i in indices]
    truth[0] = "normal" if truth[0] == "lesion" else "lesion"  # one wrong call either way
    truth[1] = "lesion" if truth[0] == "normal" else "normal"
    result = gallery(predictor, images, truth, per_category=2)
    categories = [c for c, _ in result]
    assert set(categories) == set(GALLERY_CATEGORIES)
    assert categories.count("true positive") == 2
    assert all(_png_size(png)[0] > 200 for _, png in result)
    with pytest.raises(ConfigError, match="positive class"):
        gallery(predictor, images, truth, positive="tumour")


def test_output_stems_are_unique() -> None:
    a = Image(array=np.zeros((4, 4)), spacing=(1, 1), source="x/scan.nii.gz")
    b = Image(array=np.zeros((4, 4)), spacing=(1, 1), source="y/scan.nii.gz")
    c = Image(array=np.zeros((4, 4)), spacing=(1, 1))
    assert output_stems([a, b, c], "gradcam") == [
        "scan-1.gradcam",
        "scan-2.gradcam",
        "image0002.gradcam",
    ]


def test_onnx_engine_is_refused(lesion_model) -> None:
    predictor = _predictor(lesion_model, (32, 32))
    predictor.model = lambda batch: batch  # what an ONNX Runtime session looks like here
    with pytest.raises(ConfigError, match="PyTorch engine"):
        explain_images(predictor, [Image(array=np.zeros((32, 32)), spacing=(1, 1))])
