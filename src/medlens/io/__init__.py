"""Reading and writing medical images: one contract, one module per format.

``read_image(path)`` recognises the format by content (DICOM, NIfTI, PNG/JPEG/TIFF, NumPy)
and returns an :class:`Image`; a folder is read as a DICOM series. Heavy libraries
(pydicom, nibabel, Pillow) load only when a file of their format is read.
"""

from __future__ import annotations

from medlens.io.base import DEFAULT_MAX_VOXELS, Reader
from medlens.io.convert import convert_image, take_slice
from medlens.io.dispatch import READERS, detect_format, read_image, write_image
from medlens.io.header import describe, read_header
from medlens.io.image import Image
from medlens.io.npz import list_arrays, read_numpy
from medlens.io.series import SeriesInfo, list_series, read_series

__all__ = [
    "DEFAULT_MAX_VOXELS",
    "READERS",
    "Image",
    "Reader",
    "SeriesInfo",
    "convert_image",
    "describe",
    "detect_format",
    "list_arrays",
    "list_series",
    "read_header",
    "read_image",
    "read_numpy",
    "read_series",
    "take_slice",
    "write_image",
]
