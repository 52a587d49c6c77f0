"""``medlens data``: build a dataset folder, show it, and fail cleanly."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medlens.cli import app

runner = CliRunner()


def test_build_then_show(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = runner.invoke(
        app, ["data", str(class_folder), "-o", str(out), "--val-fraction", "0.25"]
    )
    assert result.exit_code == 0, result.output
    assert "patients in more than one split: 0" in result.output
    assert (out / "manifest.csv").is_file() and (out / "fingerprint.json").is_file()
    shown = runner.invoke(app, ["data", str(out), "--json"])
    assert shown.exit_code == 0
    assert json.loads(shown.output) == json.loads((out / "fingerprint.json").read_text())
    table = runner.invoke(app, ["data", str(out / "manifest.csv")])
    assert table.exit_code == 0 and "train" in table.output and "val" in table.output


def test_medmnist_file_and_errors(pneumoniamnist: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["data", str(pneumoniamnist), "-o", str(tmp_path), "--sample-size", "20"]
    )
    assert result.exit_code == 0, result.output
    assert "5856 images" in result.output
    missing = runner.invoke(app, ["data", str(tmp_path / "missing"), "-o", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "not found" in missing.output
    bad = runner.invoke(app, ["data", str(pneumoniamnist), "-o", str(tmp_path), "--overlap", "x"])
    assert bad.exit_code == 1 and "--overlap" in bad.output
