"""Study-level CSVs: DICOM series folders, NIfTI volumes and MedMNIST 3D items as studies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from medlens.data import from_csv, load_record_image
from medlens.data.sources import find_images, is_series_folder
from medlens.errors import DatasetError
from medlens.training.data import check_cache_size


def _ct_small_series(folder: Path, positions: list[float], numbers: list[int]) -> Path:
    import pydicom
    from pydicom.data import get_testdata_file

    folder.mkdir(parents=True)
    for index, (z, number) in enumerate(zip(positions, numbers, strict=True)):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.ImagePositionPatient = [0.0, 0.0, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.InstanceNumber = number
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{index}"
        ds.PixelData = (np.full((128, 128), index * 10, np.int16)).tobytes()
        ds.save_as(folder / f"f{index}.dcm")
    return folder


def test_slices_follow_position_on_the_normal_not_instance_number(tmp_path: Path) -> None:
    # files and InstanceNumber both disagree with the z positions
    folder = _ct_small_series(tmp_path / "s", [4.0, 0.0, 2.0], [1, 2, 3])
    image = load_record_image(str(folder))
    firsts = np.array([float(image.array[i, 0, 0]) for i in range(3)])
    # z = 0, 2, 4 are files f1, f2, f0, which hold 10, 20 and 0 (plus the rescale intercept)
    np.testing.assert_allclose(firsts - firsts[0], [0.0, 10.0, -10.0])
    assert image.spacing[0] == pytest.approx(2.0)


def test_study_csv_mixes_series_folders_nifti_and_npz_items(tmp_path: Path) -> None:
    import nibabel as nib

    _ct_small_series(tmp_path / "studies" / "a", [0.0, 1.0, 2.0], [1, 2, 3])
    volume = np.zeros((6, 8, 8), np.float32)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "b.nii.gz")
    np.savez(tmp_path / "v.npz", train_images=np.zeros((2, 8, 8, 8), np.uint8))
    (tmp_path / "labels.csv").write_text(
        "study,label,patient_id\nstudies/a,yes,p1\nb.nii.gz,no,p2\nv.npz#train_images/1,no,p3\n"
    )
    manifest = from_csv(tmp_path / "labels.csv")
    assert [r.labels for r in manifest] == [("yes",), ("no",), ("no",)]
    shapes = [load_record_image(r.path).array.shape for r in manifest]
    assert shapes[0] == (3, 128, 128) and shapes[2] == (8, 8, 8) and sorted(shapes[1]) == [6, 8, 8]
    assert all(load_record_image(r.path).ndim == 3 for r in manifest)


def test_missing_study_is_refused(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("study,label\nnowhere,yes\n")
    with pytest.raises(DatasetError, match="do not exist"):
        from_csv(tmp_path / "labels.csv")


def test_a_series_folder_is_one_input_for_volume_models(tmp_path: Path) -> None:
    folder = _ct_small_series(tmp_path / "s", [0.0, 1.0], [1, 2])
    assert is_series_folder(folder) and not is_series_folder(tmp_path / "s" / "f0.dcm")
    assert list(find_images([folder], volumes=True)) == [folder]
    assert len(list(find_images([folder]))) == 2
    shutil.copy(folder / "f0.dcm", tmp_path / "single.dcm")
    assert list(find_images([tmp_path / "single.dcm"], volumes=True)) == [tmp_path / "single.dcm"]


def test_cache_bound_refuses_with_a_clear_message() -> None:
    check_cache_size(1000, 10, 10_000)
    with pytest.raises(
        DatasetError, match=r"11 images; 1,000 bytes each.*cache_bytes = 10,000 bytes"
    ):
        check_cache_size(1000, 11, 10_000)
    with pytest.raises(DatasetError, match="one image alone"):
        check_cache_size(20_000, 1, 10_000)
