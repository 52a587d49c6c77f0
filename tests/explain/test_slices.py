"""Per-slice attention of slice-sequence runs: weights, ranked strips, refusals."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from medlens.errors import ConfigError
from medlens.explain.slices import (
    SliceAttention,
    is_slice_sequence,
    slice_attention,
    slice_strip_png,
)
from medlens.io.base import raster_affine
from medlens.io.image import Image
from medlens.models import create_model
from medlens.transforms.preprocess import preprocessing_from_dict


class _Predictor:
    """The parts of a ClassificationPredictor that the slice view uses."""

    def __init__(self, aggregator: str) -> None:
        torch.manual_seed(0)
        self.model = create_model(
            "slice_seq", num_classes=1, in_chans=1, image_size=16,
            encoder="simple_cnn", aggregator=aggregator, dim=16,
        ).eval()  # fmt: skip
        self.preprocessing = preprocessing_from_dict({"spatial_size": [5, 16, 16]})

    def predict(self, images: list[Image]) -> list[SimpleNamespace]:
        return [SimpleNamespace(label="yes", probabilities={"no": 0.3, "yes": 0.7}) for _ in images]


def _volume() -> Image:
    array = np.random.default_rng(0).random((5, 16, 16)).astype(np.float32)
    return Image(array, (1.0, 1.0, 1.0), raster_affine((1.0, 1.0, 1.0)))


def test_weights_sum_to_one_and_rank_the_slices() -> None:
    (item,) = slice_attention(_Predictor("attention"), [_volume()])
    assert item.weights.shape == (5,) and item.display.shape == (5, 16, 16)
    assert item.weights.sum() == pytest.approx(1.0, abs=1e-5)
    ranked = item.ranked()
    assert sorted(ranked) == list(range(5))
    assert item.weights[ranked[0]] == item.weights.max()
    record = item.to_dict()
    assert record["ranked_slices"] == ranked and record["label"] == "yes"


def test_strip_png_shows_the_top_slices() -> None:
    weights = np.array([0.1, 0.6, 0.3])
    prediction = SimpleNamespace(label="yes", probabilities={"yes": 0.9})
    item = SliceAttention(weights, np.zeros((3, 8, 8)), prediction)
    png = PILImage.open(io.BytesIO(slice_strip_png(item, top=2)))
    assert png.format == "PNG" and png.width > png.height / 2


def test_models_without_slice_weights_are_refused() -> None:
    assert is_slice_sequence(_Predictor("gru").model)
    with pytest.raises(ConfigError, match="no per-slice weights"):
        slice_attention(_Predictor("gru"), [_volume()])
    not_sequence = SimpleNamespace(model=create_model("simple_cnn", num_classes=1, in_chans=1))
    assert not is_slice_sequence(not_sequence.model)
    with pytest.raises(ConfigError, match="slice_seq model"):
        slice_attention(not_sequence, [_volume()])


def test_explain_files_writes_json_and_png(tmp_path: Path) -> None:
    import json

    from medlens.explain.slices import explain_slice_files
    from medlens.io import write_image

    path = tmp_path / "study.nii.gz"
    write_image(_volume(), path)
    (saved,) = explain_slice_files(_Predictor("transformer"), [path], tmp_path, ["study.slices"])
    record = json.loads(saved.heatmap.read_text())
    assert saved.overlay.name == "study.slices.png" and len(record["slice_weights"]) == 5
