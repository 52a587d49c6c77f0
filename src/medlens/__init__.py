"""medlens: deep learning on medical images, from a folder of studies to a served model."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from medlens.errors import MedlensError
from medlens.io import Image, read_image, write_image

try:
    __version__ = version("medlens")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["Image", "MedlensError", "__version__", "read_image", "write_image"]
