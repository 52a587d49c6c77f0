"""Convert between formats: DICOM (file, multi-frame, series folder), NIfTI, raster -> PNG/NIfTI."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medlens.errors import ConfigError
from medlens.io.base import DEFAULT_MAX_VOXELS
from medlens.io.dispatch import read_image, write_image
from medlens.io.image import Image, ImageKind

__all__ = ["convert_image", "take_slice"]


def convert_image(
    source: str | Path,
    target: str | Path,
    *,
    window: str | tuple[float, float] | None = None,
    bits: int | None = None,
    slice_index: int | None = None,
    series_uid: str | None = None,
    kind: ImageKind | None = None,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Path:
    """Read ``source`` and write it to ``target`` (format from its extension: .png, .nii, .nii.gz).

    PNG: a 3D image gives one slice (``slice_index``, default the middle one, along axis 0).
    Grey values go through ``window`` (a preset such as ``"lung"``, ``"C,W"``, or ``"auto"``:
    the file's own window/VOI LUT, else the 0.5-99.5 percentiles); with no window, integer
    images that fit the bit depth are written unchanged and others use ``"auto"``. ``bits`` is
    8 (default) or 16.

    NIfTI: values are written unchanged (integral floats such as CT HU become ``int16``),
    or windowed to [0, 1] ``float32`` when ``window`` is given.
    """
    source, target = Path(source), Path(target)
    image = _read(source, series_uid, kind, max_voxels)
    if target.name.lower().endswith(".png"):
        if image.ndim == 3:
            image = take_slice(image, slice_index)
        return write_image(image.with_array(_png_pixels(image, window, bits)), target, bits=bits)
    if slice_index is not None:
        raise ConfigError("--slice applies to PNG output only")
    return write_image(image.with_array(_nifti_values(image, window)), target, bits=bits)


def _read(source: Path, series_uid: str | None, kind: ImageKind | None, max_voxels: int) -> Image:
    if series_uid is None:
        return read_image(source, kind=kind, max_voxels=max_voxels)
    from medlens.io.series import read_series

    image = read_series(source, series_uid, max_voxels=max_voxels)
    return image if kind is None else image.with_array(image.array, kind=kind)


def take_slice(image: Image, index: int | None = None) -> Image:
    """The 2D slice ``index`` (default: the middle one) along axis 0 of a 3D image."""
    count = image.array.shape[0]
    index = count // 2 if index is None else index
    if not 0 <= index < count:
        raise ConfigError(f"{image.source}: slice {index} is out of range (0..{count - 1})")
    affine = image.affine.copy()
    affine[:, 3] = image.affine @ np.array([index, 0, 0, 1.0])
    affine = affine[:, [1, 2, 0, 3]]
    meta = {**image.meta, "slice": index}
    return image.with_array(image.array[index], spacing=image.spacing[1:], affine=affine, meta=meta)


def _png_pixels(image: Image, window: str | tuple[float, float] | None, bits: int | None):
    from medlens.transforms.intensity import display_array

    array = image.array
    if image.is_rgb:
        return array if array.dtype == np.uint8 else display_array(image)
    top = 2 ** (bits or 8) - 1
    fits = array.dtype.kind in "biu" and array.size and 0 <= array.min() and array.max() <= top
    if window is None and fits:
        return array
    return display_array(image, "auto" if window is None else window)


def _nifti_values(image: Image, window: str | tuple[float, float] | None) -> np.ndarray:
    from medlens.transforms.intensity import display_array

    if window is not None:
        return display_array(image, window)
    array = image.array
    if array.dtype.kind == "f" and array.size and np.array_equal(array, np.rint(array)):
        if -(2**15) <= array.min() and array.max() < 2**15:
            return array.astype(np.int16)
    return array
