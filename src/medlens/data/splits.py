"""Seeded, stratified splits that never put one patient in two splits.

An official split already in the manifest (MedMNIST's, Kermany's ``train/`` and ``test/``
folders) is kept: only the missing splits are carved, from the training rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Literal

import numpy as np

from medlens.data.manifest import Manifest, Record
from medlens.errors import DatasetError

__all__ = ["Overlap", "assign_splits", "patients_in_several_splits", "subsample_split"]

Overlap = Literal["exclude", "keep", "error"]


def assign_splits(
    manifest: Manifest,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
    group_by_patient: bool = True,
    overlap: Overlap = "exclude",
) -> Manifest:
    """Give every row a split: keep official ones, carve test then val from the rest.

    ``test_fraction`` applies only when the manifest has no official test split, and
    ``val_fraction`` only when it has no official validation split. The carved parts are
    stratified by (first) class and grouped by patient (rows without a patient ID are
    their own group), so sizes are close to, not exactly, the fractions asked.

    ``overlap`` decides what happens to training rows of a patient who also appears in an
    official val/test split (Kermany has such patients): ``"exclude"`` moves them to the
    ``"excluded"`` split, ``"keep"`` leaves them (a leak), ``"error"`` refuses.
    """
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise DatasetError(f"{name} must be in [0, 1), got {fraction}")
    records = list(manifest.records)
    synthetic = _isolate_synthetic(records)
    official = {r.split for i, r in enumerate(records) if i not in synthetic} - {"", "train"}
    pool = [i for i, r in enumerate(records) if r.split in ("", "train") and i not in synthetic]
    if group_by_patient:
        pool = _resolve_overlap(records, pool, overlap)
    for split, fraction in (("test", test_fraction), ("val", val_fraction)):
        if split in official or fraction == 0.0 or not pool:
            continue
        share = fraction / _remaining_share(split, test_fraction, official)
        held = set(_carve([records[i] for i in pool], share, seed, group_by_patient))
        for position in held:
            records[pool[position]] = replace(records[pool[position]], split=split)
        pool = [index for position, index in enumerate(pool) if position not in held]
    for index in pool:
        records[index] = replace(records[index], split="train")
    return manifest.with_records(records)


def _isolate_synthetic(records: list[Record]) -> set[int]:
    """Mark synthetic rows in place (train, or excluded from val/test; no patient ID)."""
    from medlens.data.synthetic import synthetic_rows

    found = synthetic_rows(r.path for r in records)
    for i in found:
        split = "train" if records[i].split in ("", "train") else "excluded"
        records[i] = replace(records[i], split=split, patient_id="")
    return found


def subsample_split(
    manifest: Manifest,
    fraction: float,
    *,
    split: str = "train",
    seed: int = 0,
    group_by_patient: bool = True,
) -> Manifest:
    """Keep about ``fraction`` of ``split``'s rows (whole patients, stratified by class);
    the others move to ``"excluded"``. Row order and the other splits stay as they are."""
    if not 0.0 < fraction <= 1.0:
        raise DatasetError(f"the share of {split} rows to keep must be in (0, 1], not {fraction}")
    records = list(manifest.records)
    pool = [i for i, r in enumerate(records) if r.split == split]
    if fraction == 1.0 or not pool:
        return manifest
    kept = set(_carve([records[i] for i in pool], fraction, seed, group_by_patient))
    for position, index in enumerate(pool):
        if position not in kept:
            records[index] = replace(records[index], split="excluded")
    return manifest.with_records(records)


def _remaining_share(split: str, test_fraction: float, official: set[str]) -> float:
    """Val is carved after test: its fraction is of what test left."""
    carved_test = split == "val" and "test" not in official and test_fraction > 0
    return 1.0 - test_fraction if carved_test else 1.0


def _resolve_overlap(records: list[Record], pool: list[int], overlap: Overlap) -> list[int]:
    held_out = {r.patient_id for r in records if r.split in ("val", "test") and r.patient_id}
    leaking = [i for i in pool if records[i].patient_id in held_out]
    if not leaking or overlap == "keep":
        return pool
    if overlap == "error":
        raise DatasetError(
            f"{len(leaking)} training image(s) belong to patients of the official val/test "
            "split; pass overlap='exclude' to leave them out, or 'keep' to accept the leak"
        )
    for index in leaking:
        records[index] = replace(records[index], split="excluded")
    leaking_set = set(leaking)
    return [i for i in pool if i not in leaking_set]


def _carve(records: list[Record], fraction: float, seed: int, grouped: bool) -> list[int]:
    """Positions of about ``fraction`` of ``records``, whole groups, stratified if possible."""
    groups = np.array([r.patient_id or r.path for r in records] if grouped else range(len(records)))
    strata = np.array([r.labels[0] if r.labels else "" for r in records])
    if len(set(groups.tolist())) < 2:
        raise DatasetError(f"cannot split {len(records)} image(s) of a single patient")
    strata_of_group: dict[str, set[str]] = defaultdict(set)
    for group, stratum in zip(groups.tolist(), strata.tolist(), strict=True):
        strata_of_group[group].add(stratum)
    if all(len(s) == 1 for s in strata_of_group.values()):  # usual case: one class per patient
        return _holdout_per_stratum(groups, strata, fraction, seed)
    return _holdout_mixed(groups, strata, fraction, seed)


def _holdout_per_stratum(
    groups: np.ndarray, strata: np.ndarray, fraction: float, seed: int
) -> list[int]:
    """Patients never span classes: hold out ``fraction`` of each class's patients."""
    from sklearn.model_selection import GroupShuffleSplit

    held: list[int] = []
    for stratum in np.unique(strata):
        positions = np.flatnonzero(strata == stratum)
        if len(np.unique(groups[positions])) < 2:
            continue  # a class of one patient stays in training
        shuffle = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        _, local = next(shuffle.split(positions, groups=groups[positions]))
        held.extend(positions[local].tolist())
    return sorted(held)


def _holdout_mixed(groups: np.ndarray, strata: np.ndarray, fraction: float, seed: int) -> list[int]:
    """Patients with images of several classes: one fold of a StratifiedGroupKFold."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    n_folds = min(max(2, round(1.0 / fraction)), n_groups)
    groups_per_class = [len(np.unique(groups[strata == s])) for s in np.unique(strata)]
    if min(groups_per_class) >= n_folds:
        folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        _, held = next(folds.split(np.zeros(len(groups)), strata, groups))
    else:
        shuffle = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        _, held = next(shuffle.split(np.zeros(len(groups)), groups=groups))
    return held.tolist()


def patients_in_several_splits(manifest: Manifest) -> dict[str, list[str]]:
    """``{patient_id: splits}`` for every patient whose images sit in more than one split.

    The ``excluded`` split does not count: those rows are used by no split.
    """
    splits: dict[str, set[str]] = defaultdict(set)
    for record in manifest:
        if record.patient_id and record.split != "excluded":
            splits[record.patient_id].add(record.split)
    return {p: sorted(s) for p, s in sorted(splits.items()) if len(s) > 1}
