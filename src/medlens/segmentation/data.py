"""Cases in memory and the patch sampler with foreground oversampling.

A :class:`Case` is one preprocessed image ``(C, *spatial)`` float32 and its label map
``(1, *spatial)`` int64 of class *indices* (label values are mapped to 0..K-1 once, so a mask
saved as 0/255 works). :class:`PatchDataset` draws ``samples_per_epoch`` patches: a share
``foreground`` of them centred on a voxel of a random foreground class present in the case
(nnU-Net's oversampling), the others anywhere; each patch then goes through the image+label
augmentation. Every draw is seeded by ``(seed, epoch, index)``, so epochs replay exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medlens.errors import DatasetError

__all__ = ["Case", "PatchDataset", "label_values", "load_cases"]

_MAX_LOCATIONS = 20_000  # foreground voxels remembered per class and case


@dataclass
class Case:
    """One image and its label map, preprocessed, padded to at least the patch size."""

    image: torch.Tensor
    label: torch.Tensor
    name: str = ""
    foreground: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, image: torch.Tensor, label: torch.Tensor, name: str, patch: Sequence[int]):
        image, label = _pad_to(image, label, patch)
        found = {}
        for value in torch.unique(label).tolist():
            if value == 0:
                continue
            where = torch.nonzero(label[0] == value).numpy()
            step = max(1, len(where) // _MAX_LOCATIONS)
            found[int(value)] = where[::step]
        return cls(image, label, name, found)


def label_values(paths: Sequence[str]) -> list[int]:
    """The sorted distinct label values over these label files (background 0 first)."""
    from medlens.data import load_record_image

    values: set[int] = {0}
    for path in paths:
        array = load_record_image(path, kind="label").array
        found = np.unique(array)
        if not np.array_equal(found, np.round(found)):
            raise DatasetError(f"{path}: a label map must hold whole numbers")
        values |= {int(v) for v in found}
    return sorted(values)


def load_cases(
    records: Sequence[Any],
    preprocessing: Any,
    values: Sequence[int],
    patch: Sequence[int] | None = None,
) -> list[Case]:
    """Read, preprocess and index every record's image and label map."""
    from medlens.data import load_record_image

    lookup = {int(v): i for i, v in enumerate(values)}
    cases = []
    for record in records:
        image = load_record_image(record.path)
        label = load_record_image(record.label_path, kind="label")
        if image.spatial_shape != label.spatial_shape:
            raise DatasetError(
                f"{record.label_path}: label shape {label.spatial_shape} does not match "
                f"its image {image.spatial_shape}"
            )
        label = label.with_array(_to_indices(label.array, lookup, record.label_path))
        x, y = preprocessing(image), preprocessing(label)
        cases.append(Case.build(x, y, record.patient_id or record.path, patch or ()))
    return cases


def _to_indices(array: np.ndarray, lookup: dict[int, int], path: str) -> np.ndarray:
    values = np.unique(array).astype(np.int64)
    unknown = sorted(set(values.tolist()) - set(lookup))
    if unknown:
        raise DatasetError(f"{path}: label values {unknown} were not seen in training")
    table = np.zeros(int(values.max()) + 1, dtype=np.uint8)
    for value in values.tolist():
        table[value] = lookup[value]
    return table[array.astype(np.int64)]


def _pad_to(
    image: torch.Tensor, label: torch.Tensor, patch: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad (at the end of each axis) to at least ``patch``: image minimum, label 0."""
    if not patch:
        return image, label
    short = [max(0, p - n) for p, n in zip(patch, image.shape[1:], strict=True)]
    if not any(short):
        return image, label
    pad = [v for amount in reversed(short) for v in (0, amount)]
    image = F.pad(image, pad, value=float(image.min()))
    return image, F.pad(label, pad, value=0)


class PatchDataset(torch.utils.data.Dataset):
    """Random training patches ``(image, label)`` drawn from in-memory cases."""

    def __init__(
        self,
        cases: Sequence[Case],
        patch_size: Sequence[int],
        *,
        samples_per_epoch: int,
        foreground: float = 0.33,
        augmentation: Any = None,
        seed: int = 0,
    ) -> None:
        if not cases:
            raise DatasetError("no training cases to draw patches from")
        self.cases = list(cases)
        self.patch = tuple(int(p) for p in patch_size)
        self.samples_per_epoch = samples_per_epoch
        self.foreground = foreground
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from medlens.training.data import item_seed

        generator = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, index))
        case = self.cases[int(torch.randint(len(self.cases), (), generator=generator))]
        start = self._start(case, generator)
        window = tuple(slice(s, s + p) for s, p in zip(start, self.patch, strict=True))
        image, label = case.image[(slice(None), *window)], case.label[(slice(None), *window)]
        if self.augmentation is not None:
            image, label = self.augmentation(image, label, generator=generator)
        return image.contiguous(), label.contiguous()

    def _start(self, case: Case, generator: torch.Generator) -> list[int]:
        shape = case.image.shape[1:]
        wants_fg = float(torch.rand((), generator=generator)) < self.foreground
        if wants_fg and case.foreground:
            classes = sorted(case.foreground)
            where = case.foreground[
                classes[int(torch.randint(len(classes), (), generator=generator))]
            ]
            center = where[int(torch.randint(len(where), (), generator=generator))]
            return [
                min(max(int(c) - p // 2, 0), n - p)
                for c, p, n in zip(center, self.patch, shape, strict=True)
            ]
        return [
            int(torch.randint(n - p + 1, (), generator=generator))
            for p, n in zip(self.patch, shape, strict=True)
        ]
