"""A folder of DICOM files read as one 3D volume (a series).

Slices are sorted by their Image Position (Patient) projected on the slice normal; the
slice spacing comes from those positions (never from Slice Thickness). A series whose slices
differ in size or orientation, repeat a position, or leave an irregular gap (a missing slice)
raises :class:`~medlens.errors.InconsistentSeriesError`. Non-DICOM files in the folder
(``.DS_Store``, ``DICOMDIR`` without pixels, notes) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medlens.errors import InconsistentSeriesError, InvalidImageError
from medlens.io.base import DEFAULT_MAX_VOXELS, check_finite, check_size, orientation_code
from medlens.io.dicom import dataset_to_image, lps_affine, open_dataset, slice_geometry
from medlens.io.image import Image

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["SeriesInfo", "list_series", "read_series"]

#: Relative tolerance on slice gaps and orientation cosines.
TOLERANCE = 1e-2


@dataclass(frozen=True)
class SeriesInfo:
    """One series found in a folder. ``uid`` is the Series Instance UID."""

    uid: str
    modality: str
    rows: int
    cols: int
    files: tuple[Path, ...] = field(repr=False)

    @property
    def short_uid(self) -> str:
        """The UID's last 12 characters, enough to pick a series (see :func:`read_series`)."""
        return self.uid if len(self.uid) <= 12 else "…" + self.uid[-12:]


def list_series(folder: str | Path) -> list[SeriesInfo]:
    """The image series in ``folder`` (searched recursively), largest first."""
    return [info for info, _ in _scan(Path(folder))]


def _scan(folder: Path) -> list[tuple[SeriesInfo, list[Dataset]]]:
    """Each series of ``folder`` with the headers of its files (same order as ``files``)."""
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    for path, ds in _headers(folder):
        groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((path, ds))
    series = []
    for uid, items in groups.items():
        first = items[0][1]
        info = SeriesInfo(
            uid=uid,
            modality=str(first.get("Modality", "OT")),
            rows=int(first.get("Rows") or 0),
            cols=int(first.get("Columns") or 0),
            files=tuple(path for path, _ in items),
        )
        series.append((info, [ds for _, ds in items]))
    return sorted(series, key=lambda item: (-len(item[0].files), item[0].uid))


