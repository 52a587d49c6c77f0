"""``medlens demo`` on the bundled real sample, with a one-epoch budget."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medlens.cli import app

runner = CliRunner()


def test_bundled_sample_is_small_and_attributed() -> None:
    from medlens.cli.demo import sample_dir

    sample = sample_dir()
    assert (sample / "pneumoniamnist.npz").stat().st_size < 3_000_000
    readme = (sample / "README.md").read_text()
    assert "CC BY 4.0" in readme and "MedMNIST v2" in readme and "Kermany" in readme
    assert (sample / "LICENSE").is_file()


def test_demo_trains_evaluates_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    (out / "run").mkdir(parents=True)  # an earlier demo's output is replaced
    (out / ".medlens-demo").touch()
    (out / "run" / "model.json").write_text("{}")
    result = runner.invoke(app, ["demo", "-o", str(out), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    report = out / "run" / "eval" / "test" / "report.html"
    assert str(report) in result.output and report.is_file()
    metrics = json.loads((report.parent / "metrics.json").read_text())
    assert metrics["n_cases"] == 624  # the official PneumoniaMNIST test split
    assert metrics["metrics"]["roc_auc"]["value"] > 0.85  # one epoch on real data already learns


def test_demo_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "-o", str(tmp_path), "--epochs", "1"])
    assert result.exit_code == 1 and "not an earlier demo output" in result.output
    assert (tmp_path / "precious.txt").read_text() == "keep me"
