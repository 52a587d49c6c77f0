"""A 3D classifier run end to end: train, evaluate, predict, explain, export (CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medlens.cli import app

runner = CliRunner()


def _blob_npz(path: Path, side: int = 12, seed: int = 0) -> Path:
    """A MedMNIST-3D-like file: class 1 volumes hold a bright cube, class 0 only noise."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 24), ("val", 8), ("test", 8)):
        labels = np.arange(n) % 2
        volumes = rng.integers(0, 60, (n, side, side, side)).astype(np.uint8)
        for volume, label in zip(volumes, labels, strict=True):
            if label:
                z, y, x = rng.integers(1, side - 5, 3)
                volume[z : z + 4, y : y + 4, x : x + 4] = 230
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = volumes, labels[:, None]
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def run_3d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medlens.config import parse_config
    from medlens.pipeline import train_run

    root = tmp_path_factory.mktemp("vol3d")
    config = parse_config({
        "data": {"source": str(_blob_npz(root / "blobs.npz"))},
        "task": "binary",
        "model": {"name": "resnet18_3d", "image_size": 12, "options": {"widen_factor": 0.125}},
        "optimizer": {"lr": 0.01},
        "epochs": 2,
        "batch_size": 8,
        "num_threads": 1,
        "precision": "fp32",
        "output_dir": str(root / "run"),
    })  # fmt: skip
    return train_run(config)


@pytest.mark.slow
def test_3d_run_through_evaluate_predict_explain_export(run_3d: Path, tmp_path: Path) -> None:
    from medlens.io import Image, write_image

    card = json.loads((run_3d / "model.json").read_text())
    assert card["architecture"] == "resnet18_3d"
    result = runner.invoke(app, ["evaluate", str(run_3d), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert (run_3d / "eval" / "test" / "report.html").is_file()

    volume = np.zeros((12, 12, 12), np.float32)
    volume[6:10, 2:6, 3:7] = 230.0
    path = tmp_path / "case.nii.gz"
    write_image(Image(array=volume, spacing=(1.0, 1.0, 1.0)), path)
    before = path.read_bytes()
    result = runner.invoke(app, ["predict", str(run_3d), str(path), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    assert "case" in (tmp_path / "p.csv").read_text()

    result = runner.invoke(app, ["explain", str(run_3d), str(path), "-o", str(tmp_path / "cam")])
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "cam").glob("*.png")) and path.read_bytes() == before

    result = runner.invoke(app, ["export", str(run_3d)])
    assert result.exit_code == 0, result.output
    export = json.loads((run_3d / "export.json").read_text())
    assert export["verification"]["fp32"]["passed"]


def test_orthogonal_slices_go_through_the_heat_peak() -> None:
    from medlens.explain import orthogonal_slices, overlay_png

    display = np.random.default_rng(0).random((6, 8, 10)).astype(np.float32)
    heat = np.zeros((6, 8, 10), np.float32)
    heat[4, 2, 7] = 1.0
    panels = orthogonal_slices(display, heat)
    assert [label for *_, label in panels] == ["axial z=4", "coronal y=2", "sagittal x=7"]
    assert [p[0].shape for p in panels] == [(8, 10), (6, 10), (6, 8)]
    assert all(p[1].max() == 1.0 for p in panels)  # every panel shows the peak
    np.testing.assert_array_equal(panels[1][0], display[:, 2])
    assert overlay_png(display, heat, "t").startswith(b"\x89PNG")