def read_series(
    folder: str | Path,
    series_uid: str | None = None,
    *,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Image:
    """Read one series of ``folder`` as a ``(slices, rows, cols)`` volume.

    Args:
        folder: a folder of DICOM files (searched recursively).
        series_uid: the Series Instance UID, or a unique ending of it; needed only when the
            folder holds several series.
        max_voxels: refuse volumes larger than this before reading their pixels.
    """
    folder = Path(folder)
    scanned = _scan(folder)
    info, headers = scanned[_pick_series(folder, [s for s, _ in scanned], series_uid)]
    if len(info.files) == 1:
        return dataset_to_image(open_dataset(info.files[0]), info.files[0], max_voxels=max_voxels)
    check_size((len(headers), info.rows, info.cols), folder, max_voxels)
    order, step = _slice_order(folder, headers)
    first = _read_slice(info.files[order[0]], max_voxels)
    array = np.empty((len(order), *first.array.shape), dtype=first.array.dtype)
    array[0] = first.array
    for position, index in enumerate(order[1:], start=1):  # fill in place: no second copy
        array[position] = _read_slice(info.files[index], max_voxels).array
    check_finite(array, folder)
    geometry = slice_geometry(headers[order[0]])
    pixel = geometry["pixel_spacing"] or (1.0, 1.0)
    affine = lps_affine(geometry["orientation"], geometry["position"], pixel, step)
    meta = {
        **first.meta,
        "format": "DICOM series",
        "frames": len(order),
        "files": len(order),
        "orientation": orientation_code(affine, 3),
    }
    return Image(
        array=array,
        spacing=(float(np.linalg.norm(step)), *pixel),
        affine=affine,
        modality=first.modality,
        kind=first.kind,
        meta=meta,
        source=folder,
    )


def _headers(folder: Path) -> list[tuple[Path, Dataset]]:
    """(path, header) of every DICOM file with pixel data under ``folder``."""
    from medlens.io.base import read_header_bytes

    if not folder.is_dir():
        raise InvalidImageError(f"{folder}: not a folder")
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name.startswith(".") or read_header_bytes(path, 132)[128:132] != b"DICM":
            continue
        ds = open_dataset(path, pixels=False)
        if "Rows" in ds and "Columns" in ds:
            found.append((path, ds))
    if not found:
        raise InvalidImageError(f"{folder}: no DICOM image files in this folder")
    return found


def _pick_series(folder: Path, series: list[SeriesInfo], uid: str | None) -> int:
    """Index of the series to read: the one matching ``uid``, or the only one."""
    if uid is not None:
        exact = [i for i, s in enumerate(series) if s.uid == uid]
        matches = exact or [i for i, s in enumerate(series) if s.uid.endswith(uid)]
        if len(matches) == 1:
            return matches[0]
        problem = "matches no series" if not matches else "matches several series"
        raise InvalidImageError(f"{folder}: series UID {uid!r} {problem}; {_listing(series)}")
    if len(series) > 1:
        raise InvalidImageError(
            f"{folder}: holds {len(series)} series; choose one with "
            f"read_series(folder, series_uid=...) or --series; {_listing(series)}"
        )
    return 0


def _listing(series: list[SeriesInfo]) -> str:
    return "series: " + ", ".join(
        f"{s.uid} ({s.modality}, {len(s.files)} files, {s.rows}x{s.cols})" for s in series
    )


def _slice_order(folder: Path, headers: list[Dataset]) -> tuple[list[int], np.ndarray]:
    """Indices of the slices sorted along the normal, and the vector between slices."""
    geometries = [slice_geometry(ds) for ds in headers]
    _check_uniform(folder, headers, geometries)
    orientation = geometries[0]["orientation"]
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([g["position"] for g in geometries])
    distances = positions @ normal
    order = [int(i) for i in np.argsort(distances, kind="stable")]
    gaps = np.diff(distances[order])
    if np.any(gaps < 1e-3):
        raise InconsistentSeriesError(f"{folder}: two slices share the same position")
    typical = float(np.median(gaps))
    irregular = np.abs(gaps - typical) > TOLERANCE * typical
    if np.any(irregular):
        where = int(np.argmax(irregular))
        raise InconsistentSeriesError(
            f"{folder}: irregular slice gap of {gaps[where]:.3g} mm after slice {where} "
            f"(typical {typical:.3g} mm): a slice is missing or the series is not one volume"
        )
    step = (positions[order[-1]] - positions[order[0]]) / (len(order) - 1)
    return order, step


def _check_uniform(folder: Path, headers: list[Dataset], geometries: list[dict]) -> None:
    sizes = {(int(ds.Rows), int(ds.Columns)) for ds in headers}
    if len(sizes) > 1:
        raise InconsistentSeriesError(f"{folder}: slices of mixed sizes {sorted(sizes)}")
    if any(g["orientation"] is None or g["position"] is None for g in geometries):
        raise InconsistentSeriesError(
            f"{folder}: some files lack Image Orientation/Position (Patient); "
            "they cannot be stacked into a volume"
        )
    first = geometries[0]["orientation"]
    if any(not np.allclose(g["orientation"], first, atol=TOLERANCE) for g in geometries):
        raise InconsistentSeriesError(f"{folder}: slices of mixed orientation")


def _read_slice(path: Path, max_voxels: int) -> Image:
    image = dataset_to_image(open_dataset(path), path, max_voxels=max_voxels)
    if image.array.ndim != 2:
        raise InconsistentSeriesError(
            f"{path}: multi-frame or colour file inside a series of single slices"
        )
    return image
