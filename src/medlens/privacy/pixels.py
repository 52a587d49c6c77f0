"""Pixels that may show identifiers: burned-in text risk, and opt-in region redaction.

Header de-identification cannot clean text burned into the pixels (ultrasound and
secondary-capture screens, scanned documents). Such files are flagged by
:func:`burned_in_risk` and quarantined, unless the user redacts known regions with
:func:`redact_regions`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from medlens.errors import ConfigError, DeidentificationError

__all__ = ["Region", "burned_in_risk", "check_region", "parse_region", "redact_regions"]

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels: columns x0..x1-1, rows y0..y1-1

_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def burned_in_risk(ds: Dataset) -> str | None:
    """Why this image may carry burned-in text, or ``None`` if nothing suggests it.

    A clear ``BurnedInAnnotation`` of ``NO`` is trusted; ``YES`` always counts. Without the
    flag, ultrasound, secondary capture and ImageType SECONDARY or SAVE count as at risk.
    """
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        return None
    flag = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if flag == "YES":
        return "BurnedInAnnotation is YES"
    if flag == "NO":
        return None
    image_type = {str(v).strip().upper() for v in (ds.get("ImageType") or [])}
    if str(ds.get("Modality", "")).strip().upper() == "US":
        return "ultrasound without BurnedInAnnotation NO"
    if str(ds.get("SOPClassUID", "")).startswith(_SECONDARY_CAPTURE):
        return "secondary capture without BurnedInAnnotation NO"
    if image_type & {"SECONDARY", "SAVE"}:
        return "ImageType SECONDARY/SAVE without BurnedInAnnotation NO"
    return None


def parse_region(text: str) -> Region:
    """Parse ``"x0,y0,x1,y1"`` (pixels, end exclusive) into a region."""
    try:
        x0, y0, x1, y1 = (int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"redaction region {text!r} must be four integers x0,y0,x1,y1") from None
    return check_region((x0, y0, x1, y1))


def check_region(region: Region) -> Region:
    """Refuse a region that is empty or starts outside the image."""
    x0, y0, x1, y1 = region
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise ConfigError(f"redaction region {region} needs 0 <= x0 < x1 and 0 <= y0 < y1")
    return region


def redact_regions(ds: Dataset, regions: Sequence[Region]) -> None:
    """Fill each region of every frame with the image minimum, in place.

    Compressed pixel data is decoded and stored uncompressed (Explicit VR Little Endian);
    the SOP Instance UID is left for the profile to replace.
    """
    if "PixelData" not in ds or int(ds.get("BitsAllocated", 0)) == 1:
        raise DeidentificationError("redaction needs integer pixel data of 8 bits or more")
    try:
        array = ds.pixel_array.copy()
    except Exception as exc:  # any decoder failure: we cannot redact what we cannot read
        raise DeidentificationError(
            f"pixel data could not be decoded ({type(exc).__name__})"
        ) from None
    samples = int(ds.get("SamplesPerPixel", 1))
    rows_axis = array.ndim - (3 if samples > 1 else 2)
    fill = array.min()
    for x0, y0, x1, y1 in regions:
        index = [slice(None)] * array.ndim
        index[rows_axis], index[rows_axis + 1] = slice(y0, y1), slice(x0, x1)
        array[tuple(index)] = fill
    photometric = str(ds.PhotometricInterpretation)
    if photometric.startswith("YBR") and samples == 3:
        photometric = "RGB"  # pydicom converts YCbCr to RGB when decoding
    ds.set_pixel_data(
        np.ascontiguousarray(array), photometric, int(ds.BitsStored), generate_instance_uid=False
    )
