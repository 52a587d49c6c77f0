"""Fixtures for the de-identification tests: a key, planted-PHI files and a leak oracle.

The helpers are handed to tests through the ``phi`` fixture (no imports from conftest).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

_KEPT_UID_KEYWORDS = ("TransferSyntaxUID", "ImplementationClassUID", "CodingSchemeUID")


def identifiers(ds: Dataset) -> set[str]:
    """Every value in ``ds`` (any depth, private too) that must not reach the output.

    Names, patient IDs, accession numbers, dates (DA, date part of DT) and instance UIDs
    (not SOP class, transfer syntax or DICOM-defined ones), at least 6 characters long.
    """
    found: set[str] = set()

    def visit(dataset: Dataset, _elem) -> None:
        elem = _elem
        if elem.VR == "SQ" or elem.value in (None, b"", ""):
            return
        values = elem.value if elem.VM > 1 else [elem.value]
        keyword = elem.keyword or ""
        for value in values:
            text = str(value).strip()
            if elem.VR == "UI" and not (
                text.startswith("1.2.840.10008.")
                or keyword.endswith("ClassUID")
                or keyword in _KEPT_UID_KEYWORDS
            ):
                found.add(text)
            elif elem.VR == "PN" or keyword in ("PatientID", "AccessionNumber", "OtherPatientIDs"):
                found.add(text)
            elif elem.VR == "DA":
                found.add(text)
            elif elem.VR == "DT":
                found.add(text[:8])

    ds.walk(visit)
    if hasattr(ds, "file_meta"):
        found.add(str(ds.file_meta.get("MediaStorageSOPInstanceUID", "")))
    return {t for t in found if len(t) >= 6}


def leaked(original: Dataset, output: Path) -> set[str]:
    """Identifiers of ``original`` found anywhere in the bytes of ``output`` (outside pixels)."""
    data = output.read_bytes()
    pixels = pydicom.dcmread(output).get("PixelData") or b""
    return {
        text
        for text in identifiers(original)
        if data.count(text.encode()) > pixels.count(text.encode())
    }


# Values planted in a synthetic file; none may appear in any de-identified output.
PLANTED = {
    "PatientName": "DOE^JOHNATHAN^Q",
    "PatientID": "MRN-4471-PHI",
    "PatientAddress": "12 ELM STREET SPRINGFIELD",
    "PatientTelephoneNumbers": "555-0199-PHONE",
    "OtherPatientIDs": "OTHER-ID-7788",
    "AccessionNumber": "ACC-99812-X",
    "StudyID": "STUDY-8877",
    "StudyDescription": "CT CHEST FOR JOHNATHAN",
    "SeriesDescription": "SERIES OF JOHNATHAN",
    "ProtocolName": "PROTOCOL JOHNATHAN",
    "ReferringPhysicianName": "HOUSE^GREGORY",
    "PerformingPhysicianName": "WILSON^JAMES",
    "OperatorsName": "CUDDY^LISA",
    "InstitutionName": "ST ELSEWHERE HOSPITAL",
    "InstitutionAddress": "1 HOSPITAL ROAD BOSTON",
    "InstitutionalDepartmentName": "RADIOLOGY WEST WING",
    "StationName": "CTROOM7STATION",
    "ImageComments": "patient johnathan complained of pain",
    "AdditionalPatientHistory": "HISTORY OF JOHNATHAN",
    "RequestingPhysician": "CHASE^ROBERT",
    "DeviceSerialNumber": "SERIAL-123456",
}
PLANTED_DATES = ["19610923", "20190314", "20190315", "20180101", "20181231", "20170707"]
PLANTED_PRIVATE = ["PRIVATE-SECRET-NAME", "PRIVATE-NESTED-SECRET"]
PRIVATE_CREATOR = "ACME PHI 1.0"


def _item(**attrs: object) -> Dataset:
    item = Dataset()
    for keyword, value in attrs.items():
        setattr(item, keyword, value)
    return item


def _nested(instance_uid: str, depth: int) -> Sequence:
    """A chain of sequences ``depth`` levels deep, PHI at every level."""
    item = _item(
        ReferencedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
        ReferencedSOPInstanceUID=instance_uid,
        PatientName="DOE^JOHNATHAN^Q",
        OperatorsName="CUDDY^LISA",
        InstitutionName="ST ELSEWHERE HOSPITAL",
        ImageComments="patient johnathan complained of pain",
        AccessionNumber="ACC-99812-X",
        ContentDate="20170707",
        ObservationDateTime="20190314101530",
    )
    item.add_new((0x0011, 0x0010), "LO", PRIVATE_CREATOR)
    item.add_new((0x0011, 0x1001), "LO", "PRIVATE-NESTED-SECRET")
    if depth > 1:
        item.SourceImageSequence = _nested(instance_uid, depth - 1)
    return Sequence([item])


def planted_dataset(
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    instance_uid: str | None = None,
    frame_uid: str | None = None,
    referenced_uid: str | None = None,
    patient_id: str = "MRN-4471-PHI",
) -> Dataset:
    """A small CT image whose header is full of PHI, at the top and 4 sequences deep."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = instance_uid or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.SourceApplicationEntityTitle = "ELSEWHERE_PACS"
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"DOE^JOHNATHAN preamble".ljust(128, b"X")
    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value)
    ds.PatientID = patient_id
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = frame_uid or generate_uid()
    ds.Modality, ds.ImageType, ds.BurnedInAnnotation = "CT", ["ORIGINAL", "PRIMARY"], "NO"
    ds.PatientBirthDate, ds.StudyDate, ds.SeriesDate = "19610923", "20190314", "20190314"
    ds.ContentDate, ds.StudyTime = "20190315", "101530"
    ds.AcquisitionDateTime = "20190314101530.123456+0100"
    ds.DateOfLastCalibration = ["20180101", "20181231"]
    ds.OtherPatientIDsSequence = Sequence([_item(PatientID="OTHER-ID-7788")])
    ds.RequestAttributesSequence = Sequence([_item(RequestedProcedureID="REQ-55443")])
    ds.ProcedureCodeSequence = Sequence(  # a sequence the table does not list
        [
            _item(
                CodeValue="CTCHEST", CodeMeaning="CT CHEST", InstitutionName="ST ELSEWHERE HOSPITAL"
            )
        ]
    )
    ds.ReferencedImageSequence = _nested(referenced_uid or generate_uid(), depth=4)
    icon = _item(Rows=2, Columns=2, BitsAllocated=8, SamplesPerPixel=1)
    icon.PixelData = b"JOHNATHAN!"[:4]
    ds.IconImageSequence = Sequence([icon])
    ds.add_new((0x0009, 0x0010), "LO", PRIVATE_CREATOR)
    ds.add_new((0x0009, 0x1001), "LO", "PRIVATE-SECRET-NAME")
    ds.add_new((0x0009, 0x1002), "SQ", Sequence([_item(PatientName="PRIVATE-NESTED-SECRET")]))
    ds.add_new((0x6000, 0x3000), "OW", b"\x01\x02" * 8)
    ds.add_new((0x6000, 0x4000), "LT", "OVERLAY JOHNATHAN")
    ds.add_new((0x5000, 0x3000), "OW", b"\x03\x04" * 8)
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    pixels = np.random.default_rng(0).integers(0, 4096, (16, 16), dtype=np.uint16)
    ds.PixelData = pixels.tobytes()
    return ds


def write_planted(path: Path, **kwargs: object) -> Dataset:
    ds = planted_dataset(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return ds


def planted_strings() -> list[str]:
    return [*PLANTED.values(), *PLANTED_DATES, *PLANTED_PRIVATE, "JOHNATHAN", "ELSEWHERE"]


@pytest.fixture
def phi() -> SimpleNamespace:
    """The helpers above: planted_dataset, write_planted, planted_strings, leaked, ..."""
    return SimpleNamespace(
        PRIVATE_CREATOR=PRIVATE_CREATOR,
        identifiers=identifiers,
        leaked=leaked,
        planted_dataset=planted_dataset,
        planted_strings=planted_strings,
        write_planted=write_planted,
    )


@pytest.fixture
def key() -> bytes:
    return bytes(range(32))


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A synthetic CT file full of planted PHI (top level, 4 sequences deep, private tags)."""
    path = tmp_path / "in" / "planted.dcm"
    write_planted(path)
    return path
