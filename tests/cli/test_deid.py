"""``medlens deid`` through Typer's CliRunner."""

from __future__ import annotations

import csv
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from medlens.cli import app

runner = CliRunner()
PHI = {
    "PatientName": "DOE^JOHNATHAN",
    "PatientID": "MRN-4471-PHI",
    "AccessionNumber": "ACC-99812-X",
    "InstitutionName": "ST ELSEWHERE HOSPITAL",
    "StudyDescription": "CT CHEST FOR JOHNATHAN",
    "StudyDate": "20190314",
}


@pytest.fixture
def incoming(tmp_path: Path, dicom_testfile) -> Path:
    """A CT image with planted PHI, and an ultrasound copy (at risk of burned-in text)."""
    root = tmp_path / "incoming"
    ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    (root / "ct").mkdir(parents=True)
    ds.save_as(root / "ct" / "1.dcm", enforce_file_format=True)
    ds.Modality = "US"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    (root / "us").mkdir()
    ds.save_as(root / "us" / "1.dcm", enforce_file_format=True)
    return root


def report(out: Path) -> dict[str, str]:
    with (out / "deid_report.csv").open(newline="") as fh:
        return {row["input"]: row["status"] for row in csv.DictReader(fh)}


def test_deid_with_key_file(incoming: Path, tmp_path: Path) -> None:
    out, key = tmp_path / "out", tmp_path / "secret" / "site.key"
    result = runner.invoke(
        app,
        [
            "deid",
            str(incoming),
            str(out),
            "--key-file",
            str(key),
            "--dates",
            "shift",
            "--keep-names",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 files: 1 done, 0 redacted, 1 quarantined, 0 skipped, 0 failed" in result.output
    assert report(out) == {"ct/1.dcm": "done", "us/1.dcm": "quarantined"}
    assert (out / "quarantine" / "us" / "1.dcm").exists() and key.exists()
    key_text = key.read_text().strip()
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert key_text.encode() not in data
            assert not [s for s in PHI.values() if s.encode() in data], path
    again = runner.invoke(
        app,
        [
            "deid",
            str(incoming),
            str(tmp_path / "out2"),
            "--key-file",
            str(key),
            "--dates",
            "shift",
            "--keep-names",
        ],
    )
    assert again.exit_code == 0
    assert (tmp_path / "out2" / "ct" / "1.dcm").read_bytes() == (out / "ct" / "1.dcm").read_bytes()


def test_deid_without_key_warns_and_redacts(incoming: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["deid", str(incoming), str(out), "--redact", "0,0,16,2"])
    assert result.exit_code == 0, result.output
    assert "random key" in result.output
    assert report(out) == {"ct/1.dcm": "done", "us/1.dcm": "redacted"}


def test_failed_file_gives_exit_code_1(incoming: Path, tmp_path: Path) -> None:
    (incoming / "bad.dcm").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)))
    result = runner.invoke(app, ["deid", str(incoming), str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "1 failed" in result.output
    assert report(tmp_path / "out")["bad.dcm"] == "failed"


@pytest.mark.parametrize(
    "extra",
    [["--redact", "1,2,3"], ["--uid-root", "1.02"], ["--key-file", "{out}/k.key"]],
)
def test_bad_options_are_one_line_errors(incoming: Path, tmp_path: Path, extra: list[str]) -> None:
    out = tmp_path / "out"
    args = [a.replace("{out}", str(out)) for a in extra]
    result = runner.invoke(app, ["deid", str(incoming), str(out), *args])
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output
    assert not (out / "k.key").exists()
