"""NumPy ``.npy`` / ``.npz`` arrays, including MedMNIST files.

An array is read as an image by its shape: ``(rows, cols)`` is 2D grey, ``(rows, cols, 3|4)``
is 2D colour, any other 3D shape is a volume ``(slices, rows, cols)``. Geometry is unknown
(spacing 1 mm, ``meta["spacing_known"] = False``).

A ``.npz`` holding one array is read directly. For several arrays, such as a MedMNIST file
(``train_images``, ``train_labels``, ``val_images``, ...), say which one and, for a stack of
images, which index::

    read_numpy("pneumoniamnist.npz", key="test_images", index=0)   # one 28x28 image

Arrays are loaded with ``allow_pickle=False`` (a pickle can run code).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from medlens.errors import InvalidImageError
from medlens.io.base import DEFAULT_MAX_VOXELS, check_finite, check_size, raster_affine
from medlens.io.image import Image

__all__ = ["NumpyReader", "list_arrays", "read_numpy"]

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


class NumpyReader:
    """``.npy`` files by their magic; ``.npz`` as a zip archive of ``.npy`` members."""

    name = "NumPy"
    extensions = (".npy", ".npz")

    def can_read(self, header: bytes, path: Path) -> bool:
        if header.startswith(NPY_MAGIC):
            return True
        return header.startswith(ZIP_MAGIC) and _is_npz(path)

    def read(self, path: Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Image:
        return read_numpy(path, max_voxels=max_voxels)


def _is_npz(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def list_arrays(path: str | Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{name: (shape, dtype)}`` of the arrays in a ``.npy``/``.npz``, without loading them."""
    path = Path(path)
    with _open(path) as data:
        if isinstance(data, np.ndarray):
            return {"": (data.shape, str(data.dtype))}
        return {key: _peek(data, key) for key in data.files}


def _peek(data: np.lib.npyio.NpzFile, key: str) -> tuple[tuple[int, ...], str]:
    with data.zip.open(f"{key}.npy") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(handle)
    return tuple(shape), str(dtype)


def read_numpy(
    path: str | Path,
    *,
    key: str | None = None,
    index: int | None = None,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Image:
    """Read one image from a ``.npy`` or ``.npz`` file.

    Args:
        key: the array's name inside an ``.npz`` (needed when it holds several).
        index: pick ``array[index]`` from a stack of images (e.g. MedMNIST ``*_images``).
        max_voxels: refuse arrays larger than this before loading them.
    """
    path = Path(path)
    arrays = list_arrays(path)
    key = _choose_key(path, arrays, key)
    shape, _ = arrays[key]
    check_size(shape if index is None else shape[1:], path, max_voxels)
    with _open(path) as data:
        array = data if isinstance(data, np.ndarray) else data[key]
        if index is not None:
            array = _pick(array, index, path, key)
        array = np.ascontiguousarray(array)
    check_finite(array, path)
    spacing = _spacing_for(array, path)
    meta = {"format": "NumPy", "array": key or None, "index": index, "spacing_known": False}
    return Image(
        array=array, spacing=spacing, affine=raster_affine(spacing), meta=meta, source=path
    )


@contextmanager
def _open(path: Path) -> Iterator[np.ndarray | np.lib.npyio.NpzFile]:
    """The array of a ``.npy`` (memory-mapped, nothing loaded yet) or the ``.npz`` archive."""
    try:
        data = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InvalidImageError(f"{path}: not a readable .npy/.npz file ({exc})") from None
    try:
        yield data
    finally:
        if not isinstance(data, np.ndarray):
            data.close()


def _choose_key(path: Path, arrays: dict, key: str | None) -> str:
    if key is None and len(arrays) == 1:
        return next(iter(arrays))
    if key in arrays:
        return key
    listing = ", ".join(f"{name} {shape}" for name, (shape, _) in arrays.items())
    what = f"has no array {key!r}" if key is not None else "holds several arrays"
    raise InvalidImageError(
        f"{path}: {what}; choose one with read_numpy(path, key=..., index=...): {listing}"
    )


def _pick(array: np.ndarray, index: int, path: Path, key: str) -> np.ndarray:
    if array.ndim < 3 or not -len(array) <= index < len(array):
        raise InvalidImageError(
            f"{path}: index {index} is out of range for array {key or '(npy)'} {array.shape}"
        )
    return array[index]


def _spacing_for(array: np.ndarray, path: Path) -> tuple[float, ...]:
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4)):
        return (1.0, 1.0)
    if array.ndim == 3:
        return (1.0, 1.0, 1.0)
    raise InvalidImageError(
        f"{path}: array of shape {array.shape} is not one image; pass index=... to pick one"
    )
