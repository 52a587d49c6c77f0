"""Reading one manifest path into an :class:`~medlens.io.Image` (no torch needed)."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from medlens.data.medmnist import is_npz_item, load_npz_item
from medlens.io.base import raster_affine
from medlens.io.image import Image

__all__ = ["load_record_image"]


def load_record_image(path: str, *, kind: Literal["scalar", "label"] = "scalar") -> Image:
    """Read one manifest path (a file, or an ``file.npz#key/index`` item) into an Image."""
    if is_npz_item(path):
        array = load_npz_item(path)
        spacing = (1.0,) * (array.ndim if array.ndim < 3 or array.shape[-1] > 4 else 2)
        return Image(array, spacing, raster_affine(spacing), kind=kind, meta={"format": "npz"})
    from medlens.io import read_image

    image = read_image(path, kind="label" if kind == "label" else None)
    return image if image.kind == kind else replace(image, kind=kind)
