"""Synthetic images from a trained generation run, and keeping them apart from real data.

>>> from medlens.generation import generate                              # doctest: +SKIP
>>> generate("runs/gan", 100, "pneumonia", "synthetic/", seed=0)          # doctest: +SKIP

writes ``synthetic/pneumonia/*.png`` (each marked synthetic in its PNG text chunk) and
``synthetic/provenance.csv`` / ``provenance.json`` (run, weights and card SHA-256, seed,
class, index, sampler). :func:`is_synthetic` is what ``medlens data`` and ``train`` use to
keep such images out of validation, test and patient groups.
"""

from __future__ import annotations

from medlens.data.synthetic import is_synthetic
from medlens.generation.augment import add_synthetic, synthetic_counts
from medlens.generation.sample import generate, load_generator, sample

__all__ = [
    "add_synthetic",
    "generate",
    "is_synthetic",
    "load_generator",
    "sample",
    "synthetic_counts",
]
