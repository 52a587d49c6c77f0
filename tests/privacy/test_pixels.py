"""Burned-in text risk, quarantine and region redaction."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest

from medlens.errors import ConfigError
from medlens.privacy import Deidentifier, DeidOptions, burned_in_risk, parse_region


@pytest.mark.parametrize(
    ("changes", "at_risk"),
    [
        ({}, False),
        ({"BurnedInAnnotation": "YES"}, True),
        ({"BurnedInAnnotation": None, "Modality": "US"}, True),
        ({"BurnedInAnnotation": "NO", "Modality": "US"}, False),
        ({"BurnedInAnnotation": None, "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, True),
        ({"BurnedInAnnotation": None, "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7.4"}, True),
        ({"BurnedInAnnotation": None, "ImageType": ["DERIVED", "SECONDARY"]}, True),
        ({"BurnedInAnnotation": None, "ImageType": ["ORIGINAL", "PRIMARY", "SAVE"]}, True),
        ({"BurnedInAnnotation": None}, False),
    ],
)
def test_burned_in_risk(phi: SimpleNamespace, changes: dict, at_risk: bool) -> None:
    ds = phi.planted_dataset()
    for keyword, value in changes.items():
        if value is None:
            del ds[keyword]
        else:
            setattr(ds, keyword, value)
    assert (burned_in_risk(ds) is not None) == at_risk


def test_no_pixels_no_risk(phi: SimpleNamespace) -> None:
    ds = phi.planted_dataset()
    ds.BurnedInAnnotation = "YES"
    del ds.PixelData
    assert burned_in_risk(ds) is None


@pytest.fixture
def ultrasound(phi: SimpleNamespace, tmp_path: Path) -> Path:
    """A planted-PHI image marked as ultrasound, without BurnedInAnnotation."""
    ds = phi.planted_dataset()
    ds.Modality = "US"
    del ds.BurnedInAnnotation
    ds.save_as(tmp_path / "us.dcm", enforce_file_format=True)
    return tmp_path / "us.dcm"


def test_at_risk_file_is_quarantined_with_header_deidentified(
    ultrasound: Path, tmp_path: Path
) -> None:
    result = Deidentifier(b"k" * 32).deidentify_file(ultrasound, tmp_path / "out" / "us.dcm")
    assert result.status == "quarantined" and "ultrasound" in result.reason
    assert result.output == "quarantine/us.dcm" and not (tmp_path / "out" / "us.dcm").exists()
    assert b"JOHNATHAN" not in (tmp_path / "out" / "quarantine" / "us.dcm").read_bytes()


def test_redaction_blanks_regions_of_at_risk_images(ultrasound: Path, tmp_path: Path) -> None:
    original = pydicom.dcmread(ultrasound).pixel_array
    options = DeidOptions(redact=(parse_region("0,0,8,2"), parse_region("10,10,16,16")))
    result = Deidentifier(b"k" * 32, options).deidentify_file(ultrasound, tmp_path / "r.dcm")
    assert result.status == "redacted"
    ds = pydicom.dcmread(tmp_path / "r.dcm")
    pixels = ds.pixel_array
    fill = original.min()
    assert (pixels[0:2, 0:8] == fill).all() and (pixels[10:, 10:] == fill).all()
    np.testing.assert_array_equal(pixels[2:10, :], original[2:10, :])
    assert ds.BurnedInAnnotation == "NO"
    assert "113101" in [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]


def test_redaction_of_compressed_rgb(tmp_path: Path, dicom_testfile) -> None:
    src = dicom_testfile("SC_rgb_rle.dcm")
    options = DeidOptions(redact=((0, 0, 20, 10),))
    result = Deidentifier(b"k" * 32, options).deidentify_file(src, tmp_path / "r.dcm")
    assert result.status == "redacted", result.reason
    ds = pydicom.dcmread(tmp_path / "r.dcm")
    assert not ds.file_meta.TransferSyntaxUID.is_compressed
    original = pydicom.dcmread(src).pixel_array
    assert (ds.pixel_array[0:10, 0:20] == original.min()).all()
    np.testing.assert_array_equal(ds.pixel_array[10:], original[10:])


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "5,0,2,4", "-1,0,2,2"])
def test_parse_region_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_region(text)


def test_quarantine_path_can_be_anywhere(ultrasound: Path, tmp_path: Path) -> None:
    deid = Deidentifier(b"k" * 32)
    result = deid.deidentify_file(
        ultrasound, tmp_path / "out" / "o.dcm", quarantine=tmp_path / "q" / "1.dcm"
    )
    assert result.status == "quarantined" and result.output == (tmp_path / "q" / "1.dcm").as_posix()
    assert (tmp_path / "q" / "1.dcm").exists() and not (tmp_path / "out").exists()


def test_options_check_regions() -> None:
    with pytest.raises(ConfigError):
        DeidOptions(redact=((10, 0, 5, 5),))
