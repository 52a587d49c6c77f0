"""``medlens explain`` end to end on a small run (numbers and checks: tests/explain)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from medlens.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """simple_cnn with random weights and its card, beside a folder of PNGs and a volume."""
    from medlens.card import write_card
    from medlens.io import Image, write_image
    from medlens.models import create_model
    from medlens.training.checkpoint import save_weights

    root = tmp_path_factory.mktemp("cli-explain")
    run, images = root / "run", root / "images"
    run.mkdir()
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = rng.integers(0, 120, (40, 48), dtype=np.uint8)
        pixels[10:20, 12:22] = 250
        PILImage.fromarray(pixels).save(images / f"case{i}.png")
    volume = rng.normal(size=(5, 24, 24)).astype(np.float32)
    write_image(Image(array=volume, spacing=(2.0, 1.0, 1.0)), root / "volume.nii.gz")
    torch.manual_seed(0)
    kwargs = {"name": "simple_cnn", "num_classes": 1, "in_chans": 1, "image_size": 16}
    sha = save_weights(create_model(**kwargs), run / "model.safetensors")
    prep = {"spatial_size": [16, 16], "channels": 1, "mean": [0.5], "std": [0.25]}
    card = {"architecture": "simple_cnn", "create_model": kwargs, "preprocessing": prep}
    write_card(run, {**card, "classes": ["no", "yes"], "task": "binary", "sha256": sha})
    return run


def test_explain_writes_overlays_and_heatmaps(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "maps"
    images = run_dir.parent / "images"
    result = runner.invoke(app, ["explain", str(run_dir), str(images), "-o", str(out), "-t", "yes"])

    assert result.exit_code == 0, result.output
    assert "3 explanation(s) written" in result.output
    assert re.search(
        r"case0\.gradcam\.png: predicted (no|yes), gradcam for yes \(p=0\.\d\d\)", result.output
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"case{i}.gradcam.{ext}" for i in range(3) for ext in ("npy", "png")]
    heatmap = np.load(out / "case0.gradcam.npy")
    assert heatmap.shape == (16, 16) and heatmap.dtype == np.float32
    assert np.isfinite(heatmap).all() and 0 <= heatmap.min() <= heatmap.max() <= 1
    with PILImage.open(out / "case0.gradcam.png") as im:
        assert im.format == "PNG" and im.width > 200


def test_a_volume_given_to_a_2d_model_uses_its_middle_slice(run_dir: Path, tmp_path: Path) -> None:
    volume = run_dir.parent / "volume.nii.gz"
    result = runner.invoke(
        app, ["explain", str(run_dir), str(volume), "-o", str(tmp_path), "-m", "occlusion"]
    )

    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "volume.occlusion.npy").shape == (16, 16)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "lime"], "unknown method 'lime'"),
        (["-t", "maybe"], "unknown target class 'maybe'"),
        (["--layer", "conv9"], "no layer 'conv9'"),
    ],
)
def test_bad_options_exit_1_with_a_message(
    run_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    image = run_dir.parent / "images" / "case0.png"
    result = runner.invoke(app, ["explain", str(run_dir), str(image), "-o", str(tmp_path), *args])

    assert result.exit_code == 1
    assert message in result.output
    assert not list(tmp_path.iterdir())


def test_missing_input_is_an_error(run_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", str(run_dir), str(tmp_path / "nope.png"), "-o", "x"])

    assert result.exit_code == 1
    assert "input not found" in result.output
