"""``evaluate_run`` reports of runs that used to break them: a 3D classifier (VesselMNIST3D),
an RGB multi-class classifier, and an evaluation of other data beside the run's own."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from medlens.config import parse_config
from medlens.pipeline import evaluate_run, train_run

TINY = {"widths": [4, 8, 8], "hidden": 8}


def _tiles(page: str, section: str) -> list[tuple[str, np.ndarray]]:
    """``(tile class, pixels)`` of each picture in the report section headed ``section``."""
    part = page.split(f"<h2>{section}</h2>", 1)[1].split("</section>", 1)[0]
    found = re.findall(
        r"<div class='(tile[^']*)'><img[^>]*src=\"data:image/png;base64,([^\"]+)", part
    )
    return [(kind, np.asarray(PILImage.open(io.BytesIO(base64.b64decode(b))))) for kind, b in found]


def _vessel_subset(source: Path, target: Path) -> Path:
    """A few dozen VesselMNIST3D volumes, both classes in every split."""
    arrays = np.load(source)
    subset = {}
    for split, n in (("train", 24), ("val", 8), ("test", 8)):
        y = arrays[f"{split}_labels"].reshape(-1)
        idx = np.concatenate([np.flatnonzero(y == k)[: n // 2] for k in (0, 1)])
        subset[f"{split}_images"] = arrays[f"{split}_images"][idx]
        subset[f"{split}_labels"] = arrays[f"{split}_labels"][idx]
    np.savez(target, **subset)
    return target


@pytest.mark.slow
def test_3d_classification_report_shows_slices_and_3d_gradcam(shared_datasets, tmp_path) -> None:
    data = _vessel_subset(shared_datasets / "medmnist3d" / "vesselmnist3d.npz", tmp_path / "v.npz")
    config = parse_config(
        {
            "data": {"source": str(data)},
            "model": {
                "name": "simple_cnn",
                "image_size": 28,
                "options": {"spatial_dims": 3, **TINY},
            },  # fmt: skip
            "preprocessing": {"spatial_size": [28, 28, 28]},
            "channels_last": False,
            "epochs": 1,
            "batch_size": 8,
            "num_threads": 1,
            "output_dir": str(tmp_path / "run"),
        }
    )
    out = evaluate_run(train_run(config), n_bootstrap=20, examples=2)
    assert out == tmp_path / "run" / "eval" / "test"
    page = (out / "report.html").read_text()
    examples = _tiles(page, "Examples")
    assert examples and all(kind == "tile wide" for kind, _ in examples)
    assert all(pixels.shape[1] > 2 * pixels.shape[0] for _, pixels in examples)  # 3 slices
    assert "middle slices across axes 0 | 1 | 2" in page
    assert _tiles(page, "Explanations")  # Grad-CAM works on volumes
    assert "false positives and false negatives" in page


def _rgb_folders(root: Path, per_class: int = 12, size: int = 16) -> Path:
    """Class folders of RGB photographs: a red, green or blue square on grey."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.normal(90, 10, (size, size, 3))
            r, c = rng.integers(1, size - 8, 2)
            pixels[r : r + 7, c : c + 7] = 40
            pixels[r : r + 7, c : c + 7, k] = 230
            array = np.clip(pixels, 0, 255).astype(np.uint8)
            PILImage.fromarray(array).save(root / name / f"person{100 * k + i}_{i}.png")
    return root


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rgb")
    config = parse_config(
        {
            "data": {
                "source": str(_rgb_folders(root / "photos")),
                "val_fraction": 0.25,
                "test_fraction": 0.25,
            },  # fmt: skip
            "model": {"name": "simple_cnn", "image_size": 16, "in_chans": 3, "options": TINY},
            "optimizer": {"lr": 0.01},
            "epochs": 3,
            "batch_size": 8,
            "num_threads": 1,
            "output_dir": str(root / "run"),
        }
    )
    return train_run(config)


@pytest.mark.slow
def test_rgb_multiclass_report_in_colour_with_a_gallery_per_class(rgb_run: Path) -> None:
    out = evaluate_run(rgb_run, n_bootstrap=20)
    page = (out / "report.html").read_text()
    examples = _tiles(page, "Examples")
    assert examples and all(pixels.ndim == 3 for _, pixels in examples)
    spread = [np.ptp(pixels[..., :3].astype(int), axis=-1).max() for _, pixels in examples]
    assert max(spread) > 100  # colour, not one channel drawn grey
    assert _tiles(page, "Explanations")
    assert "Per class: the most confident correct call" in page
    captions = re.findall(r"<div class='cap'>([^<]*)</div>", page.split("<h2>Explanations")[1])
    assert all(": correct (p=" in c or c.startswith("called ") for c in captions)


@pytest.mark.slow
def test_other_data_goes_to_its_own_folder(rgb_run: Path, tmp_path: Path) -> None:
    from medlens.cli import app

    own = evaluate_run(rgb_run, n_bootstrap=0, examples=0)
    before = (own / "metrics.json").read_text()
    other = tmp_path / "Site B"
    other.mkdir()
    for source in sorted((rgb_run.parent / "photos").rglob("*.png"))[::4]:
        (other / source.parent.name).mkdir(exist_ok=True)
        (other / source.parent.name / source.name).write_bytes(source.read_bytes())
    result = CliRunner().invoke(app, ["evaluate", str(rgb_run), "--data", str(other),
                                      "--bootstrap", "0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = rgb_run / "eval" / "Site_B-test"
    assert f"written to: {written}" in result.output.replace("\n", "")
    assert json.loads((written / "metrics.json").read_text())["n_cases"] == 9
    assert "split of Site B" in (written / "report.html").read_text()
    assert (own / "metrics.json").read_text() == before  # the run's own evaluation stays
