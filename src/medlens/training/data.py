"""From a manifest split to data loaders: read, preprocess once, cache, augment per epoch.

Deterministic preprocessing (reading, resizing, windowing, normalising) runs once per image
and its result is kept in memory as float16; only the random augmentation runs every epoch.
On a CPU this is what keeps the loop close to a bare PyTorch loop over tensors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from medlens.errors import ConfigError, DatasetError
from medlens.training.distributed import DistContext
from medlens.training.seed import seed_worker

if TYPE_CHECKING:
    from medlens.data.manifest import Manifest, Record
    from medlens.io import Image

__all__ = [
    "CachedDataset",
    "PaddedStudies",
    "check_cache_size",
    "encode_targets",
    "item_seed",
    "load_images",
    "make_loader",
    "pad_collate",
    "preprocess_split",
    "split_dataset",
]

_log = logging.getLogger(__name__)

Transform = Callable[..., torch.Tensor]  # (image, *, generator) -> image


class CachedDataset(Dataset):
    """Preprocessed tensors and targets in memory; ``augment`` runs on each access, seeded
    by ``(seed, epoch, index)`` so that resumed, distributed and multi-worker runs agree."""

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        augment: Transform | None = None,
        *,
        seed: int = 0,
    ) -> None:
        if len(inputs) != len(targets):
            raise DatasetError(f"{len(inputs)} images but {len(targets)} targets")
        self.inputs, self.targets, self.augment = inputs, targets, augment
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.inputs[index].float()
        if self.augment is not None:
            x = self.augment(x, generator=item_seed(self.seed, self.epoch, index))
        return x, self.targets[index]


@dataclass(frozen=True)
class PaddedStudies:
    """A batch of studies with different slice counts (``preprocessing.slices: pad``):
    ``volumes`` ``(B, C, max D, H, W)`` zero-padded at the end, ``mask`` ``(B, max D)``
    True on real slices. The trainer passes the mask to the model as ``slice_mask``."""

    volumes: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.volumes)

    def to(self, device: torch.device | str, **kwargs: Any) -> PaddedStudies:
        blocking = {"non_blocking": kwargs.get("non_blocking", False)}
        return PaddedStudies(self.volumes.to(device, **kwargs), self.mask.to(device, **blocking))


def pad_collate(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[PaddedStudies, torch.Tensor]:
    """``collate_fn`` for studies of different depths: pad, mask, stack the targets."""
    from medlens.models.sequence import pad_studies

    volumes, targets = zip(*batch, strict=True)
    padded, mask = pad_studies(volumes)
    return PaddedStudies(padded, mask), torch.stack(list(targets))


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The random stream of one item in one epoch (63-bit)."""
    return ((seed * 1_000_003 + epoch) * 1_000_003 + index) % 2**63


def encode_targets(records: Sequence[Record], classes: Sequence[str], task: str) -> torch.Tensor:
    """Class indices (binary, multiclass) or 0/1 rows (multilabel) for the records."""
    index = {name: i for i, name in enumerate(classes)}
    if task == "multilabel":
        out = torch.zeros(len(records), len(classes))
        for row, record in enumerate(records):
            out[row, [index[name] for name in record.labels]] = 1.0
        return out
    bad = [r.path for r in records if len(r.labels) != 1]
    if bad:
        raise DatasetError(f"{task} needs exactly one label per image; e.g. {bad[0]}")
    return torch.tensor([index[r.labels[0]] for r in records], dtype=torch.long)


def load_images(paths: Sequence[str], *, threads: int = 4) -> list[Image]:
    """Read manifest paths (files, or MedMNIST ``file.npz#key/index`` items) in threads."""
    from medlens.data import load_record_image

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(load_record_image, paths))


