"""``medlens prune``: options are checked before any work; a small run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medlens.cli import app

runner = CliRunner()


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """simple_cnn trained 1 epoch by medlens on 48 random 16 px PNGs."""
    from PIL import Image as PILImage

    from medlens.config import parse_config
    from medlens.tasks.run import train_run

    root = tmp_path_factory.mktemp("cli-prune")
    rng = np.random.default_rng(0)
    rows = ["path,label,patient_id,split"]
    for i in range(48):
        PILImage.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(root / f"{i}.png")
        rows.append(f"{i}.png,{'ab' if i % 2 else 'no'},p{i},{'train' if i < 32 else 'val'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    config = {
        "data": {"manifest": str(root / "manifest.csv")},
        "model": {"name": "simple_cnn", "image_size": 16},
        "epochs": 1,
        "batch_size": 16,
        "output_dir": str(root / "run"),
    }
    return train_run(parse_config(config))


def test_prune_writes_a_sparse_run_and_prints_the_comparison(
    small_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pruned"
    result = runner.invoke(app, ["prune", str(small_run), "--sparsity", "0.7", "-o", str(out)])

    assert result.exit_code == 0, result.output
    assert "source" in result.output and "pruned run written" in flat(result.output)
    reports = json.loads((out / "compression.json").read_text())["reports"]
    assert reports["pruned"]["nonzero_parameters"] < 0.35 * reports["source"]["parameters"]


def test_sparsity_out_of_range_is_refused(small_run: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["prune", str(small_run), "--sparsity", "1.5", "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_missing_run_is_a_clean_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prune", str(tmp_path / "nope"), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "model.json" in flat(result.output)
