"""``medlens distill``: option checks and clean errors (training itself: tests/export)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from medlens.cli import app

runner = CliRunner()


def test_alpha_out_of_range_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["distill", str(tmp_path), "--alpha", "1.5", "-o", str(tmp_path / "s")]
    )
    assert result.exit_code == 2


def test_unknown_student_is_a_clean_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["distill", str(tmp_path), "--student", "resnet9000", "-o", str(tmp_path / "s")]
    )
    assert result.exit_code == 1
    assert "unknown model 'resnet9000'" in " ".join(result.output.split())
    assert not (tmp_path / "s").exists()


def test_missing_teacher_is_a_clean_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["distill", str(tmp_path / "nope"), "-o", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert "model.json" in " ".join(result.output.split())
