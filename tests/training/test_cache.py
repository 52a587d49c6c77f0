"""The study cache: an LRU bounded by bytes that evicts and re-reads instead of refusing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medlens.data.manifest import Manifest, Record
from medlens.errors import DatasetError
from medlens.training.cache import LazyDataset, LRUCache
from medlens.training.data import CachedDataset, split_dataset
from medlens.transforms.preprocess import Preprocessing


def test_lru_evicts_the_least_recently_used_and_counts_hits_and_misses() -> None:
    cache = LRUCache(max_bytes=3 * 64)  # three float16 tensors of 32 values
    loads: list[str] = []

    def loader(key: str):
        return lambda: loads.append(key) or torch.zeros(32, dtype=torch.float16)

    for key in "abc":
        cache.get(key, loader(key))
    cache.get("a", loader("a"))  # hit: "a" becomes the most recent, "b" the least
    cache.get("d", loader("d"))  # evicts "b"
    assert "b" not in cache and {"a", "c", "d"} == {k for k in "abcd" if k in cache}
    cache.get("b", loader("b"))  # re-read on demand, evicts "c"
    assert loads == ["a", "b", "c", "d", "b"] and "c" not in cache
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.evictions, stats.items) == (1, 5, 2, 3)
    assert stats.bytes == 3 * 64


def test_one_study_over_the_bound_is_refused_clearly() -> None:
    cache = LRUCache(max_bytes=100)
    with pytest.raises(DatasetError, match="one preprocessed study alone.*cache_bytes = 100 bytes"):
        cache.get("big", lambda: torch.zeros(51, dtype=torch.float16))
    assert cache.stats.items == 0


def _volumes(tmp_path: Path, n: int = 6) -> Manifest:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "v.npz", train_images=rng.integers(0, 255, (n, 8, 8, 8), np.uint8))
    records = [Record(f"{tmp_path / 'v.npz'}#train_images/{i}", str(i % 2)) for i in range(n)]
    return Manifest(tuple(records), ("0", "1"))


def test_a_split_over_the_bound_trains_from_an_lru_cache_with_the_same_items(
    tmp_path: Path,
) -> None:
    manifest = _volumes(tmp_path)
    pre = Preprocessing(spatial_size=(8, 8, 8))
    study = 8**3 * 2  # float16 bytes of one study
    whole = split_dataset(manifest, pre, "binary", max_bytes=10 * study)
    lazy = split_dataset(manifest, pre, "binary", max_bytes=2 * study)
    assert isinstance(whole, CachedDataset) and isinstance(lazy, LazyDataset)
    assert torch.equal(whole.targets, lazy.targets)
    for _epoch in range(2):
        for i in range(len(manifest)):
            assert torch.equal(whole[i][0], lazy[i][0])
    stats = lazy.cache.stats
    # the first study was read to size the split; every other access misses (2 of 6 fit)
    assert stats.items == 2 and stats.bytes <= 2 * study
    assert stats.misses == 11 and stats.hits == 1 and stats.evictions == 10
    with pytest.raises(DatasetError, match="one preprocessed study alone"):
        split_dataset(manifest, pre, "binary", max_bytes=study - 1)


@pytest.mark.slow
def test_training_from_the_lru_cache_matches_training_from_memory(
    tmp_path: Path, image_folder: Path, make_config
) -> None:
    from medlens.card import read_card
    from medlens.tasks.run import train_run

    runs = []
    for name, bound in (("memory", 2**30), ("lru", 4 * 16 * 16 * 2)):  # 4 images of 16x16
        config = make_config(image_folder, tmp_path / name, epochs=2, augmentation="light")
        data = config.data.model_copy(update={"cache_bytes": bound})
        runs.append(train_run(config.model_copy(update={"data": data})))
    assert read_card(runs[0]).sha256 == read_card(runs[1]).sha256
