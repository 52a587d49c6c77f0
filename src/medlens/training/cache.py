"""A split larger than memory: preprocessed studies in an LRU cache bounded by bytes.

When a split's preprocessed float16 tensors fit in ``data.cache_bytes`` they are kept as one
tensor (:class:`~medlens.training.data.CachedDataset`). When they do not, :class:`LazyDataset`
reads and preprocesses a study on first use and keeps it in an :class:`LRUCache`: once the
bound is reached the least recently used study is evicted and read again when next needed.
Only a study that alone exceeds the bound is refused.

Each loader worker holds its own cache (``num_workers`` > 0 multiplies the bound).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

from medlens.errors import DatasetError

if TYPE_CHECKING:
    from medlens.io import Image

__all__ = ["CacheStats", "LRUCache", "LazyDataset", "study_too_large"]


@dataclass(frozen=True)
class CacheStats:
    """Counters of an :class:`LRUCache` (``bytes``: what it holds now)."""

    hits: int
    misses: int
    evictions: int
    items: int
    bytes: int


class LRUCache:
    """Tensors by key, at most ``max_bytes`` in total; the least recently used go first."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise DatasetError(f"an LRU cache needs a positive bound, got {max_bytes} bytes")
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._bytes = self.hits = self.misses = self.evictions = 0

    def get(self, key: Hashable, load: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The cached tensor of ``key``, else ``load()`` (kept, evicting as needed)."""
        if key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key]
        self.misses += 1
        value = load()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: torch.Tensor) -> None:
        """Keep ``value``; refuse one that alone exceeds the bound."""
        size = nbytes(value)
        if size > self.max_bytes:
            raise study_too_large(size, self.max_bytes)
        if key in self._items:
            self._bytes -= nbytes(self._items.pop(key))
        while self._items and self._bytes + size > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= nbytes(old)
            self.evictions += 1
        self._items[key] = value
        self._bytes += size

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def stats(self) -> CacheStats:
        return CacheStats(self.hits, self.misses, self.evictions, len(self._items), self._bytes)


class LazyDataset(Dataset):
    """Studies read and preprocessed on demand through an :class:`LRUCache` (float16).

    Items and augmentation match :class:`~medlens.training.data.CachedDataset` exactly:
    ``augment`` is seeded by ``(seed, epoch, index)``.
    """

    def __init__(
        self,
        paths: Sequence[str],
        targets: torch.Tensor,
        preprocess: Callable[[Image], torch.Tensor],
        cache: LRUCache,
        augment: Callable[..., torch.Tensor] | None = None,
        *,
        seed: int = 0,
    ) -> None:
        if len(paths) != len(targets):
            raise DatasetError(f"{len(paths)} studies but {len(targets)} targets")
        self.paths, self.targets, self.preprocess = list(paths), targets, preprocess
        self.cache, self.augment = cache, augment
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def item(self, index: int) -> torch.Tensor:
        """The preprocessed float16 study ``index`` (from the cache, or read now)."""
        return self.cache.get(index, lambda: self._load(index))

    def _load(self, index: int) -> torch.Tensor:
        from medlens.data import load_record_image

        return self.preprocess(load_record_image(self.paths[index])).half()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from medlens.training.data import item_seed

        x = self.item(index).float()
        if self.augment is not None:
            x = self.augment(x, generator=item_seed(self.seed, self.epoch, index))
        return x, self.targets[index]


def nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def study_too_large(size: int, max_bytes: int) -> DatasetError:
    """The refusal when one preprocessed study alone exceeds ``data.cache_bytes``."""
    from medlens.training.data import format_size

    return DatasetError(
        f"one preprocessed study alone takes {format_size(size)} as float16, over "
        f"data.cache_bytes = {format_size(max_bytes)}: lower preprocessing.spatial_size "
        "or raise data.cache_bytes"
    )
