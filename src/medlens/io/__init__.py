"""Reading and writing medical images: one contract, one module per format."""

from __future__ import annotations

from medlens.io.image import Image

__all__ = ["Image", "read_image"]


def read_image(path):  # replaced by the io module's dispatcher
    raise NotImplementedError
