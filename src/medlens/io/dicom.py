"""DICOM Part 10 files (one file: single- or multi-frame) through pydicom.

Values: the modality LUT (Rescale Slope/Intercept, a Modality LUT Sequence, or the per-frame
Pixel Value Transformation of enhanced objects) is applied and the result is ``float32``
(Hounsfield units for CT). Colour images (RGB, YBR_*, PALETTE COLOR) become RGB on a trailing
axis, with their decoded integer dtype. MONOCHROME1 is inverted *after* the modality LUT,
over the full range the stored bits allow, so it reads exactly like the same image stored
as MONOCHROME2; the window and VOI LUT kept in ``meta`` are inverted with it.

Frames stack on axis 0: a single frame gives ``(rows, cols)``, several ``(frames, rows, cols)``.
Files are opened read-only, never with ``force=True``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medlens.errors import (
    InvalidImageError,
    NoPixelDataError,
    TruncatedImageError,
    UnsupportedFormatError,
)
from medlens.io.base import DEFAULT_MAX_VOXELS, check_finite, check_size, orientation_code
from medlens.io.image import Image

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "DicomReader",
    "MAX_SEQUENCE_DEPTH",
    "check_nesting",
    "dataset_to_image",
    "lps_affine",
    "open_dataset",
    "read_dicom",
    "slice_geometry",
    "sop_class_name",
]

logger = logging.getLogger(__name__)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
MAX_SEQUENCE_DEPTH = 32
COLOR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR")


class DicomReader:
    """DICOM Part 10 files, recognised by the ``DICM`` marker after the 128-byte preamble."""

    name = "DICOM"
    extensions = (".dcm", ".dicom", ".dic")

    def can_read(self, header: bytes, path: Path) -> bool:
        return header[128:132] == b"DICM"

    def read(self, path: Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Image:
        return read_dicom(path, max_voxels=max_voxels)


def read_dicom(path: str | Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Image:
    """Read one DICOM file (single- or multi-frame) into an :class:`Image`."""
    path = Path(path)
    return dataset_to_image(open_dataset(path), path, max_voxels=max_voxels)


def open_dataset(path: Path, *, pixels: bool = True) -> Dataset:
    """``pydicom.dcmread`` without ``force``, with its failures turned into medlens errors."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=not pixels)
            check_nesting(ds, path)
        except RecursionError:  # pydicom parses undefined-length sequences recursively
            raise InvalidImageError(_too_deep(path)) from None
        except InvalidImageError:
            raise
        except InvalidDicomError as exc:
            raise InvalidImageError(f"{path}: not a valid DICOM Part 10 file ({exc})") from None
        except (EOFError, OSError, ValueError, KeyError, TypeError) as exc:
            raise TruncatedImageError(
                f"{path}: DICOM file is truncated or corrupt ({exc})"
            ) from None
    for warning in caught:
        message = str(warning.message)
        if "End of file reached" in message:
            raise TruncatedImageError(f"{path}: DICOM file ends before its last element")
        logger.warning("%s: %s", path.name, message)
    return ds


def check_nesting(ds: Dataset, path: Path, max_depth: int = MAX_SEQUENCE_DEPTH) -> None:
    """Refuse sequences nested deeper than ``max_depth`` (real objects stay under ten).

    Walks the dataset without recursion, parsing each lazily read sequence once.
    """
    from pydicom.datadict import dictionary_VR

    stack = [(ds, 0)]
    while stack:
        dataset, depth = stack.pop()
        for element in dataset.elements():
            vr = element.VR or _known_vr(element.tag, dictionary_VR)
            if vr != "SQ":
                continue
            if depth >= max_depth:
                raise InvalidImageError(_too_deep(path, max_depth))
            stack += [(item, depth + 1) for item in dataset[element.tag].value]


def _known_vr(tag: Any, lookup: Any) -> str | None:
    try:
        return str(lookup(tag))
    except KeyError:  # private or unknown tag: read as bytes, never as a sequence
        return None


def _too_deep(path: Path, max_depth: int = MAX_SEQUENCE_DEPTH) -> str:
    return f"{path}: DICOM sequences nested more than {max_depth} levels deep; refusing it"


