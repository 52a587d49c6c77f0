"""``medlens export`` end to end on a small untrained run (numbers: tests/export)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medlens.cli import app

pytest.importorskip("onnxruntime")
runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """simple_cnn with random weights, its card and a manifest of 16 PNGs."""
    from PIL import Image as PILImage

    from medlens.card import write_card
    from medlens.models import create_model
    from medlens.training.checkpoint import save_weights

    root = tmp_path_factory.mktemp("cli-export")
    run = root / "run"
    run.mkdir()
    rng = np.random.default_rng(0)
    rows = ["path,label,patient_id,split"]
    for i in range(16):
        PILImage.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(root / f"{i}.png")
        rows.append(f"../{i}.png,{'ab' if i % 2 else 'no'},p{i},{'train' if i < 8 else 'val'}")
    (run / "manifest.csv").write_text("\n".join(rows) + "\n")
    torch.manual_seed(0)
    kwargs = {"name": "simple_cnn", "num_classes": 1, "in_chans": 1, "image_size": 16}
    sha = save_weights(create_model(**kwargs), run / "model.safetensors")
    prep = {"spatial_size": [16, 16], "channels": 1, "mean": [0.5], "std": [0.25]}
    card = {"architecture": "simple_cnn", "create_model": kwargs, "preprocessing": prep}
    write_card(run, {**card, "classes": ["ab", "no"], "task": "binary", "sha256": sha})
    return run


def test_export_writes_and_prints_verification(run_dir: Path) -> None:
    result = runner.invoke(app, ["export", str(run_dir)])

    assert result.exit_code == 0, result.output
    assert "verification against PyTorch" in result.output
    assert "model.onnx" in result.output
    record = json.loads((run_dir / "export.json").read_text())
    assert record["verification"]["fp32"]["passed"]
    assert record["verification"]["fp32"]["n_images"] == 8


def test_export_refusal_exits_1_and_writes_nothing(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    fresh = Path(
        shutil.copytree(
            run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("*.onnx", "export.json")
        )
    )
    (fresh / "manifest.csv").write_text(
        (run_dir / "manifest.csv").read_text().replace("../", f"{run_dir.parent}/")
    )
    result = runner.invoke(app, ["export", str(fresh), "--max-abs-diff", "0"])

    assert result.exit_code == 1
    assert "export refused, nothing written" in " ".join(result.output.split())
    assert not (fresh / "export.json").exists() and not (fresh / "model.onnx").exists()


def test_export_without_a_run_is_a_clean_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 1
    assert "no model.json" in " ".join(result.output.split())


def test_bad_opset_is_refused(run_dir: Path) -> None:
    result = runner.invoke(app, ["export", str(run_dir), "--opset", "9"])
    assert result.exit_code == 1
    assert "opset 9 not supported" in " ".join(result.output.split())
