"""Splits: seeded, stratified, grouped by patient; official splits kept."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from medlens.data import Manifest, Record, assign_splits, from_folder, patients_in_several_splits
from medlens.errors import DatasetError


def _synthetic(n_patients: int = 60, images: int = 3) -> Manifest:
    records = [
        Record(f"/d/p{p}_{i}.png", "sick" if p % 3 == 0 else "well", f"p{p}")
        for p in range(n_patients)
        for i in range(images)
    ]
    return Manifest(tuple(records))


def _splits_of(manifest: Manifest) -> dict[str, str]:
    return {r.path: r.split for r in manifest}


def test_kermany_keeps_official_test_and_never_shares_a_patient(kermany: Path) -> None:
    source = from_folder(kermany)
    manifest = assign_splits(source, val_fraction=0.1, seed=0)
    assert patients_in_several_splits(manifest) == {}
    test_before = {r.path for r in source if r.split == "test"}
    assert {r.path for r in manifest if r.split == "test"} == test_before
    assert len(test_before) == 624
    counts = Counter(r.split for r in manifest)
    carved = counts["val"] / (counts["val"] + counts["train"])
    assert 0.08 < carved < 0.12
    # stratified: the pneumonia share of val is close to that of train
    share = {
        split: sum(r.label == "PNEUMONIA" for r in manifest if r.split == split) / counts[split]
        for split in ("train", "val")
    }
    assert abs(share["train"] - share["val"]) < 0.03
    # the official split shares patients with train: those training images are excluded
    assert patients_in_several_splits(assign_splits(source, overlap="keep"))
    excluded = [r for r in manifest if r.split == "excluded"]
    test_patients = {r.patient_id for r in manifest if r.split == "test"}
    assert excluded and all(r.patient_id in test_patients for r in excluded)
    with pytest.raises(DatasetError, match="official val/test"):
        assign_splits(source, overlap="error")


def test_seed_reproduces_and_changes_the_split() -> None:
    source = _synthetic()
    first = assign_splits(source, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert _splits_of(first) == _splits_of(
        assign_splits(source, val_fraction=0.2, test_fraction=0.2, seed=1)
    )
    assert _splits_of(first) != _splits_of(
        assign_splits(source, val_fraction=0.2, test_fraction=0.2, seed=2)
    )
    counts = Counter(r.split for r in first)
    assert counts == {"train": 108, "val": 36, "test": 36}
    assert patients_in_several_splits(first) == {}
    for split in ("train", "val", "test"):  # every class in every split
        assert {r.label for r in first if r.split == split} == {"sick", "well"}


def test_without_grouping_images_of_a_patient_may_split() -> None:
    manifest = assign_splits(_synthetic(), val_fraction=0.3, group_by_patient=False, seed=0)
    assert patients_in_several_splits(manifest)


def test_rows_without_patient_are_their_own_group_and_rare_classes_fall_back() -> None:
    records = [Record(f"/d/{i}.png", "rare" if i == 0 else "common") for i in range(20)]
    manifest = assign_splits(Manifest(tuple(records)), val_fraction=0.25, seed=0)
    assert Counter(r.split for r in manifest) == {"train": 15, "val": 5}


def test_existing_val_is_kept_and_bad_fractions_refused() -> None:
    source = _synthetic(10, 1)
    records = [
        r if i else Record(r.path, r.label, r.patient_id, "val") for i, r in enumerate(source)
    ]
    manifest = assign_splits(source.with_records(records), val_fraction=0.5)
    assert [r.split for r in manifest] == ["val"] + ["train"] * 9
    with pytest.raises(DatasetError, match="val_fraction"):
        assign_splits(source, val_fraction=1.0)
    single = Manifest(tuple(Record(f"/{i}.png", "a", "same") for i in range(3)))
    with pytest.raises(DatasetError, match="single patient"):
        assign_splits(single, val_fraction=0.5)


def test_patients_with_several_classes_use_stratified_group_kfold() -> None:
    records = [
        Record(f"/d/p{p}_{i}.png", ("sick", "well")[(p + i) % 2 if p % 4 == 0 else p % 2], f"p{p}")
        for p in range(40)
        for i in range(2)
    ]
    manifest = assign_splits(Manifest(tuple(records)), val_fraction=0.25, seed=3)
    assert patients_in_several_splits(manifest) == {}
    counts = Counter(r.split for r in manifest)
    assert counts["val"] == 20 and counts["train"] == 60
    assert {r.label for r in manifest if r.split == "val"} == {"sick", "well"}