def dataset_to_image(ds: Dataset, path: Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Image:
    """Convert a pydicom dataset (with pixel data) into an :class:`Image`."""
    frames = _check_pixels(ds, path, max_voxels)
    array = _decode(ds, path)
    if frames > 1 and array.shape[0] != frames:  # pydicom drops a frame axis of length 1
        array = array[np.newaxis]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    meta = _base_meta(ds, frames)
    if photometric in COLOR_PHOTOMETRICS:
        array = _to_rgb(array, ds, photometric)
    else:
        array, display = _grey_values(array, ds, frames, photometric)
        meta.update(display)
    check_finite(array, path)
    spacing, affine, geometry_meta = _geometry(ds, frames)
    meta.update(geometry_meta)
    if slice_geometry(ds)["orientation"] is not None:
        meta["orientation"] = orientation_code(affine, len(spacing))
    modality = str(ds.get("Modality", "OT")) or "OT"
    return Image(
        array=array,
        spacing=spacing,
        affine=affine,
        modality=modality,
        kind="label" if modality == "SEG" else "scalar",
        meta=meta,
        source=path,
    )


# --- checks before decoding -------------------------------------------------------------


def _check_pixels(ds: Dataset, path: Path, max_voxels: int) -> int:
    """Raise for missing, oversized, undecodable or truncated pixel data; return frame count."""
    if not any(key in ds for key in PIXEL_KEYWORDS):
        kind = sop_class_name(ds)
        raise NoPixelDataError(f"{path}: DICOM object has no pixel data ({kind})")
    frames = _frame_count(ds, path)
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if rows < 1 or cols < 1:
        raise InvalidImageError(f"{path}: DICOM header gives an empty image ({rows}x{cols})")
    samples = int(ds.get("SamplesPerPixel") or 1)
    check_size((frames, rows, cols, samples), path, max_voxels)
    _check_transfer_syntax(ds, path)
    _check_length(ds, path)
    return frames


def _frame_count(ds: Dataset, path: Path) -> int:
    value = ds.get("NumberOfFrames")
    try:
        frames = int(value) if value not in (None, "") else 1
    except (TypeError, ValueError):
        raise InvalidImageError(f"{path}: invalid Number of Frames {value!r}") from None
    if frames < 1:
        raise InvalidImageError(f"{path}: Number of Frames is {frames}")
    return frames


def _check_transfer_syntax(ds: Dataset, path: Path) -> None:
    from pydicom.pixels import get_decoder

    uid = ds.file_meta.get("TransferSyntaxUID")
    if uid is None:
        raise UnsupportedFormatError(f"{path}: DICOM file meta has no Transfer Syntax UID")
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise UnsupportedFormatError(
            f"{path}: transfer syntax {uid.name} ({uid}) is not supported"
        ) from None
    if not decoder.is_available:
        raise UnsupportedFormatError(
            f"{path}: no installed decoder for transfer syntax {uid.name} ({uid}); "
            "install pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg and pylibjpeg-rle"
        )


def _check_length(ds: Dataset, path: Path) -> None:
    from pydicom.pixels.utils import get_expected_length

    if ds.file_meta.TransferSyntaxUID.is_compressed or "PixelData" not in ds:
        return
    expected = get_expected_length(ds, "bytes")
    actual = len(ds.PixelData)
    if actual < expected:
        raise TruncatedImageError(
            f"{path}: pixel data holds {actual:,} bytes, the header needs {expected:,}"
        )


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            array = ds.pixel_array
    except (ValueError, RuntimeError, NotImplementedError, EOFError, OSError, IndexError) as exc:
        syntax = ds.file_meta.TransferSyntaxUID.name
        raise InvalidImageError(f"{path}: cannot decode pixel data ({syntax}): {exc}") from None
    for warning in caught:
        logger.warning("%s: %s", path.name, warning.message)
    return array


# --- values -----------------------------------------------------------------------------


def _to_rgb(array: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """RGB on the last axis (pydicom already converts YBR to RGB); expand palettes."""
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        return apply_color_lut(array, ds)
    return array


def _grey_values(
    array: np.ndarray, ds: Dataset, frames: int, photometric: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """Modality LUT, then MONOCHROME1 inversion; return values and display meta."""
    if ds.get("Modality") == "SEG" or int(ds.get("BitsAllocated") or 0) == 1:
        return array, {}  # segment masks: keep the labels as stored
    values = _modality_lut(array, ds, frames)
    display = _display_meta(ds)
    if photometric == "MONOCHROME1":
        total = sum(_value_range(ds, frames))
        values = (total - values).astype(np.float32)
        display = _invert_display(display, total)
        display["inverted"] = True
    return values, display


def _modality_lut(array: np.ndarray, ds: Dataset, frames: int) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut

    if array.dtype.kind == "f":
        return array.astype(np.float32)
    if "ModalityLUTSequence" in ds or "RescaleSlope" in ds:
        return np.asarray(apply_modality_lut(array, ds), dtype=np.float32)
    params = [_frame_item(ds, f, "PixelValueTransformationSequence") for f in range(frames)]
    if not any(params):
        return array.astype(np.float32)
    out = array.astype(np.float32)
    frames_view = out if frames > 1 else out[np.newaxis]
    for index, item in enumerate(params):
        if item is not None:
            slope = float(item.get("RescaleSlope", 1.0))
            frames_view[index] = frames_view[index] * slope + float(item.get("RescaleIntercept", 0))
    return out


def _value_range(ds: Dataset, frames: int) -> tuple[float, float]:
    """Lowest and highest value the stored bits allow, after the modality LUT."""
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    ends = np.array([low, high], dtype=np.int64)
    if "ModalityLUTSequence" in ds and high - low < 2**17:
        ends = np.arange(low, high + 1, dtype=np.int64)
    mapped = _modality_lut(ends, ds, 1)
    return float(mapped.min()), float(mapped.max())


def _display_meta(ds: Dataset) -> dict[str, Any]:
    """The file's own window (centre, width) and VOI LUT, if any."""
    out: dict[str, Any] = {}
    source = ds if "WindowCenter" in ds else _frame_item(ds, 0, "FrameVOILUTSequence")
    if source is not None and "WindowCenter" in source and "WindowWidth" in source:
        center, width = _first(source.WindowCenter), _first(source.WindowWidth)
        if width > 0:
            out["window"] = [center, width]
    if ds.get("VOILUTSequence"):
        item = ds.VOILUTSequence[0]
        from pydicom.pixels import apply_voi

        entries, first_mapped, bits = (int(v) for v in item.LUTDescriptor)
        entries = entries or 2**16
        inputs = np.arange(first_mapped, first_mapped + entries, dtype=np.int64)
        table = apply_voi(inputs, ds)
        out["voi_lut"] = {"first_mapped": first_mapped, "bits": bits, "table": table.tolist()}
    return out


def _invert_display(display: dict[str, Any], total: float) -> dict[str, Any]:
    """Mirror a window and a VOI LUT into the inverted value domain of MONOCHROME1."""
    out = dict(display)
    if "window" in out:
        out["window"] = [total - out["window"][0], out["window"][1]]
    if "voi_lut" in out:
        lut = out["voi_lut"]
        table = np.asarray(lut["table"])
        top = 2 ** lut["bits"] - 1
        out["voi_lut"] = {
            "first_mapped": int(round(total)) - (lut["first_mapped"] + len(table) - 1),
            "bits": lut["bits"],
            "table": (top - table[::-1]).tolist(),
        }
    return out


def _first(value: Any) -> float:
    try:
        return float(value[0])
    except TypeError:
        return float(value)


# --- geometry ---------------------------------------------------------------------------


def _frame_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The first item of a functional group ``sequence`` for ``frame`` (per-frame, then shared)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame) and per_frame[frame].get(sequence):
        return per_frame[frame].get(sequence)[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and shared[0].get(sequence):
        return shared[0].get(sequence)[0]
    return None


def slice_geometry(ds: Dataset, frame: int = 0) -> dict[str, Any]:
    """Orientation cosines, position and pixel spacing of one frame (``None`` when absent)."""
    orient = (
        ds
        if "ImageOrientationPatient" in ds
        else _frame_item(ds, frame, "PlaneOrientationSequence")
    )
    position = (
        ds if "ImagePositionPatient" in ds else _frame_item(ds, frame, "PlanePositionSequence")
    )
    measures = ds if "PixelSpacing" in ds else _frame_item(ds, frame, "PixelMeasuresSequence")
    spacing, source = None, None
    for holder, key in ((measures, "PixelSpacing"), (ds, "ImagerPixelSpacing")):
        values = holder.get(key) if holder is not None else None
        if values and len(values) == 2 and min(float(v) for v in values) > 0:
            spacing, source = (float(values[0]), float(values[1])), key
            break
    thickness = (measures or ds).get("SpacingBetweenSlices") or (measures or ds).get(
        "SliceThickness"
    )
    return {
        "orientation": _floats(orient, "ImageOrientationPatient", 6),
        "position": _floats(position, "ImagePositionPatient", 3),
        "pixel_spacing": spacing,
        "spacing_source": source,
        "thickness": float(thickness) if thickness else None,
    }


def _floats(holder: Dataset | None, key: str, count: int) -> np.ndarray | None:
    values = holder.get(key) if holder is not None else None
    if not values or len(values) != count:
        return None
    return np.array([float(v) for v in values])


def lps_affine(
    orientation: np.ndarray | None,
    position: np.ndarray | None,
    pixel_spacing: tuple[float, float],
    step: np.ndarray | None,
) -> np.ndarray:
    """Affine from array indices (slice, row, col) to RAS+ mm, from DICOM LPS geometry."""
    if orientation is None:
        affine = np.diag([_step_length(step), pixel_spacing[0], pixel_spacing[1], 1.0])
        return affine
    along_row, along_col = orientation[:3], orientation[3:]
    normal = np.cross(along_row, along_col)
    lps = np.eye(4)
    lps[:3, 0] = step if step is not None else normal
    lps[:3, 1] = along_col * pixel_spacing[0]
    lps[:3, 2] = along_row * pixel_spacing[1]
    lps[:3, 3] = position if position is not None else 0.0
    return LPS_TO_RAS @ lps


def _step_length(step: np.ndarray | None) -> float:
    return float(np.linalg.norm(step)) if step is not None else 1.0


def _geometry(ds: Dataset, frames: int) -> tuple[tuple[float, ...], np.ndarray, dict[str, Any]]:
    first = slice_geometry(ds, 0)
    pixel = first["pixel_spacing"] or (1.0, 1.0)
    meta: dict[str, Any] = {"spacing_source": first["spacing_source"] or "unknown"}
    step = _frame_step(ds, frames, first)
    affine = lps_affine(first["orientation"], first["position"], pixel, step)
    if frames == 1:
        affine = affine[:, [1, 2, 0, 3]]  # indices (row, col, 0)
        return pixel, affine, meta
    return (_step_length(step), *pixel), affine, meta


def _frame_step(ds: Dataset, frames: int, first: dict[str, Any]) -> np.ndarray | None:
    """World vector from one frame to the next: from frame positions, else the slice normal."""
    orientation = first["orientation"]
    if frames > 1 and first["position"] is not None:
        last = slice_geometry(ds, frames - 1)["position"]
        if last is not None and not np.allclose(last, first["position"]):
            return (last - first["position"]) / (frames - 1)
    if orientation is None:
        return None
    thickness = first["thickness"] or 1.0
    return np.cross(orientation[:3], orientation[3:]) * thickness


# --- metadata ---------------------------------------------------------------------------


def sop_class_name(ds: Dataset) -> str:
    """The SOP class's name, e.g. "CT Image Storage"."""
    from pydicom.uid import UID

    uid = ds.get("SOPClassUID")
    return UID(str(uid)).name if uid else "unknown SOP class"


def _base_meta(ds: Dataset, frames: int) -> dict[str, Any]:
    """Non-identifying description of the file (no names, dates, descriptions or UIDs)."""
    syntax = ds.file_meta.TransferSyntaxUID
    meta: dict[str, Any] = {
        "format": "DICOM",
        "sop_class": sop_class_name(ds),
        "photometric": str(ds.get("PhotometricInterpretation", "")),
        "transfer_syntax": syntax.name,
        "transfer_syntax_uid": str(syntax),
        "bits_allocated": int(ds.get("BitsAllocated") or 0),
        "bits_stored": int(ds.get("BitsStored") or ds.get("BitsAllocated") or 0),
        "signed": int(ds.get("PixelRepresentation") or 0) == 1,
        "samples_per_pixel": int(ds.get("SamplesPerPixel") or 1),
        "frames": frames,
    }
    if "RescaleSlope" in ds:
        meta["rescale"] = [float(ds.RescaleSlope), float(ds.get("RescaleIntercept", 0))]
    if "ModalityLUTSequence" in ds:
        meta["modality_lut"] = True
    return meta
