"""The reader contract shared by every format, and the checks every reader applies.

A reader is a small object with a ``name``, the file ``extensions`` it usually carries, a
``can_read(header, path)`` test on the first bytes of the file (content, not name), and
``read(path, max_voxels=...) -> Image``. Readers import their heavy library (pydicom,
nibabel, Pillow) inside their methods, so that ``import medlens`` stays light.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from medlens.errors import ImageTooLargeError, NonFiniteImageError
from medlens.io.image import Image

#: Refuse images with more voxels than this (times channels) before allocating them.
DEFAULT_MAX_VOXELS = 2**28

#: How many bytes of a file ``can_read`` gets to look at.
HEADER_BYTES = 1024


class Reader(Protocol):
    """One image format: recognise it by content, read it into an :class:`Image`."""

    name: str
    extensions: tuple[str, ...]

    def can_read(self, header: bytes, path: Path) -> bool:
        """Whether ``header`` (the first :data:`HEADER_BYTES` of ``path``) is this format."""
        ...

    def read(self, path: Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Image:
        """Read ``path``; raise an :class:`~medlens.errors.InvalidImageError` if unusable."""
        ...


def check_size(shape: Sequence[int], path: Path, max_voxels: int) -> None:
    """Refuse (before allocation) an image whose element count exceeds ``max_voxels``."""
    count = int(np.prod([int(n) for n in shape], dtype=object))
    if count > max_voxels:
        dims = "x".join(str(int(n)) for n in shape)
        raise ImageTooLargeError(
            f"{path}: image of {dims} = {count:,} values exceeds the limit of "
            f"{max_voxels:,} (pass max_voxels=... to read larger images)"
        )


def check_finite(array: np.ndarray, path: Path | str) -> None:
    """Refuse float arrays holding NaN or infinite values."""
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise NonFiniteImageError(f"{path}: {bad:,} voxel(s) are NaN or infinite")


def orientation_code(affine: np.ndarray, ndim: int) -> str:
    """Axis codes ("LPS", "RAS", ...) of the image's axes in NIfTI order (cols, rows, slices).

    The same convention as :func:`nibabel.aff2axcodes` for a NIfTI file: a letter per axis,
    saying toward which RAS+ world direction that axis' index grows.
    """
    letters = (("L", "R"), ("P", "A"), ("I", "S"))
    codes = []
    for axis in reversed(range(ndim)):
        column = np.asarray(affine, dtype=float)[:3, axis]
        world = int(np.argmax(np.abs(column)))
        codes.append(letters[world][int(column[world] > 0)])
    return "".join(codes)


def raster_affine(spacing: Sequence[float]) -> np.ndarray:
    """An affine for images without geometry: axis-aligned, scaled by ``spacing``."""
    affine = np.eye(4)
    for axis, step in enumerate(spacing):
        affine[axis, axis] = step
    return affine


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffixes); move it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_header_bytes(path: Path, size: int = HEADER_BYTES) -> bytes:
    """The first ``size`` bytes of ``path``, opened read-only."""
    with open(path, "rb") as handle:
        return handle.read(size)
