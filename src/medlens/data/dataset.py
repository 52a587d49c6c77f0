"""A torch ``Dataset`` over a manifest split, with a cache of the preprocessed tensors.

Each item is read with :func:`medlens.read_image` (MedMNIST items straight from their
``.npz``), turned into a tensor by a :class:`~medlens.transforms.Preprocessing`, cached, and
then augmented (seeded by ``(seed, epoch, index)``, so a run replays exactly whatever the
number of loader workers). Items are ``(image, target)``:

* multi-class: ``target`` is the class index (``int``);
* multi-label: a float32 vector with one 0/1 entry per class;
* segmentation: an int64 label map ``(1, *spatial)`` that got the same spatial augmentation.

Caches: ``"memory"`` keeps tensors in the process (call :meth:`ManifestDataset.preload`
before a ``DataLoader`` forks its workers so they share it); ``"disk"`` writes one ``.npy``
per item under ``cache_dir`` (shared by workers and runs, keyed by manifest and preprocessing).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from medlens.data.manifest import Manifest, Record
from medlens.data.reading import load_record_image
from medlens.errors import DatasetError
from medlens.transforms._threads import one_thread
from medlens.transforms.augment import Augmentation
from medlens.transforms.preprocess import Preprocessing

__all__ = ["CacheMode", "ManifestDataset", "load_record_image"]

CacheMode = Literal["none", "memory", "disk"]


class ManifestDataset(Dataset):
    """``(image, target)`` pairs of one split of a manifest (all rows if ``split`` is None)."""

    def __init__(
        self,
        manifest: Manifest,
        preprocessing: Preprocessing,
        *,
        split: str | None = None,
        augmentation: Augmentation | None = None,
        cache: CacheMode = "memory",
        cache_dir: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        self.manifest = manifest if split is None else manifest.split(split)
        if len(self.manifest) == 0:
            raise DatasetError(f"split {split!r} of the manifest is empty")
        self.task = manifest.task
        self.classes = manifest.classes
        self.preprocessing = preprocessing
        self.augmentation = augmentation if augmentation and augmentation.enabled else None
        self.seed = seed
        self.epoch = 0
        self._cache = _make_cache(cache, cache_dir, self.manifest, preprocessing)
        self._class_index = {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.manifest)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (call once per epoch, like a DistributedSampler)."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        with one_thread():
            return self._item(index)

    def _item(self, index: int) -> tuple[torch.Tensor, Any]:
        image, label = self.load(index)
        if self.augmentation is None:
            return image, (label if label is not None else self.target(index))
        generator = self._generator(index)
        if label is None:
            return self.augmentation(image, generator=generator), self.target(index)
        return self.augmentation(image, label, generator=generator)

    def _generator(self, index: int) -> torch.Generator:
        """Seeded by (seed, epoch, index): the same draws whichever worker loads the item."""
        state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(2)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The preprocessed (not augmented) image and label map of ``index``, cached."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        record = self.manifest.records[index]
        image = self.preprocessing(load_record_image(record.path))
        label = None
        if record.label_path:
            label = self.preprocessing(load_record_image(record.label_path, kind="label"))
        pair = (image, label)
        self._cache.put(index, pair)
        return pair

    def target(self, index: int) -> int | torch.Tensor:
        """The class index (multi-class) or 0/1 vector (multi-label) of ``index``."""
        record: Record = self.manifest.records[index]
        if self.task == "multilabel":
            vector = torch.zeros(len(self.classes), dtype=torch.float32)
            vector[[self._class_index[name] for name in record.labels]] = 1.0
            return vector
        return self._class_index[record.label]

    def targets(self) -> list[int]:
        """Every multi-class target, without reading an image (for samplers, class weights)."""
        return [self._class_index[r.label] for r in self.manifest.records]

    def preload(self) -> None:
        """Fill the cache now (e.g. before forking loader workers)."""
        with one_thread():
            for index in range(len(self)):
                self.load(index)


class _NoCache:
    def get(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        return None

    def put(self, index: int, pair: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        return None


class _MemoryCache(_NoCache):
    def __init__(self) -> None:
        self._items: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def get(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        return self._items.get(index)

    def put(self, index: int, pair: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        self._items[index] = pair


class _DiskCache(_NoCache):
    """One ``.npy`` per item (and ``_label.npy``), written atomically; safe across workers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        image_path = self.folder / f"{index}.npy"
        if not image_path.is_file():
            return None
        label_path = self.folder / f"{index}_label.npy"
        label = torch.from_numpy(np.load(label_path)) if label_path.is_file() else None
        return torch.from_numpy(np.load(image_path)), label

    def put(self, index: int, pair: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        if pair[1] is not None:  # label first: an image file means the pair is complete
            _save_npy(self.folder / f"{index}_label.npy", pair[1].numpy())
        _save_npy(self.folder / f"{index}.npy", pair[0].numpy())


def _save_npy(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _make_cache(
    mode: CacheMode, folder: str | Path | None, manifest: Manifest, preprocessing: Preprocessing
) -> _NoCache:
    if mode == "none":
        return _NoCache()
    if mode == "memory":
        return _MemoryCache()
    if mode != "disk":
        raise DatasetError(f"unknown cache mode {mode!r} (none, memory or disk)")
    if folder is None:
        raise DatasetError("cache='disk' needs a cache_dir")
    digest = hashlib.sha256(preprocessing.model_dump_json().encode())
    for record in manifest:  # in order: cache files are named by index
        digest.update(f"{record.path}\0{record.label_path}\n".encode())
    key = digest.hexdigest()[:16]
    return _DiskCache(Path(folder) / key)
