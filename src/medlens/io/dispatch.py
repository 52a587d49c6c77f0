"""``read_image`` / ``write_image``: pick the reader by the file's content, the writer by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medlens.errors import ConfigError, InvalidImageError, UnsupportedFormatError
from medlens.io.base import DEFAULT_MAX_VOXELS, Reader, read_header_bytes
from medlens.io.dicom import DicomReader
from medlens.io.image import Image, ImageKind
from medlens.io.nifti import NiftiReader, write_nifti
from medlens.io.npz import NumpyReader
from medlens.io.raster import RasterReader, write_png

__all__ = ["READERS", "detect_format", "read_image", "write_image"]

#: Every reader, tried in this order on a file's first bytes.
READERS: tuple[Reader, ...] = (DicomReader(), NiftiReader(), RasterReader(), NumpyReader())


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def detect_format(path: str | Path) -> Reader:
    """The reader for ``path``, chosen by content; the extension must not contradict it."""
    path = Path(path)
    if not path.is_file():
        raise InvalidImageError(f"{path}: no such file")
    header = read_header_bytes(path)
    if not header:
        raise InvalidImageError(f"{path}: file is empty (0 bytes)")
    reader = next((r for r in READERS if r.can_read(header, path)), None)
    claimed = next((r for r in READERS if _suffix(path) in r.extensions), None)
    if reader is None:
        hint = f" (its extension says {claimed.name})" if claimed else ""
        raise UnsupportedFormatError(f"{path}: unknown or unsupported file content{hint}")
    if claimed is not None and claimed.name != reader.name:
        raise InvalidImageError(
            f"{path}: the extension says {claimed.name} but the content is {reader.name}; "
            "rename the file or check where it came from"
        )
    return reader


def read_image(
    path: str | Path,
    *,
    kind: ImageKind | None = None,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Image:
    """Read a medical image file, or a DICOM series folder, into an :class:`Image`.

    The format is recognised from the content (magic bytes), not the name: DICOM, NIfTI
    (``.nii``/``.nii.gz``), PNG/JPEG/TIFF, NumPy ``.npy``/single-array ``.npz``. A folder is
    read as one DICOM series (see :func:`medlens.io.read_series` to choose among several).

    Args:
        path: a file or a folder of DICOM files.
        kind: ``"label"`` for a label map (integer values, nearest-neighbour resampling),
            ``"scalar"`` for intensities; ``None`` keeps the reader's choice (``"label"`` for
            DICOM SEG, otherwise ``"scalar"``).
        max_voxels: refuse images with more values than this before allocating them.

    Raises:
        InvalidImageError: or one of its subclasses, naming the file and what is wrong.
    """
    path = Path(path)
    if path.is_dir():
        from medlens.io.series import read_series

        image = read_series(path, max_voxels=max_voxels)
    else:
        image = detect_format(path).read(path, max_voxels=max_voxels)
    if kind == "label":
        return _as_label(image)
    if kind is not None and kind != image.kind:
        return image.with_array(image.array, kind=kind)
    return image


def _as_label(image: Image) -> Image:
    if image.meta.get("mode") == "P" and image.meta.get("frames") == 1 and image.source:
        from medlens.io.raster import read_palette_indices  # a palette PNG: its values

        image = image.with_array(read_palette_indices(image.source))
    array = image.array
    if image.is_rgb:  # a mask saved as grey-in-RGB(A) is fine; real colours are not labels
        colours = array[..., :3]
        if not (colours == colours[..., :1]).all():
            raise InvalidImageError(f"{image.source}: a colour image cannot be a label map")
        array = colours[..., 0]
        image = image.with_array(array)
    if array.dtype.kind == "f":
        rounded = np.rint(array)
        if not np.array_equal(rounded, array):
            raise InvalidImageError(f"{image.source}: label map holds non-integer values")
        low, high = (int(rounded.min()), int(rounded.max())) if rounded.size else (0, 0)
        dtype = np.result_type(np.min_scalar_type(low), np.min_scalar_type(high))
        array = rounded.astype(dtype)
    elif array.dtype.kind == "b":
        array = array.astype(np.uint8)
    return image.with_array(array, kind="label")


def write_image(image: Image, path: str | Path, *, bits: int | None = None) -> Path:
    """Write ``image`` atomically; the format follows the extension.

    ``.png``: a 2D grey or RGB image, see :func:`medlens.io.raster.write_png` for ``bits``.
    ``.nii`` / ``.nii.gz``: any 2D/3D grey image, exact round trip with :func:`read_image`.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".png":
        return write_png(image, path, bits=bits)
    if suffix in (".nii", ".nii.gz"):
        if bits is not None:
            raise ConfigError(f"{path}: --bits applies to PNG output only")
        return write_nifti(image, path)
    raise ConfigError(
        f"{path}: cannot write {suffix or 'files without extension'}; use .png, .nii or .nii.gz"
    )