def preprocess_split(
    manifest: Manifest,
    preprocess: Callable[[Image], torch.Tensor],
    task: str,
    *,
    chunk: int = 512,
    max_bytes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a manifest split as one float16 tensor, with their targets.

    ``max_bytes`` bounds that tensor: the first image's size times the split's length is
    checked before the rest is read, so a split that cannot fit is refused, not an OOM.
    """
    if len(manifest) == 0:
        raise DatasetError("a split to train or validate on has no images")
    records = list(manifest)
    parts = []
    for start in range(0, len(records), chunk):
        paths = [r.path for r in records[start : start + chunk]]
        if start == 0 and max_bytes is not None:
            first = preprocess(load_images(paths[:1], threads=1)[0])
            check_cache_size(first.numel() * 2, len(records), max_bytes)
        images = load_images(paths)
        parts.append(torch.stack([preprocess(image) for image in images]).half())
    return torch.cat(parts), encode_targets(records, manifest.classes, task)


def check_cache_size(item_bytes: int, count: int, max_bytes: int) -> None:
    """Refuse a split whose ``count`` preprocessed items of ``item_bytes`` exceed ``max_bytes``."""
    total = item_bytes * count
    if total <= max_bytes:
        return
    what = "one image alone" if item_bytes > max_bytes else f"{count} images"
    raise DatasetError(
        f"the preprocessed split would take {format_size(total)} ({what}; "
        f"{format_size(item_bytes)} each as float16), over data.cache_bytes = "
        f"{format_size(max_bytes)}: lower preprocessing.spatial_size or raise data.cache_bytes"
    )


def format_size(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n:,} bytes"


def split_dataset(
    manifest: Manifest,
    preprocess: Callable[[Image], torch.Tensor],
    task: str,
    *,
    augment: Transform | None = None,
    seed: int = 0,
    max_bytes: int | None = None,
) -> Dataset:
    """A manifest split as a dataset, preprocessed once and kept within ``max_bytes``.

    When the whole split fits (the first study's size times the split's length), it is read
    at once into a :class:`CachedDataset`; otherwise studies are read on demand into an LRU
    cache of ``max_bytes`` (:class:`~medlens.training.cache.LazyDataset`). Only a study
    that alone exceeds ``max_bytes`` is refused. Studies that keep their own slice count
    (``preprocessing.slices: pad``) cannot be stacked and always take the LRU path (batch
    them with :func:`pad_collate`).
    """
    from medlens.training.cache import LazyDataset, LRUCache, nbytes

    if len(manifest) == 0:
        raise DatasetError("a split to train or validate on has no images")
    records = list(manifest)
    if getattr(preprocess, "slices", "resample") == "pad":
        targets = encode_targets(records, manifest.classes, task)
        cache = LRUCache(max_bytes or 2**63)
        paths = [r.path for r in records]
        return LazyDataset(paths, targets, preprocess, cache, augment, seed=seed)
    if max_bytes is not None:
        first = preprocess(load_images([records[0].path], threads=1)[0]).half()
        if nbytes(first) * len(records) > max_bytes:
            cache = LRUCache(max_bytes)
            cache.put(0, first)  # refuses a study that alone exceeds the bound
            _log.info(
                "the split (%d studies of %s) exceeds data.cache_bytes = %s: studies are "
                "kept in an LRU cache and re-read when evicted",
                len(records), format_size(nbytes(first)), format_size(max_bytes),
            )  # fmt: skip
            targets = encode_targets(records, manifest.classes, task)
            paths = [r.path for r in records]
            return LazyDataset(paths, targets, preprocess, cache, augment, seed=seed)
    inputs, targets = preprocess_split(manifest, preprocess, task)
    return CachedDataset(inputs, targets, augment, seed=seed)


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    train: bool,
    seed: int,
    dist: DistContext,
    num_workers: int = 0,
    collate_fn: Callable[..., Any] | None = None,
) -> DataLoader:
    """A loader whose order depends only on (seed, epoch): shuffling via a sampler that
    ``Trainer.prepare_epoch`` advances, so resumed and distributed runs see the same data.

    ``batch_size`` is the global batch: under torchrun each of the N processes takes
    ``batch_size / N`` of it. Rank r draws every N-th index of the same permutation, so
    each step's samples together are exactly those of the one-process step.
    """
    sampler = None
    if train:
        if batch_size % dist.world_size:
            raise ConfigError(
                f"batch_size {batch_size} is the global batch and must divide evenly over "
                f"the {dist.world_size} processes: set it to a multiple of {dist.world_size}"
            )
        batch_size //= dist.world_size
        sampler = DistributedSampler(
            dataset, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=seed
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        drop_last=train and len(dataset) > batch_size * dist.world_size,
        num_workers=num_workers,
        worker_init_fn=seed_worker if num_workers else None,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=num_workers > 0,
        collate_fn=collate_fn,
    )
