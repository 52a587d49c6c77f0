"""Image/label-map pair sources: Decathlon Tr and Ts pairs, images/ + masks/ with patients."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image as PILImage

from medlens.data import assign_splits, from_mask_folders, open_source
from medlens.errors import DatasetError


def _touch_pairs(root: Path, images: str, labels: str | None, cases: list[str]) -> None:
    (root / images).mkdir(parents=True)
    if labels:
        (root / labels).mkdir(parents=True)
    for case in cases:
        (root / images / f"{case}_0000.nii.gz").write_bytes(b"")
        if labels:
            (root / labels / f"{case}.nii.gz").write_bytes(b"")


def test_decathlon_held_out_pairs_are_the_test_split(tmp_path: Path) -> None:
    _touch_pairs(tmp_path, "imagesTr", "labelsTr", ["a", "b", "c", "d"])
    _touch_pairs(tmp_path, "imagesTs", "labelsTs", ["t1", "t2"])
    manifest = open_source(tmp_path)
    assert [r.split for r in manifest] == ["", "", "", "", "test", "test"]
    assert all("labelsTs" in r.label_path for r in manifest if r.split == "test")
    split = assign_splits(manifest, val_fraction=0.25, seed=0)
    assert [r.patient_id for r in split.split("test")] == ["t1", "t2"]


def test_a_folder_of_imagests_and_labelsts_is_a_test_set(tmp_path: Path) -> None:
    """What `medlens evaluate RUN --data held_out/` reads (it was read as two classes)."""
    _touch_pairs(tmp_path, "imagesTs", "labelsTs", ["t1", "t2", "t3"])
    manifest = open_source(tmp_path)
    assert manifest.task == "segmentation" and {r.split for r in manifest} == {"test"}


def test_unlabelled_held_out_images_are_left_out(tmp_path: Path) -> None:
    _touch_pairs(tmp_path, "imagesTr", "labelsTr", ["a", "b"])
    _touch_pairs(tmp_path, "imagesTs", None, ["t1"])
    assert [r.patient_id for r in open_source(tmp_path)] == ["a", "b"]


def _eyes(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for patient in range(8):
        for eye in ("left", "right"):
            name = f"{patient:02d}_{eye}.png"
            PILImage.new("RGB", (8, 8), (180, 60, 20)).save(root / "images" / name)
            PILImage.new("L", (8, 8)).save(root / "masks" / name)
    return root


def test_patient_regex_keeps_both_eyes_in_one_split(tmp_path: Path) -> None:
    root = _eyes(tmp_path / "fundus")
    manifest = open_source(root, patient_regex=r"^(\d+)_")
    assert {r.patient_id for r in manifest} == {f"{p:02d}" for p in range(8)}
    split = assign_splits(manifest, val_fraction=0.25, test_fraction=0.25, seed=0)
    for patient in {r.patient_id for r in split}:
        assert len({r.split for r in split if r.patient_id == patient}) == 1


def test_cli_data_honours_the_patient_regex_for_mask_folders(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from medlens.cli import app
    from medlens.data import load_manifest

    root = _eyes(tmp_path / "fundus")
    args = ["data", str(root), "-o", str(tmp_path / "ds"), "--patient-regex", r"^(\d+)_"]
    result = CliRunner().invoke(app, [*args, "--val-fraction", "0.25", "--test-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    assert "patients in more than one split: 0" in result.output
    assert "3-channel (colour) 2D images" in result.output
    manifest = load_manifest(tmp_path / "ds")
    assert len({r.patient_id for r in manifest}) == 8


def test_mask_folders_need_a_mask_per_image(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    PILImage.new("L", (8, 8)).save(tmp_path / "images" / "a.png")
    with pytest.raises(DatasetError, match="no mask"):
        from_mask_folders(tmp_path)
    with pytest.raises(DatasetError, match="invalid patient regex"):
        from_mask_folders(tmp_path, patient_regex="(")


def test_unlabelled_held_out_images_are_reported(tmp_path: Path, caplog) -> None:
    import logging

    _touch_pairs(tmp_path, "imagesTr", "labelsTr", ["a", "b"])
    _touch_pairs(tmp_path, "imagesTs", None, ["t1", "t2"])
    with caplog.at_level(logging.WARNING, logger="medlens.data.pairs"):
        open_source(tmp_path)
    assert "2 image(s) without labelsTs/ left out" in caplog.text


def test_decathlon_pairing_refuses_orphan_labels_and_channel_files(tmp_path: Path) -> None:
    _touch_pairs(tmp_path, "imagesTr", "labelsTr", ["a", "b"])
    (tmp_path / "labelsTr" / "zz.nii.gz").write_bytes(b"")  # a label of no image
    with pytest.raises(DatasetError, match="1 label file.* have no image.*zz.nii.gz"):
        open_source(tmp_path)
    (tmp_path / "labelsTr" / "zz.nii.gz").unlink()
    (tmp_path / "imagesTr" / "a_0001.nii.gz").write_bytes(b"")  # a second channel of case a
    with pytest.raises(DatasetError, match="multi-channel"):
        open_source(tmp_path)


def test_mask_folders_refuse_ambiguous_pairs(tmp_path: Path) -> None:
    root = _eyes(tmp_path / "eyes")
    PILImage.new("L", (8, 8)).save(root / "masks" / "99_left.png")  # a mask of no image
    with pytest.raises(DatasetError, match="have no image in images/.*99_left"):
        from_mask_folders(root)
    (root / "masks" / "99_left.png").rename(root / "masks" / "00_left.tif")  # 00_left twice
    with pytest.raises(DatasetError, match="same case"):
        from_mask_folders(root)
    (root / "masks" / "00_left.tif").unlink()
    (root / "labels").mkdir()
    with pytest.raises(DatasetError, match="both masks/ and labels/"):
        from_mask_folders(root)


def test_half_of_a_pair_is_refused_with_its_parent(tmp_path: Path) -> None:
    _touch_pairs(tmp_path, "imagesTs", "labelsTs", ["t1"])
    with pytest.raises(DatasetError, match="half of an image/label pair: pass"):
        open_source(tmp_path / "imagesTs")
