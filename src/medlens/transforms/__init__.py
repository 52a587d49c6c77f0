"""Transforms: model preprocessing and seeded augmentation, 2D and 3D.

* :class:`Preprocessing` (``medlens.transforms.preprocess``): Image -> model tensor; travels
  with a model in its ``model.json``.
* :class:`Augmentation` (``medlens.transforms.augment``): random spatial and intensity
  transforms that sample parameters, then apply them deterministically to image and label.
* ``medlens.transforms.intensity``: window presets and helpers.

Names load lazily so that ``import medlens.transforms`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medlens.transforms.augment import PRESETS, Augmentation, AugmentParams, apply_params
    from medlens.transforms.preprocess import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        Preprocessing,
        preprocessing_from_dict,
    )

__all__ = [
    "AugmentParams",
    "Augmentation",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PRESETS",
    "Preprocessing",
    "apply_params",
    "preprocessing_from_dict",
]

_HOMES = {
    "augment": ("PRESETS", "AugmentParams", "Augmentation", "apply_params"),
    "preprocess": ("IMAGENET_MEAN", "IMAGENET_STD", "Preprocessing", "preprocessing_from_dict"),
}


def __getattr__(name: str) -> Any:
    import importlib

    for module, names in _HOMES.items():
        if name in names:
            return getattr(importlib.import_module(f"medlens.transforms.{module}"), name)
    raise AttributeError(f"module 'medlens.transforms' has no attribute {name!r}")
