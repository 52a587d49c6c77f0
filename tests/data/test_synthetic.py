"""Synthetic images never reach validation, test or a patient group."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from medlens.data import Manifest, Record, assign_splits
from medlens.data.build import build_manifest
from medlens.data.synthetic import is_synthetic


def test_marked_images_stay_in_training_without_patient(
    tmp_path: Path, image_folder: Path, make_marked
) -> None:
    data = shutil.copytree(image_folder, tmp_path / "data")
    marked = {str(p) for p in make_marked(data, "pneumonia", 10)}
    for seed in range(3):
        manifest = build_manifest(data, val_fraction=0.3, test_fraction=0.3, seed=seed)
        rows = [r for r in manifest if r.path in marked]
        assert len(rows) == 10
        assert {r.split for r in rows} == {"train"} and {r.patient_id for r in rows} == {""}
        held_out = [r for r in manifest if r.split in ("val", "test")]
        assert held_out and not any(r.path in marked for r in held_out)


def test_a_provenance_row_marks_an_image_without_its_png_marker(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "out" / "normal"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "plain.png")
    assert not is_synthetic(folder / "plain.png")
    (tmp_path / "out" / "provenance.csv").write_text("path,class\nnormal/plain.png,normal\n")
    assert is_synthetic(folder / "plain.png")


def test_a_manifest_that_puts_synthetic_rows_in_test_is_overruled(
    tmp_path: Path, make_marked
) -> None:
    marked = make_marked(tmp_path, "a", 2)
    real = [Record(str(tmp_path / f"r{i}.png"), "a", f"p{i}", "test") for i in range(2)]
    rows = [Record(str(marked[0]), "a", "p0", "test"), Record(str(marked[1]), "a", "p9", "val")]
    out = assign_splits(Manifest((*real, *rows)), val_fraction=0.0)
    assert [r.split for r in out.records] == ["test", "test", "excluded", "excluded"]
    assert [r.patient_id for r in out.records[2:]] == ["", ""]
