"""``medlens info``: table, JSON, PHI only on request, errors per file."""

from __future__ import annotations

import json

import pydicom
from typer.testing import CliRunner

from medlens.cli import app

runner = CliRunner()


def test_info_table_hides_patient_data(dicom_testfile):
    path = dicom_testfile("CT_small.dcm")
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    for expected in (
        "DICOM",
        "CT",
        "128x128",
        "float32",
        "MONOCHROME2",
        "Explicit VR Little",
        "-896",
    ):
        assert expected in result.output
    ds = pydicom.dcmread(path)
    assert str(ds.PatientName) not in result.output
    assert ds.PatientID not in result.output


def test_info_json_and_show_phi(dicom_testfile):
    path = dicom_testfile("CT_small.dcm")
    plain = json.loads(runner.invoke(app, ["info", "--json", str(path)]).stdout)
    assert plain[0]["shape"] == [128, 128] and plain[0]["range"] == [-896.0, 1167.0]
    assert "phi" not in plain[0]
    shown = json.loads(runner.invoke(app, ["info", "--json", "--show-phi", str(path)]).stdout)
    assert shown[0]["phi"]["PatientName"] == str(pydicom.dcmread(path).PatientName)


def test_info_on_a_series_folder(shared_datasets):
    folder = shared_datasets / "totalsegmentator_example" / "example_ct_dicom"
    result = runner.invoke(app, ["info", "--json", str(folder)])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert summary["series"] == [{"uid": "", "modality": "CT", "files": 20, "size": [512, 512]}]
    assert summary["shape"] == [20, 512, 512] and summary["spacing"][0] == 2.0


def test_info_reports_bad_files_and_fails(dicom_testfile, tmp_path):
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    result = runner.invoke(app, ["info", str(dicom_testfile("MR_small.dcm")), str(empty)])
    assert result.exit_code == 1
    assert "MR" in result.output and "empty" in result.output


def test_info_lists_npz_arrays(shared_datasets):
    path = shared_datasets / "pneumoniamnist" / "pneumoniamnist.npz"
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "test_images: 624x28x28 uint8" in result.output


def test_info_on_a_folder_with_several_series(dicom_testfile):
    folder = dicom_testfile("6154").parent.parent  # pydicom-data dicomdirtests/77654033
    result = runner.invoke(app, ["info", "--json", str(folder)])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert len(summary["series"]) == 4 and "shape" not in summary  # 3 CR + 1 CT
    assert all(s["uid"].startswith("…") and len(s["uid"]) == 13 for s in summary["series"])
    table = runner.invoke(app, ["info", str(folder)]).output
    assert "series in this folder" in table and "CR" in table


def test_info_refuses_deeply_nested_sequences(tmp_path, nested_dicom):
    path = tmp_path / "nested.dcm"
    path.write_bytes(nested_dicom(5_000))
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 1
    assert "nested more than 32 levels" in " ".join(result.output.split())
    assert "Traceback" not in result.output and "RecursionError" not in result.output
