"""Folder trees: a multi-file study, the report, failures, layout and safety of paths."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest
from pydicom.uid import generate_uid

from medlens.errors import ConfigError
from medlens.privacy import Deidentifier, DeidOptions


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def study(phi: SimpleNamespace, tmp_path: Path) -> Path:
    """Two series of one study, series 2 referencing the instances of series 1, in a folder
    named after the patient; plus a text file and a garbled DICOM file."""
    root = tmp_path / "DOE_JOHNATHAN"
    study_uid, frame_uid = generate_uid(), generate_uid()
    s1, s2 = generate_uid(), generate_uid()
    first = [generate_uid() for _ in range(3)]
    for i, uid in enumerate(first):
        phi.write_planted(
            root / "s1" / f"{i}.dcm",
            study_uid=study_uid,
            series_uid=s1,
            instance_uid=uid,
            frame_uid=frame_uid,
        )
    for i, uid in enumerate(first):
        phi.write_planted(
            root / "s2" / f"{i}.dcm",
            study_uid=study_uid,
            series_uid=s2,
            frame_uid=frame_uid,
            referenced_uid=uid,
        )
    (root / "notes.txt").write_text("JOHNATHAN's notes")
    (root / "s2" / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 4)
    return root


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_study_links_stay_consistent(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    Deidentifier(b"k" * 32).deidentify_tree(study, out, keep_names=True)
    s1 = [pydicom.dcmread(out / "s1" / f"{i}.dcm") for i in range(3)]
    s2 = [pydicom.dcmread(out / "s2" / f"{i}.dcm") for i in range(3)]
    assert len({d.StudyInstanceUID for d in s1 + s2}) == 1
    assert len({d.FrameOfReferenceUID for d in s1 + s2}) == 1
    assert (
        len({d.SeriesInstanceUID for d in s1}) == 1
        and s1[0].SeriesInstanceUID != s2[0].SeriesInstanceUID
    )
    assert len({d.PatientID for d in s1 + s2}) == 1
    for ref, target in zip(s2, s1, strict=True):
        assert ref.ReferencedImageSequence[0].ReferencedSOPInstanceUID == target.SOPInstanceUID


def test_report_and_outputs(phi: SimpleNamespace, study: Path, tmp_path: Path) -> None:
    before = tree_digest(study)
    out = tmp_path / "out"
    results = Deidentifier(b"k" * 32).deidentify_tree(study, out)
    assert tree_digest(study) == before  # the input is never modified
    rows = read_report(out / "deid_report.csv")
    assert [r["input"] for r in rows] == [r.input for r in results]
    status = {r["input"]: r["status"] for r in rows}
    assert status["notes.txt"] == "skipped"
    assert status["s2/broken.dcm"] == "failed"
    assert sum(s == "done" for s in status.values()) == 6
    report_text = (out / "deid_report.csv").read_text()
    for text in phi.planted_strings():
        assert text not in report_text
    for path in out.rglob("*.dcm"):
        data = path.read_bytes()
        assert not [s for s in phi.planted_strings() if s.encode() in data], path
    assert not list(out.rglob("*.tmp")) and not (out / "notes.txt").exists()


def test_rerun_on_output_changes_nothing(study: Path, tmp_path: Path) -> None:
    deid = Deidentifier(b"k" * 32, DeidOptions(dates="shift"))
    deid.deidentify_tree(study, tmp_path / "once")
    (tmp_path / "once" / "deid_report.csv").unlink()
    deid.deidentify_tree(tmp_path / "once", tmp_path / "twice")
    (tmp_path / "twice" / "deid_report.csv").unlink()
    assert tree_digest(tmp_path / "twice") == tree_digest(tmp_path / "once")


def test_default_layout_is_named_by_new_uids(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = Deidentifier(b"k" * 32).deidentify_tree(study, out, report=tmp_path / "r.csv")
    done = [r for r in results if r.status == "done"]
    assert len(done) == 6 and not (out / "deid_report.csv").exists()
    for r in done:
        ds = pydicom.dcmread(out / r.output)
        parts = (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        assert r.output == "/".join(parts) + ".dcm"
        assert "DOE" not in r.output


def test_single_file_input(study: Path, tmp_path: Path) -> None:
    deid = Deidentifier(b"k" * 32)
    results = deid.deidentify_tree(study / "s1" / "0.dcm", tmp_path / "out", keep_names=True)
    assert [(r.input, r.output, r.status) for r in results] == [("0.dcm", "0.dcm", "done")]


def test_nested_paths_refused(study: Path, tmp_path: Path) -> None:
    deid = Deidentifier(b"k" * 32)
    with pytest.raises(ConfigError):
        deid.deidentify_tree(study, study / "out")
    with pytest.raises(ConfigError):
        deid.deidentify_tree(study, study)
    with pytest.raises(ConfigError):
        deid.deidentify_tree(tmp_path / "missing", tmp_path / "out")


def test_dicomdir_skipped_and_documents_refused(tmp_path: Path, dicom_testfile) -> None:
    deid = Deidentifier(b"k" * 32)
    result = deid.deidentify_file(dicom_testfile("DICOMDIR"), tmp_path / "DICOMDIR")
    assert result.status == "skipped" and "DICOMDIR" in result.reason
    pdf = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    pdf.SOPClassUID = pdf.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    pdf.save_as(tmp_path / "doc.dcm")
    result = deid.deidentify_file(tmp_path / "doc.dcm", tmp_path / "out" / "doc.dcm")
    assert result.status == "failed" and "encapsulated" in result.reason
    assert not (tmp_path / "out").exists()


def test_workers_give_the_same_outputs(study: Path, tmp_path: Path) -> None:
    deid = Deidentifier(b"k" * 32, DeidOptions(dates="shift"))
    one = deid.deidentify_tree(study, tmp_path / "one")
    two = deid.deidentify_tree(study, tmp_path / "two", workers=2)
    assert one == two
    assert tree_digest(tmp_path / "one") == tree_digest(tmp_path / "two")


def test_identifying_input_paths_are_withheld_from_a_report_in_out(
    phi: SimpleNamespace, tmp_path: Path
) -> None:
    uid = generate_uid()
    phi.write_planted(tmp_path / "in" / f"CT.{uid}", instance_uid=uid)
    phi.write_planted(tmp_path / "in" / "MRN-4471-PHI" / "1.dcm")
    phi.write_planted(tmp_path / "in" / "plain" / "1.dcm")
    deid = Deidentifier(b"k" * 32)
    deid.deidentify_tree(tmp_path / "in", tmp_path / "out")
    text = (tmp_path / "out" / "deid_report.csv").read_text()
    assert uid not in text and "4471" not in text and "plain/1.dcm" in text
    assert text.count("withheld") == 2
    deid.deidentify_tree(tmp_path / "in", tmp_path / "out2", report=tmp_path / "full.csv")
    inputs = [row["input"] for row in read_report(tmp_path / "full.csv")]
    assert inputs == [f"CT.{uid}", "MRN-4471-PHI/1.dcm", "plain/1.dcm"]
    assert not [p for p in (tmp_path / "out").rglob("*") if uid in p.name or "4471" in p.name]


def test_empty_instance_uid_and_duplicates(phi: SimpleNamespace, tmp_path: Path) -> None:
    uid, study, series = generate_uid(), generate_uid(), generate_uid()
    (tmp_path / "in").mkdir()
    # the same instance twice (a.dcm, b.dcm), then another; UIDs only in the file meta
    for name, instance in (("a.dcm", uid), ("b.dcm", uid), ("c.dcm", generate_uid())):
        ds = phi.planted_dataset(instance_uid=instance, study_uid=study, series_uid=series)
        ds.SOPInstanceUID = ""
        ds.save_as(tmp_path / "in" / name, enforce_file_format=True)
    results = Deidentifier(b"k" * 32).deidentify_tree(tmp_path / "in", tmp_path / "out")
    assert [r.status for r in results] == ["done", "skipped", "done"]
    assert results[0].output == results[1].output != results[2].output
    ds = pydicom.dcmread(tmp_path / "out" / results[0].output)
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID != uid
    assert results[0].output.endswith(f"/{ds.SOPInstanceUID}.dcm")
