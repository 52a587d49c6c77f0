"""Sources: folder per class, CSV, Decathlon pairs; patient IDs from names and DICOM."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medlens.data import (
    Manifest,
    from_csv,
    from_decathlon,
    from_folder,
    hash_patient_id,
    patient_id_from_name,
)
from medlens.errors import DatasetError


@pytest.mark.parametrize(
    ("name", "patient"),
    [
        ("person123_bacteria_456.jpeg", "person123"),
        ("person447_virus_921_1.jpeg", "person447"),
        ("IM-0115-0001.jpeg", "IM-0115"),
        ("IM-0429-0001-0002.jpeg", "IM-0429"),
        ("NORMAL2-IM-1427-0001.jpeg", "NORMAL2-IM-1427"),
        ("scan_7.png", "scan_7"),  # no match: the image is its own patient
    ],
)
def test_kermany_patient_ids(name: str, patient: str) -> None:
    assert patient_id_from_name(name) == patient


def test_custom_patient_regex() -> None:
    assert patient_id_from_name("sub-07_ses-2_T1w.png", r"sub-(\d+)") == "07"
    assert patient_id_from_name("case42-a.png", r"(?P<patient>case\d+)") == "case42"


def test_folder_with_official_splits(class_folder: Path) -> None:
    manifest = from_folder(class_folder)
    assert manifest.classes == ("cat", "dog")
    assert manifest.task == "multiclass"
    assert manifest.counts() == {"test": {"cat": 2, "dog": 2}, "train": {"cat": 12, "dog": 12}}
    first = manifest.records[0]
    assert Path(first.path).is_absolute() and first.patient_id == "person101"


def test_folder_without_splits_and_errors(tmp_path: Path, make_png) -> None:
    make_png(tmp_path / "a" / "x.png", 1)
    make_png(tmp_path / "b" / "y.png", 2)
    assert {r.split for r in from_folder(tmp_path)} == {""}
    make_png(tmp_path / "train" / "a" / "z.png", 3)
    with pytest.raises(DatasetError, match="mixes split folders"):
        from_folder(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        from_folder(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no images"):
        from_folder(tmp_path / "train" / "a")


def test_dicom_patient_id_is_hashed(tmp_path: Path, dicom_testfile) -> None:
    import pydicom

    source = dicom_testfile("CT_small.dcm")
    clear = str(pydicom.dcmread(source).PatientID)
    for label in ("ct", "other"):
        target = tmp_path / label / "series1"
        target.mkdir(parents=True)
        shutil.copy(source, target / "IM0001")  # no extension: found by its preamble
    manifest = from_folder(tmp_path)
    assert len(manifest) == 2
    assert {r.patient_id for r in manifest} == {hash_patient_id(clear)}
    text = manifest.to_csv(tmp_path)
    assert clear not in text
    assert hash_patient_id(clear, salt="other") != hash_patient_id(clear)


def test_csv_source_with_multilabel(tmp_path: Path, make_png) -> None:
    for name in ("a.png", "b.png", "c.png"):
        make_png(tmp_path / "img" / name, 5)
    (tmp_path / "list.csv").write_text(
        "path,label,patient_id\nimg/a.png,effusion|nodule,p1\nimg/b.png,nodule,p2\nimg/c.png,,p3\n"
    )
    manifest = from_csv(tmp_path / "list.csv")
    assert manifest.task == "multilabel"
    assert manifest.classes == ("effusion", "nodule")
    assert manifest.records[0].labels == ("effusion", "nodule")
    assert manifest.records[2].labels == ()
    (tmp_path / "bad.csv").write_text("path,label\nimg/missing.png,x\n")
    with pytest.raises(DatasetError, match="do not exist"):
        from_csv(tmp_path / "bad.csv")


def test_decathlon_real_folder(hippocampus: Path) -> None:
    manifest = from_decathlon(hippocampus)
    assert len(manifest) == 208
    assert manifest.task == "segmentation"
    for record in manifest.records[:5]:
        assert Path(record.label_path).name == Path(record.path).name
        assert "labelsTr" in record.label_path and record.patient_id.startswith("hippocampus_")


def test_decathlon_layout_v2_and_dataset_json(tmp_path: Path) -> None:
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    for case in ("case_001", "case_002"):
        (tmp_path / "imagesTr" / f"{case}_0000.nii.gz").write_bytes(b"")
        (tmp_path / "labelsTr" / f"{case}.nii.gz").write_bytes(b"")
    (tmp_path / "imagesTr" / "._case_001_0000.nii.gz").write_bytes(b"")  # macOS junk
    (tmp_path / "dataset.json").write_text('{"labels": {"background": 0, "liver": 1}}')
    manifest = from_decathlon(tmp_path)
    assert [r.patient_id for r in manifest] == ["case_001", "case_002"]
    assert manifest.classes == ("background", "liver")
    (tmp_path / "labelsTr" / "case_002.nii.gz").unlink()
    with pytest.raises(DatasetError, match="no matching label"):
        from_decathlon(tmp_path)


def test_manifest_rejects_unknown_labels() -> None:
    from medlens.data import Record

    with pytest.raises(DatasetError, match="not among classes"):
        Manifest((Record("/x.png", "cat"),), classes=("dog",))
