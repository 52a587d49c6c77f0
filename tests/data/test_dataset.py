"""ManifestDataset: targets, caches, seeded augmentation, segmentation pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medlens.data import (
    Manifest,
    ManifestDataset,
    Record,
    assign_splits,
    from_decathlon,
    from_folder,
    from_medmnist,
)
from medlens.errors import DatasetError
from medlens.transforms import Augmentation, Preprocessing


@pytest.fixture(scope="module")
def kermany_small(kermany: Path) -> Manifest:
    """40 real Kermany images (20 per class) from the training folder."""
    manifest = from_folder(kermany).split("train")
    normal = [r for r in manifest if r.label == "NORMAL"][:20]
    pneumonia = [r for r in manifest if r.label == "PNEUMONIA"][:20]
    return manifest.with_records(normal + pneumonia)


def test_kermany_items(kermany_small: Manifest) -> None:
    dataset = ManifestDataset(kermany_small, Preprocessing(spatial_size=(64, 64)), split="train")
    image, target = dataset[0]
    assert image.shape == (1, 64, 64) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0  # 8-bit scaled by 255
    assert target == 0 and dataset[39][1] == 1
    assert dataset.targets() == [0] * 20 + [1] * 20


def test_memory_and_disk_cache_return_the_same_tensors(kermany_small: Manifest, tmp_path) -> None:
    preprocessing = Preprocessing(spatial_size=(32, 32), channels=3, mean="imagenet")
    plain = ManifestDataset(kermany_small, preprocessing, cache="none")
    memory = ManifestDataset(kermany_small, preprocessing, cache="memory")
    memory.preload()
    disk = ManifestDataset(kermany_small, preprocessing, cache="disk", cache_dir=tmp_path)
    for index in (0, 25):
        torch.testing.assert_close(disk[index][0], plain[index][0], rtol=0, atol=0)
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 2
    reread = ManifestDataset(kermany_small, preprocessing, cache="disk", cache_dir=tmp_path)
    assert reread._cache.get(25) is not None  # a second dataset (or worker) finds the files
    for index in (0, 25):
        torch.testing.assert_close(reread[index][0], memory[index][0], rtol=0, atol=0)
    other = Preprocessing(spatial_size=(16, 16))
    assert (
        ManifestDataset(kermany_small, other, cache="disk", cache_dir=tmp_path)._cache.get(0)
        is None
    )
    with pytest.raises(DatasetError, match="cache_dir"):
        ManifestDataset(kermany_small, preprocessing, cache="disk")


def test_augmentation_is_seeded_by_seed_epoch_and_index(kermany_small: Manifest) -> None:
    kwargs = {"augmentation": Augmentation.preset("medium"), "seed": 7}
    preprocessing = Preprocessing(spatial_size=(48, 48))
    first = ManifestDataset(kermany_small, preprocessing, **kwargs)
    again = ManifestDataset(kermany_small, preprocessing, cache="none", **kwargs)
    torch.testing.assert_close(first[3][0], again[3][0], rtol=0, atol=0)
    clean = ManifestDataset(kermany_small, preprocessing)[3][0]
    assert not torch.equal(first[3][0], clean)
    epoch0 = first[3][0]
    first.set_epoch(1)
    assert not torch.equal(first[3][0], epoch0)


def test_pneumoniamnist_split(pneumoniamnist: Path) -> None:
    dataset = ManifestDataset(from_medmnist(pneumoniamnist), Preprocessing(), split="test")
    assert len(dataset) == 624
    image, target = dataset[0]
    with np.load(pneumoniamnist) as data:
        expected = data["test_images"][0] / 255.0
        assert target == int(data["test_labels"][0, 0])
    np.testing.assert_allclose(image[0].numpy(), expected, atol=1e-6)
    with pytest.raises(DatasetError, match="empty"):
        ManifestDataset(from_medmnist(pneumoniamnist), Preprocessing(), split="nope")


def test_multilabel_targets(tmp_path: Path, make_png) -> None:
    records = [
        Record(str(make_png(tmp_path / f"{i}.png", i)), label)
        for i, label in enumerate(["a|c", "b", ""])
    ]
    dataset = ManifestDataset(Manifest(tuple(records)), Preprocessing())
    assert dataset.task == "multilabel"
    torch.testing.assert_close(dataset[0][1], torch.tensor([1.0, 0.0, 1.0]))
    torch.testing.assert_close(dataset[2][1], torch.tensor([0.0, 0.0, 0.0]))


def test_hippocampus_pairs_stay_aligned_under_augmentation(hippocampus: Path) -> None:
    manifest = assign_splits(from_decathlon(hippocampus), val_fraction=0.2, seed=0)
    preprocessing = Preprocessing(spatial_size=(40, 56, 40), size_mode="pad_crop", scaling="zscore")
    plain = ManifestDataset(manifest, preprocessing, split="val")
    image, label = plain[0]
    assert image.shape == label.shape == (1, 40, 56, 40)
    assert label.dtype == torch.int64 and set(label.unique().tolist()) == {0, 1, 2}
    augmentation = Augmentation(rotation=15, flip=(2,), zoom=(0.9, 1.1), elastic=0.02, p=1.0)
    augmented = ManifestDataset(manifest, preprocessing, split="val", augmentation=augmentation)
    for index in range(3):
        aug_image, aug_label = augmented[index]
        original = set(plain[index][1].unique().tolist())
        assert set(aug_label.unique().tolist()) == original
        # the hippocampus is brighter than its surroundings in these crops, before and after
        before = (
            plain[index][0][plain[index][1] > 0].mean()
            - plain[index][0][plain[index][1] == 0].mean()
        )
        after = aug_image[aug_label > 0].mean() - aug_image[aug_label == 0].mean()
        assert after > 0.5 * before > 0


def test_loader_workers_replay_the_same_batches(kermany_small: Manifest, tmp_path: Path) -> None:
    from torch.utils.data import DataLoader

    kwargs = {"augmentation": Augmentation.preset("light"), "cache": "disk", "cache_dir": tmp_path}
    dataset = ManifestDataset(kermany_small, Preprocessing(spatial_size=(32, 32)), **kwargs)
    serial = torch.cat([x for x, _ in DataLoader(dataset, batch_size=8)])
    parallel = torch.cat([x for x, _ in DataLoader(dataset, batch_size=8, num_workers=2)])
    torch.testing.assert_close(parallel, serial, rtol=0, atol=0)
    assert len(list(tmp_path.rglob("*.npy"))) == len(kermany_small)
