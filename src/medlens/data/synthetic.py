"""Telling synthetic images from real ones, so that they never reach validation or test.

An image is synthetic when a ``provenance.csv`` written by :func:`medlens.generation.generate`
lists it (in the image's folder or up to two folders above), or when its PNG text chunk
says ``medlens:synthetic = true``. :func:`~medlens.data.splits.assign_splits` keeps such
rows in training (or ``excluded``, where a source put them in val/test), each its own
group with no patient ID, whatever the source or the manifest says.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

__all__ = ["PNG_KEY", "PROVENANCE_CSV", "is_synthetic", "listed_in_provenance", "synthetic_rows"]

#: the PNG text chunk key that marks a generated image (value ``"true"``)
PNG_KEY = "medlens:synthetic"
PROVENANCE_CSV = "provenance.csv"
_LEVELS = 3  # the image's folder and two above: OUT/provenance.csv for OUT/<class>/x.png


def is_synthetic(path: str | Path) -> bool:
    """Whether ``path`` is a generated image (listed in a provenance file, or PNG-marked)."""
    _provenance_paths.cache_clear()
    return _is_synthetic(os.path.abspath(path))


def synthetic_rows(paths: Iterable[str]) -> set[int]:
    """Positions of the synthetic images among ``paths`` (MedMNIST items never are)."""
    _provenance_paths.cache_clear()  # provenance files read once per call, never stale
    return {i for i, p in enumerate(paths) if "#" not in p and _is_synthetic(os.path.abspath(p))}


def _is_synthetic(path: str) -> bool:
    return path in _listed_near(os.path.dirname(path)) or _png_marked(path)


def listed_in_provenance(folder: str | Path) -> set[str]:
    """The absolute image paths a folder's ``provenance.csv`` lists (empty when none)."""
    _provenance_paths.cache_clear()
    return set(_provenance_paths(os.path.abspath(folder)))


def _listed_near(folder: str) -> frozenset[str]:
    listed: set[str] = set()
    for _ in range(_LEVELS):
        listed |= _provenance_paths(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return frozenset(listed)


@lru_cache(maxsize=4096)
def _provenance_paths(folder: str) -> frozenset[str]:
    file = os.path.join(folder, PROVENANCE_CSV)
    if not os.path.isfile(file):
        return frozenset()
    with open(file, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return frozenset(os.path.normpath(os.path.join(folder, r["path"])) for r in rows if r["path"])


def _png_marked(path: str) -> bool:
    if not path.lower().endswith(".png") or not os.path.isfile(path):
        return False
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:  # reads the chunks before the pixels only
            return image.info.get(PNG_KEY) == "true"
    except (OSError, UnidentifiedImageError):
        return False
