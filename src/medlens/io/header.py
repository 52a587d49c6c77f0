"""What a file is, for people: the summary behind ``medlens info``.

Patient-identifying DICOM attributes are left out unless ``show_phi=True``; an
:class:`~medlens.io.Image`'s ``meta`` never holds them at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medlens.io.base import DEFAULT_MAX_VOXELS
from medlens.io.dispatch import detect_format, read_image
from medlens.io.image import Image

__all__ = ["PHI_KEYWORDS", "describe", "read_header"]

#: DICOM attributes shown only with ``show_phi=True`` (names, dates, IDs, free text, UIDs).
PHI_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "InstitutionName",
    "ReferringPhysicianName",
    "StudyDescription",
    "SeriesDescription",
    "StudyInstanceUID",
    "SeriesInstanceUID",
)

SUMMARY_KEYS = ("photometric", "transfer_syntax", "frames", "orientation", "sop_class", "window")


def read_header(path: str | Path, *, show_phi: bool = False) -> dict[str, Any]:
    """Header facts of one file, without decoding pixels.

    For DICOM: modality, SOP class, size, frames, photometric interpretation, transfer syntax,
    bits; plus the :data:`PHI_KEYWORDS` present when ``show_phi`` is true.
    """
    path = Path(path)
    reader = detect_format(path)
    if reader.name != "DICOM":
        return {"format": reader.name}
    from medlens.io.dicom import open_dataset, sop_class_name

    ds = open_dataset(path, pixels=False)
    syntax = ds.file_meta.get("TransferSyntaxUID")
    out: dict[str, Any] = {
        "format": "DICOM",
        "modality": str(ds.get("Modality", "")),
        "sop_class": sop_class_name(ds),
        "rows": int(ds.get("Rows") or 0),
        "cols": int(ds.get("Columns") or 0),
        "frames": int(ds.get("NumberOfFrames") or 1),
        "photometric": str(ds.get("PhotometricInterpretation", "")),
        "transfer_syntax": syntax.name if syntax else "",
        "bits_stored": int(ds.get("BitsStored") or 0),
    }
    if show_phi:
        out["phi"] = {key: str(ds.get(key)) for key in PHI_KEYWORDS if key in ds}
    return out


def describe(
    path: str | Path, *, show_phi: bool = False, max_voxels: int = DEFAULT_MAX_VOXELS
) -> dict[str, Any]:
    """A JSON-ready summary of a file or DICOM folder: format, size, geometry, value range.

    A folder lists its series (UIDs shortened unless ``show_phi``); when it holds exactly one,
    the volume is read and summarised too. An ``.npz`` with several arrays lists them.
    """
    path = Path(path)
    if path.is_dir():
        return _describe_folder(path, show_phi, max_voxels)
    if detect_format(path).name == "NumPy":
        from medlens.io.npz import list_arrays

        arrays = list_arrays(path)
        if len(arrays) > 1:
            listing = {k: {"shape": list(s), "dtype": d} for k, (s, d) in arrays.items()}
            return {"path": str(path), "format": "NumPy archive", "arrays": listing}
    out = {"path": str(path), **summarize(read_image(path, max_voxels=max_voxels))}
    if show_phi and out["format"] == "DICOM":
        out["phi"] = read_header(path, show_phi=True)["phi"]
    return out


def summarize(image: Image) -> dict[str, Any]:
    """The facts ``medlens info`` shows for one image."""
    array = image.array
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    low, high = (finite.min().item(), finite.max().item()) if finite.size else (None, None)
    out: dict[str, Any] = {
        "format": image.meta.get("format", "?"),
        "modality": image.modality,
        "kind": image.kind,
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "spacing": [round(s, 4) for s in image.spacing],
        "range": [low, high],
    }
    out.update({key: image.meta[key] for key in SUMMARY_KEYS if key in image.meta})
    return out


def _describe_folder(folder: Path, show_phi: bool, max_voxels: int) -> dict[str, Any]:
    from medlens.io.series import list_series, read_series

    series = list_series(folder)
    out: dict[str, Any] = {
        "path": str(folder),
        "format": "DICOM folder",
        "series": [
            {
                "uid": s.uid if show_phi else s.short_uid,
                "modality": s.modality,
                "files": len(s.files),
                "size": [s.rows, s.cols],
            }
            for s in series
        ],
    }
    if len(series) == 1:
        out.update(summarize(read_series(folder, max_voxels=max_voxels)))
        if show_phi:
            out["phi"] = read_header(series[0].files[0], show_phi=True)["phi"]
    return out
