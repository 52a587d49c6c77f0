"""One planted-PHI file through the Deidentifier: nothing identifying survives."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest
from pydicom.sequence import Sequence

from medlens.privacy import Deidentifier, DeidOptions
from medlens.privacy.keys import KeyedMapper


def run(src: Path, dst: Path, key: bytes, **options: object):
    return Deidentifier(key, DeidOptions(**options)).deidentify_file(src, dst)


@pytest.mark.parametrize("dates", ["remove", "shift"])
def test_no_planted_string_in_output_bytes(
    phi: SimpleNamespace, planted: Path, tmp_path: Path, key: bytes, dates: str
) -> None:
    before = hashlib.sha256(planted.read_bytes()).hexdigest()
    result = run(planted, tmp_path / "out.dcm", key, dates=dates)
    assert result.status == "done", result.reason
    data = (tmp_path / "out.dcm").read_bytes()
    assert [s for s in phi.planted_strings() if s.encode() in data] == []
    assert [s for s in phi.planted_strings() if s.lower().encode() in data.lower()] == []
    assert phi.leaked(pydicom.dcmread(planted), tmp_path / "out.dcm") == set()
    assert hashlib.sha256(planted.read_bytes()).hexdigest() == before  # input untouched


def test_structure_after_deidentification(planted: Path, tmp_path: Path, key: bytes) -> None:
    run(planted, tmp_path / "out.dcm", key)
    original, ds = pydicom.dcmread(planted), pydicom.dcmread(tmp_path / "out.dcm")
    assert ds.preamble == b"\0" * 128
    assert ds.PixelData == original.PixelData
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert "SourceApplicationEntityTitle" not in ds.file_meta
    assert ds.SOPClassUID == original.SOPClassUID
    assert not any(elem.tag.is_private for elem in ds.iterall())
    assert not any(0x5000 <= elem.tag.group <= 0x601E for elem in ds.iterall())
    gone = ("IconImageSequence", "OtherPatientIDsSequence", "RequestAttributesSequence")
    gone += ("PatientAddress", "ImageComments", "StudyDescription", "DateOfLastCalibration")
    assert [keyword for keyword in gone if keyword in ds] == []
    for emptied in ("AccessionNumber", "StudyDate", "ReferringPhysicianName", "StudyID"):
        assert emptied in ds and not ds[emptied].value
    assert ds.InstitutionName == "ANONYMIZED"  # X/Z/D -> D with a dummy of the VR
    code = ds.ProcedureCodeSequence[0]  # an unlisted sequence: kept, its items processed
    assert code.CodeValue == "CTCHEST" and code.InstitutionName == "ANONYMIZED"


def test_deidentification_attributes(planted: Path, tmp_path: Path, key: bytes) -> None:
    run(planted, tmp_path / "a.dcm", key, dates="shift", keep_private_safe=True)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == [
        "113100",
        "113107",
        "113111",
    ]
    assert {i.CodingSchemeDesignator for i in ds.DeidentificationMethodCodeSequence} == {"DCM"}
    assert "Basic Application Confidentiality Profile" in ds.DeidentificationMethod[0]
    run(planted, tmp_path / "b.dcm", key)
    ds = pydicom.dcmread(tmp_path / "b.dcm")
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100"]


def test_pseudonyms_and_uids_are_keyed(planted: Path, tmp_path: Path, key: bytes) -> None:
    run(planted, tmp_path / "out.dcm", key)
    original, ds = pydicom.dcmread(planted), pydicom.dcmread(tmp_path / "out.dcm")
    mapper = KeyedMapper(key)
    assert ds.PatientID == mapper.pseudonym("MRN-4471-PHI")
    assert ds.PatientName == f"ANON^{ds.PatientID}"
    assert ds.StudyInstanceUID == mapper.uid(original.StudyInstanceUID)
    assert ds.FrameOfReferenceUID == mapper.uid(original.FrameOfReferenceUID)
    deepest = ds.ReferencedImageSequence[0].SourceImageSequence[0].SourceImageSequence[0]
    ref = original.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    assert deepest.SourceImageSequence[0].ReferencedSOPInstanceUID == mapper.uid(ref)
    assert deepest.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert deepest.SourceImageSequence[0].PatientName == ""


def test_dates_shifted_by_one_offset_at_every_depth(
    planted: Path, tmp_path: Path, key: bytes
) -> None:
    run(planted, tmp_path / "out.dcm", key, dates="shift")
    ds = pydicom.dcmread(tmp_path / "out.dcm")
    offset = KeyedMapper(key).date_offset("MRN-4471-PHI")

    def days(text: str) -> int:
        import datetime as dt

        return (dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) - dt.date(2019, 3, 14)).days

    assert days(ds.StudyDate) == offset
    assert days(ds.ContentDate) == offset + 1  # the interval of one day is kept
    assert days(ds.PatientBirthDate) - days(ds.StudyDate) == days("19610923")
    assert [days(v) for v in ds.DateOfLastCalibration] == [
        days("20180101") + offset,
        days("20181231") + offset,
    ]
    assert ds.AcquisitionDateTime.endswith("101530.123456+0100")
    assert days(ds.AcquisitionDateTime[:8]) == offset
    item = ds.ReferencedImageSequence[0]
    for _ in range(3):
        item = item.SourceImageSequence[0]
        assert days(item.ContentDate) == days("20170707") + offset
    assert ds.StudyTime == "101530"  # whole-day shifts keep the time of day


def test_dates_removed_at_every_depth(planted: Path, tmp_path: Path, key: bytes) -> None:
    run(planted, tmp_path / "out.dcm", key, dates="remove")
    ds = pydicom.dcmread(tmp_path / "out.dcm")
    dates = [e for e in ds.iterall() if e.VR in ("DA", "DT") and e.value]
    assert {str(e.value) for e in dates} <= {"19000101", "19000101000000"}
    assert "StudyTime" in ds and ds.StudyTime == ""


@pytest.mark.parametrize("dates", ["remove", "shift"])
def test_idempotent(planted: Path, tmp_path: Path, key: bytes, dates: str) -> None:
    run(planted, tmp_path / "once.dcm", key, dates=dates, keep_private_safe=True)
    second = run(
        tmp_path / "once.dcm", tmp_path / "twice.dcm", key, dates=dates, keep_private_safe=True
    )
    assert second.status == "done", second.reason
    assert (tmp_path / "once.dcm").read_bytes() == (tmp_path / "twice.dcm").read_bytes()


def test_other_key_gives_other_pseudonyms(planted: Path, tmp_path: Path, key: bytes) -> None:
    run(planted, tmp_path / "a.dcm", key)
    run(planted, tmp_path / "b.dcm", b"a different secret key!")
    a, b = pydicom.dcmread(tmp_path / "a.dcm"), pydicom.dcmread(tmp_path / "b.dcm")
    assert a.PatientID != b.PatientID and a.SOPInstanceUID != b.SOPInstanceUID


def test_safe_private_allow_list(phi: SimpleNamespace, tmp_path: Path, key: bytes) -> None:
    phi.write_planted(tmp_path / "p.dcm")
    ds = pydicom.dcmread(tmp_path / "p.dcm")
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", "1000")  # b value: safe
    block.add_new(0x10, "LO", "NOT-ON-THE-LIST")
    ds.save_as(tmp_path / "p.dcm", enforce_file_format=True)
    run(tmp_path / "p.dcm", tmp_path / "keep.dcm", key, keep_private_safe=True)
    run(tmp_path / "p.dcm", tmp_path / "drop.dcm", key)
    kept = pydicom.dcmread(tmp_path / "keep.dcm")
    assert kept.private_block(0x0019, "SIEMENS MR HEADER")[0x0C].value == "1000"
    assert b"NOT-ON-THE-LIST" not in (tmp_path / "keep.dcm").read_bytes()
    assert phi.PRIVATE_CREATOR.encode() not in (tmp_path / "keep.dcm").read_bytes()
    assert not any(e.tag.is_private for e in pydicom.dcmread(tmp_path / "drop.dcm").iterall())


def test_leak_check_fails_the_file(planted: Path, tmp_path: Path, key: bytes) -> None:
    ds = pydicom.dcmread(planted)
    ds.Manufacturer = "MRN-4471-PHI"  # an identifier copied into an attribute the profile keeps
    ds.save_as(planted, enforce_file_format=True)
    result = run(planted, tmp_path / "out.dcm", key)
    assert result.status == "failed" and "survived" in result.reason
    assert "MRN" not in result.reason and not (tmp_path / "out.dcm").exists()


def test_sequence_with_d_action_is_emptied(planted: Path, tmp_path: Path, key: bytes) -> None:
    ds = pydicom.dcmread(planted)
    person = pydicom.Dataset()
    person.CodeValue, person.CodeMeaning = "EMP-1234567", "JOHNATHAN BADGE"
    ds.PersonIdentificationCodeSequence = Sequence([person])
    ds.save_as(planted, enforce_file_format=True)
    run(planted, tmp_path / "out.dcm", key)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert len(out.PersonIdentificationCodeSequence) == 0
    assert b"EMP-1234567" not in (tmp_path / "out.dcm").read_bytes()


def test_shifted_date_equal_to_another_original_is_not_a_leak(
    planted: Path, tmp_path: Path, key: bytes
) -> None:
    import datetime as dt

    offset = KeyedMapper(key).date_offset("MRN-4471-PHI")
    ds = pydicom.dcmread(planted)
    ds.ContentDate = (dt.date(2019, 3, 14) - dt.timedelta(days=offset)).strftime("%Y%m%d")
    ds.save_as(planted, enforce_file_format=True)
    result = run(planted, tmp_path / "out.dcm", key, dates="shift")
    assert result.status == "done", result.reason
    assert pydicom.dcmread(tmp_path / "out.dcm").ContentDate == "20190314"
