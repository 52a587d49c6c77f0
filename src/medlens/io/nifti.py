"""NIfTI-1/2 volumes (``.nii``, ``.nii.gz``) through nibabel.

The voxel array ``(i, j, k)`` is stored as ``(k, j, i)`` (slices, rows, cols) and the affine's
columns are permuted to match, so world coordinates are unchanged; :func:`write_nifti` undoes
both, so a read/write round trip gives back the same voxels, dtype and affine. Values keep
their stored dtype unless the header's scaling (``scl_slope``/``scl_inter``) applies.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medlens.errors import (
    ConfigError,
    InvalidImageError,
    TruncatedImageError,
    UnsupportedFormatError,
)
from medlens.io.base import (
    DEFAULT_MAX_VOXELS,
    atomic_path,
    check_finite,
    check_size,
    orientation_code,
)
from medlens.io.image import Image

if TYPE_CHECKING:
    import nibabel as nib

__all__ = ["NiftiReader", "read_nifti", "write_nifti"]

GZIP_MAGIC = b"\x1f\x8b"


def _is_nifti_header(header: bytes) -> bool:
    nifti1 = header[344:348] in (b"n+1\x00", b"ni1\x00")
    nifti2 = header[4:8] in (b"n+2\x00", b"ni2\x00")
    return nifti1 or nifti2


class NiftiReader:
    """NIfTI-1 and NIfTI-2, plain or gzipped (the gzip stream is peeked at, not trusted)."""

    name = "NIfTI"
    extensions = (".nii", ".nii.gz")

    def can_read(self, header: bytes, path: Path) -> bool:
        if header[:2] == GZIP_MAGIC:
            return _is_nifti_header(_gunzip_head(path))
        return _is_nifti_header(header)

    def read(self, path: Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Image:
        return read_nifti(path, max_voxels=max_voxels)


def _gunzip_head(path: Path, size: int = 544) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(size)
    except (OSError, EOFError, zlib.error):
        return b""


def read_nifti(path: str | Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Image:
    """Read a NIfTI file into an :class:`Image` (2D or 3D; trailing axes of length 1 dropped)."""
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(path)
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError) as exc:
        raise InvalidImageError(f"{path}: not a readable NIfTI file ({exc})") from None
    shape = tuple(int(n) for n in img.header.get_data_shape())
    check_size(shape, path, max_voxels)
    spatial = _spatial_ndim(shape, path)
    array = _load(img, path).reshape(shape[:spatial])
    check_finite(array, path)
    affine = _to_array_order(np.asarray(img.affine, dtype=float), spatial)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:spatial])
    return Image(
        array=np.ascontiguousarray(array.T),
        spacing=zooms[::-1],
        affine=affine,
        modality="OT",
        meta={
            "format": "NIfTI",
            "orientation": orientation_code(affine, spatial),
            "datatype": str(img.get_data_dtype()),
            "qform_code": int(img.header["qform_code"]),
            "sform_code": int(img.header["sform_code"]),
        },
        source=path,
    )


def _spatial_ndim(shape: tuple[int, ...], path: Path) -> int:
    spatial = len(shape)
    while spatial > 3 and shape[spatial - 1] == 1:
        spatial -= 1
    if spatial > 3:
        raise UnsupportedFormatError(
            f"{path}: {len(shape)}D NIfTI {shape} (time series or vectors) is not supported"
        )
    if spatial < 2:
        raise InvalidImageError(f"{path}: NIfTI of shape {shape} is not an image")
    return spatial


def _load(img: nib.Nifti1Image, path: Path) -> np.ndarray:
    try:
        return np.asanyarray(img.dataobj)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise TruncatedImageError(
            f"{path}: NIfTI voxel data is truncated or corrupt ({exc})"
        ) from None


def _to_array_order(affine: np.ndarray, ndim: int) -> np.ndarray:
    """Permute affine columns from (i, j[, k]) to array order (k, j, i) / (j, i)."""
    columns = [2, 1, 0, 3] if ndim == 3 else [1, 0, 2, 3]
    return affine[:, columns]


def write_nifti(image: Image, path: str | Path) -> Path:
    """Write ``image`` as NIfTI-1 (gzipped if ``path`` ends in ``.gz``), atomically.

    The affine is written as is when its column lengths equal ``image.spacing``; otherwise
    (e.g. an image built with the default identity affine) its columns are rescaled to it.
    """
    import nibabel as nib

    path = Path(path)
    if image.array.ndim != image.ndim:  # colour or a channel axis
        raise UnsupportedFormatError(f"{path}: medlens writes only greyscale images as NIfTI")
    array = _nifti_dtype(image.array.T, path)
    affine = _to_array_order(_affine_with_spacing(image), image.ndim)  # the swap is self-inverse
    nifti = nib.Nifti1Image(array, affine)
    nifti.header.set_xyzt_units("mm")
    nifti.header.set_intent("label" if image.kind == "label" else "none")
    with atomic_path(path) as tmp:
        nib.save(nifti, tmp)
    return path


def _nifti_dtype(array: np.ndarray, path: Path) -> np.ndarray:
    """NIfTI-friendly dtype: bool -> uint8, 64-bit integers -> int32 when the values fit."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype.kind in "iu" and array.dtype.itemsize == 8:
        info = np.iinfo(np.int32)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ConfigError(f"{path}: 64-bit integer values do not fit NIfTI's int32")
        return array.astype(np.int32)
    return array


def _affine_with_spacing(image: Image) -> np.ndarray:
    affine = np.array(image.affine, dtype=float)
    lengths = np.linalg.norm(affine[:3, : image.ndim], axis=0)
    if not np.allclose(lengths, image.spacing, rtol=1e-4):
        affine[:3, : image.ndim] *= np.asarray(image.spacing) / np.where(lengths > 0, lengths, 1)
    return affine
