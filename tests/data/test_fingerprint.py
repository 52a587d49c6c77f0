"""Fingerprint and manifest files: counts, statistics, stable hash, round trips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from medlens.data import (
    assign_splits,
    compute_fingerprint,
    from_folder,
    load_fingerprint,
    load_manifest,
    prepare_dataset,
)
from medlens.errors import DatasetError


def test_prepare_writes_manifest_and_fingerprint(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest, fingerprint = prepare_dataset(class_folder, out, val_fraction=0.25, seed=0)
    text = (out / "manifest.csv").read_text()
    assert text.splitlines()[0] == "path,label,patient_id,split,label_path"
    assert "../folder/train/cat/person1_virus_0.png" in text  # relative to the manifest
    assert sorted(p.name for p in out.iterdir()) == ["fingerprint.json", "manifest.csv"]
    assert load_fingerprint(out) == json.loads((out / "fingerprint.json").read_text())
    assert fingerprint["counts"]["test"] == {"cat": 2, "dog": 2}
    assert fingerprint["counts"]["val"] == {"cat": 4, "dog": 4}  # 2 of 6 patients per class
    assert fingerprint["patients"]["train"] == 8 and fingerprint["patients_in_several_splits"] == 0
    assert fingerprint["shapes"]["min"] == [16, 16] and fingerprint["spacing"]["median"] == [1, 1]
    assert fingerprint["sample"] == {"size": 28, "seed": 0, "unreadable": 0}
    assert fingerprint["intensity"]["max"] == 255.0
    reread = load_manifest(out)
    assert reread.records == manifest.records and reread.classes == manifest.classes


def test_hash_is_stable_across_machines_and_row_order(class_folder: Path, tmp_path: Path) -> None:
    manifest = assign_splits(from_folder(class_folder), seed=0)
    moved = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(class_folder, moved)
    moved_manifest = assign_splits(from_folder(moved), seed=0)
    assert moved_manifest.sha256() == manifest.sha256()
    reversed_rows = manifest.with_records(reversed(manifest.records))
    assert reversed_rows.sha256() == manifest.sha256()
    other_seed = assign_splits(from_folder(class_folder), val_fraction=0.5, seed=1)
    assert other_seed.sha256() != manifest.sha256()


def test_statistics_come_from_a_seeded_sample(kermany: Path) -> None:
    manifest = from_folder(kermany)
    first = compute_fingerprint(manifest, sample_size=12, seed=3)
    assert first == compute_fingerprint(manifest, sample_size=12, seed=3)
    assert first["num_images"] == 5840 and first["sample"]["size"] == 12
    assert first["shapes"]["most_common"] == [{"shape": [224, 224, 3], "count": 12}]
    assert first["intensity"] != compute_fingerprint(manifest, sample_size=12, seed=4)["intensity"]


def test_bad_files_raise_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no fingerprint"):
        load_fingerprint(tmp_path)
    (tmp_path / "fingerprint.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="not a medlens fingerprint"):
        load_fingerprint(tmp_path)
    with pytest.raises(DatasetError, match="not a valid fingerprint"):
        load_manifest(tmp_path / "nothing.csv")
    (tmp_path / "fingerprint.json").unlink()
    with pytest.raises(DatasetError, match="manifest not found"):
        load_manifest(tmp_path / "nothing.csv")
    (tmp_path / "m.csv").write_text("path,split\nx.png,holdout\n")
    with pytest.raises(DatasetError, match="line 2: unknown split"):
        load_manifest(tmp_path / "m.csv")
    (tmp_path / "h.csv").write_text("file,label\nx.png,a\n")
    with pytest.raises(DatasetError, match="'path' column"):
        load_manifest(tmp_path / "h.csv")
