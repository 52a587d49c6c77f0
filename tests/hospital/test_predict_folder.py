"""``medlens predict`` on a local DICOM series folder with --heatmap: SR + SC, no PACS."""

from __future__ import annotations

import csv
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from medlens.cli import app


@pytest.mark.slow
def test_predict_a_series_folder_writes_sr_and_sc(
    trained_run: Path, ct_with_uids: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pred.csv"
    args = ["predict", str(trained_run), str(ct_with_uids), "-o", str(out), "--heatmap"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    files = [Path(p) for p in row["results"].split("|")]
    assert [p.name for p in files] == ["sr.dcm", "sc.dcm"]
    assert all(p.parent == tmp_path / "pred" / row["series_uid"] for p in files)
    sr, sc = (pydicom.dcmread(p) for p in files)
    assert sr.Modality == "SR" and sc.Modality == "OT"
    assert sr.StudyInstanceUID == sc.StudyInstanceUID == row["study_uid"]
    assert row["stored"] == "0"


def test_a_bad_store_address_is_refused_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    args = ["predict", str(tmp_path), "nowhere/", "--store", "ftp://pacs", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "--store takes" in result.output
    assert not out.exists()
