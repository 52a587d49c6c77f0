"""Report pictures of any input (grey, RGB, volume), the heatmap gallery's cases for every
task, the gallery's note, and the folder an evaluation writes to."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from medlens.evaluation import (
    HEATMAP_NOTES,
    ExampleCase,
    HeatmapGallery,
    ReportImage,
    input_picture,
    render_report,
    select_heatmap_cases,
)
from medlens.evaluation._io import evaluation_dir
from medlens.evaluation.plots import image_png


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)))


def test_rgb_input_is_pictured_in_colour_with_its_normalisation_undone() -> None:
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)
    rgb = np.zeros((3, 8, 8), np.float32)
    rgb[1] = 0.9  # green
    x = (rgb - np.reshape(mean, (3, 1, 1))) / np.reshape(std, (3, 1, 1))
    picture = input_picture(x, mean, std)
    assert picture.shape == (8, 8, 3)
    np.testing.assert_allclose(picture, np.moveaxis(rgb, 0, -1), atol=1e-6)
    png = _pixels(image_png(picture))
    assert png.ndim == 3 and (png[..., 1] > png[..., 0] + 100).all()


def test_grey_input_is_one_channel() -> None:
    x = np.random.default_rng(0).normal(size=(1, 10, 12))
    picture = input_picture(x, (0.5,), (0.25,))
    np.testing.assert_allclose(picture, x[0] * 0.25 + 0.5, rtol=1e-6)
    assert _pixels(image_png(picture)).ndim == 2


def test_volume_is_pictured_as_its_three_middle_slices() -> None:
    volume = np.arange(6 * 8 * 10, dtype=np.float32).reshape(1, 6, 8, 10)
    picture = input_picture(volume)
    gap = np.isnan(picture).all(axis=0)
    parts = np.split(np.arange(picture.shape[1]), np.flatnonzero(np.diff(gap.astype(int))) + 1)
    panels = [picture[:, p] for p in parts if not gap[p[0]]]
    v = volume[0]
    for panel, expected in zip(panels, (v[3], v[:, 4], v[:, :, 5]), strict=True):
        rows = expected.shape[0]
        np.testing.assert_array_equal(panel[:rows], expected)
        assert np.isnan(panel[rows:]).all()  # shorter slices padded below
    png = image_png(picture, size=100)
    width, height = PILImage.open(io.BytesIO(png)).size
    assert width == 300 and width > 2 * height  # each slice about as big as a 2D picture
    page = render_report(metrics=_metrics(), examples=[_case(png)])
    assert "class='tile wide'" in page


def test_image_png_refuses_what_it_cannot_draw() -> None:
    with pytest.raises(ValueError, match="2D grey or RGB"):
        image_png(np.zeros((5, 8, 8)))


def test_multiclass_gallery_cases_per_predicted_class() -> None:
    y = np.array([0, 0, 1, 1, 2, 2, 0])
    p = np.array(
        [
            [0.9, 0.05, 0.05],  # correct 0
            [0.6, 0.3, 0.1],  # correct 0, less sure
            [0.8, 0.1, 0.1],  # called 0, truly 1
            [0.1, 0.7, 0.2],  # correct 1
            [0.2, 0.7, 0.1],  # called 1, truly 2
            [0.1, 0.1, 0.8],  # correct 2
            [0.1, 0.1, 0.8],  # called 2, truly 0
        ]
    )
    cases = select_heatmap_cases(y, p, task="multiclass", class_names=["a", "b", "c"])
    assert [(c.index, c.caption) for c in cases] == [
        (0, "a: correct (p=0.90)"),
        (2, "called a, truly b (p=0.80)"),
        (3, "b: correct (p=0.70)"),
        (4, "called b, truly c (p=0.70)"),
        (5, "c: correct (p=0.80)"),
        (6, "called c, truly a (p=0.80)"),
    ]
    assert all(c.target is None for c in cases)  # explained for the predicted class


def test_multilabel_gallery_cases_explain_their_label() -> None:
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.2], [0.7, 0.8], [0.6, 0.95], [0.1, 0.1]])
    cases = select_heatmap_cases(
        y, p, task="multilabel", class_names=["x", "y"], threshold=[0.5, 0.5]
    )
    assert [(c.index, c.target, c.caption) for c in cases] == [
        (0, 0, "x: true positive (p=0.90)"),
        (1, 0, "x: false positive (p=0.70)"),
        (2, 1, "y: true positive (p=0.95)"),
    ]


def test_binary_gallery_cases_keep_their_categories() -> None:
    y = np.array([1, 1, 0, 0, 1])
    p = np.array([0.9, 0.2, 0.8, 0.1, 0.6])
    cases = select_heatmap_cases(y, p, task="binary", class_names=["no", "yes"], per_group=1)
    assert [(c.index, c.caption.split(" (")[0]) for c in cases] == [
        (0, "true positive"),
        (2, "false positive"),
        (1, "false negative"),
    ]


def test_gallery_note_shown_with_overlays_and_instead_of_them() -> None:
    png = image_png(np.eye(8))
    shown = render_report(
        metrics=_metrics(),
        heatmap_gallery=HeatmapGallery((ReportImage(png, "a: correct"),), HEATMAP_NOTES["binary"]),
    )
    assert "Where the model looked (Grad-CAM)" in shown and HEATMAP_NOTES["binary"] in shown
    skipped = render_report(metrics=_metrics(), heatmap_gallery=HeatmapGallery((), "no <model>."))
    assert "Not shown: no &lt;model&gt;." in skipped
    assert "Explanations" not in render_report(metrics=_metrics(), heatmap_gallery=None)


@pytest.mark.parametrize(
    ("data", "split", "folder"),
    [
        (None, "test", "test"),
        ("other_hospital", "test", "other_hospital-test"),
        ("other_hospital/", "val", "other_hospital-val"),
        ("ext/pneumonia.npz", "test", "pneumonia-test"),
        ("site b/manifest.csv", "test", "site_b-test"),
        ("St Mary's (2024)", "ext 1", "St_Mary_s_2024-ext_1"),
        ("run/manifest.csv", "test", "test"),  # the run's own data
    ],
)
def test_evaluation_folder_is_named_after_the_data(
    data: str | None, split: str, folder: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert evaluation_dir(Path("run"), data, split) == Path("run") / "eval" / folder


def _case(png: bytes) -> ExampleCase:
    return ExampleCase(png, "yes", "yes", {"no": 0.1, "yes": 0.9})


def _metrics() -> dict:
    from medlens.evaluation import evaluate_predictions

    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.2, 0.8, 0.4, 0.7, 0.3, 0.1])
    return evaluate_predictions(y, p, task="binary", class_names=["no", "yes"], n_bootstrap=0)


def test_gallery_is_skipped_with_a_note_when_the_model_cannot_be_explained(tmp_path) -> None:
    from types import SimpleNamespace

    from medlens.pipeline.classification import _heatmap_gallery

    paths = []
    for i in range(4):
        PILImage.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    onnx_like = SimpleNamespace(
        task="multiclass",
        classes=["a", "b"],
        threshold=None,
        model=object(),  # e.g. the ONNX Runtime engine: no PyTorch module to hook
        preprocessing=SimpleNamespace(spatial_size=(8, 8)),
    )
    probs = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]
    gallery = _heatmap_gallery(onnx_like, paths, np.array([0, 1, 1, 0]), probs)
    assert isinstance(gallery, HeatmapGallery) and not gallery.images
    assert gallery.note.startswith("Grad-CAM cannot explain this model")
    assert "Not shown: Grad-CAM cannot" in render_report(
        metrics=_metrics(), heatmap_gallery=gallery
    )
