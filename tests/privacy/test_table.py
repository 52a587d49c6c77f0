"""Table E.1-1 as data, and how actions are resolved."""

from __future__ import annotations

import pytest
from pydicom.datadict import dictionary_keyword, dictionary_VR

from medlens.privacy.profile import resolve_action
from medlens.privacy.table import EDITION, SAFE_PRIVATE, TABLE_E1_1, parse_table

ACTIONS = {"D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}


def test_table_rows_match_the_dicom_dictionary() -> None:
    assert EDITION.startswith("PS3.15 20")
    assert len(TABLE_E1_1) > 350
    for tag, rule in TABLE_E1_1.items():
        assert rule.keyword == dictionary_keyword(tag), hex(tag)
        assert rule.basic in ACTIONS, rule
        assert rule.modified_dates == ("C" if dictionary_VR(tag) in ("DA", "DT", "TM") else "-")


def test_table_covers_the_usual_identifiers() -> None:
    keywords = {rule.keyword for rule in TABLE_E1_1.values()}
    for keyword in (
        "PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyDate",
        "InstitutionName", "ReferringPhysicianName", "OperatorsName", "StudyInstanceUID",
        "SOPInstanceUID", "FrameOfReferenceUID", "ReferencedSOPInstanceUID", "IconImageSequence",
        "OtherPatientIDsSequence", "ImageComments", "StudyDescription", "ContentSequence",
    ):  # fmt: skip
        assert keyword in keywords


def test_parse_table_reads_rows() -> None:
    table = parse_table("0010,0010  Z  -  PatientName\n0008,0020  Z  C  StudyDate\n")
    assert table[0x00100010].basic == "Z" and table[0x00080020].modified_dates == "C"


@pytest.mark.parametrize(
    ("tag", "vr", "dates", "expected"),
    [
        (0x00080050, "SH", "remove", "Z"),  # AccessionNumber Z
        (0x00080022, "DA", "remove", "Z"),  # AcquisitionDate X/Z
        (0x00080022, "DA", "shift", "C"),
        (0x00080080, "LO", "remove", "D"),  # InstitutionName X/Z/D
        (0x00081140, "SQ", "remove", "U"),  # ReferencedImageSequence X/Z/U*
        (0x00081110, "SQ", "remove", "Z"),  # ReferencedStudySequence X/Z
        (0x00200052, "UI", "remove", "U"),  # FrameOfReferenceUID
        (0x00100020, "LO", "remove", "Z"),
        (0x00080016, "UI", "remove", "K"),  # SOPClassUID: not in the table, a class UID
        (0x00081150, "UI", "remove", "K"),  # ReferencedSOPClassUID
        (0x00080060, "CS", "remove", "K"),  # Modality
        (0x0040A0B0, "US", "remove", "K"),
        (0x60003000, "OW", "remove", "X"),  # overlay data
        (0x601E0010, "US", "remove", "X"),  # any overlay group
        (0x50003000, "OW", "remove", "X"),  # curve
        (0x00080000, "UL", "remove", "X"),  # group length
        (0x00321032, "PN", "remove", "X"),
        (0x00700084, "PN", "remove", "Z"),
        (0x00189999, "PN", "remove", "Z"),  # an unlisted name is still a name
        (0x00189998, "DA", "shift", "C"),
        (0x00189998, "DA", "remove", "Z"),
        (0x00189997, "UN", "remove", "X"),
        (0x00080117, "UI", "remove", "U"),  # ContextUID: unlisted instance-like UID
    ],
)
def test_resolve_action(tag: int, vr: str, dates: str, expected: str) -> None:
    assert resolve_action(tag, vr, dates) == expected


def test_safe_private_entries_are_private_blocks() -> None:
    for group, creator, offset in SAFE_PRIVATE:
        assert group % 2 == 1 and creator and 0 <= offset <= 0xFF
