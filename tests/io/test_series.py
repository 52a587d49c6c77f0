"""DICOM folders read as volumes: the real CT series, and synthetic broken series."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from medlens import read_image
from medlens.errors import InconsistentSeriesError, InvalidImageError
from medlens.io import list_series, read_series


@pytest.fixture(scope="module")
def ct_series(shared_datasets):
    folder = shared_datasets / "totalsegmentator_example" / "example_ct_dicom"
    return folder, read_image(folder)


def test_ct_series_matches_its_nifti_label_volume(ct_series, shared_datasets):
    _, volume = ct_series
    labels = read_image(
        shared_datasets / "totalsegmentator_example" / "example_seg_dicom.nii.gz", kind="label"
    )
    assert volume.array.shape == labels.array.shape == (20, 512, 512)
    assert volume.spacing == pytest.approx(labels.spacing)
    assert volume.spacing == pytest.approx((2.0, 0.9765625, 0.9765625))  # from positions
    # same world grid: the NIfTI stores the rows flipped, so its affine is the series'
    # affine with the row axis reversed
    flip_rows = np.eye(4)
    flip_rows[1, 1], flip_rows[1, 3] = -1, 511
    np.testing.assert_allclose(labels.affine @ flip_rows, volume.affine, atol=1e-3)
    # and the labels fall on the body: organs are tissue, not air
    organs = labels.array[:, ::-1, :] > 0
    assert organs.sum() > 10_000
    assert float(np.median(volume.array[organs])) > -200
    assert float(np.median(volume.array[~organs])) < -500


def test_ct_series_values_and_geometry(ct_series):
    _, volume = ct_series
    assert volume.modality == "CT" and volume.meta["format"] == "DICOM series"
    assert volume.array.min() == -1024  # intercept -1024, air
    assert volume.meta["orientation"] == "LPS"
    assert "JPEG 2000" in volume.meta["transfer_syntax"]


def test_series_is_sorted_by_position_not_file_name(ct_series, tmp_path):
    folder, volume = ct_series
    files = sorted(folder.iterdir())
    for index, path in enumerate(reversed(files)):  # names now in the opposite order
        shutil.copy(path, tmp_path / f"{index:03d}.dcm")
    again = read_series(tmp_path)
    np.testing.assert_array_equal(again.array, volume.array)
    np.testing.assert_allclose(again.affine, volume.affine)


def _write_series(tmp_path: Path, positions, **per_file) -> Path:
    """Copies of CT_small.dcm at the given z positions (one series)."""
    import pydicom
    from pydicom.data import get_testdata_file

    folder = tmp_path / "series"
    folder.mkdir(exist_ok=True)
    for index, z in enumerate(positions):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.ImagePositionPatient = [0.0, 0.0, float(z)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{index}"
        for key, values in per_file.items():
            if values[index] is not None:
                setattr(ds, key, values[index])
        ds.save_as(folder / f"slice{index}.dcm")
    return folder


def test_synthetic_series_spacing_comes_from_positions(tmp_path):
    folder = _write_series(tmp_path, [0, 2.5, 5.0, 7.5], SliceThickness=[9, 9, 9, 9])
    volume = read_image(folder)
    assert volume.array.shape == (4, 128, 128)
    assert volume.spacing[0] == pytest.approx(2.5)  # not SliceThickness


def test_missing_slice_is_refused(tmp_path):
    folder = _write_series(tmp_path, [0, 2.5, 5.0, 10.0, 12.5])
    with pytest.raises(InconsistentSeriesError, match="slice is missing"):
        read_image(folder)


def test_mixed_orientation_is_refused(tmp_path):
    tilted = [0, 0.7071, 0.7071, 0, 0.7071, -0.7071]
    folder = _write_series(tmp_path, [0, 2, 4], ImageOrientationPatient=[None, None, tilted])
    with pytest.raises(InconsistentSeriesError, match="orientation"):
        read_image(folder)


def test_mixed_sizes_are_refused(tmp_path):
    def shrink(ds):
        ds.Rows = 64
        ds.PixelData = ds.PixelData[: 64 * 128 * 2]

    folder = _write_series(tmp_path, [0, 2, 4])
    import pydicom

    ds = pydicom.dcmread(folder / "slice1.dcm")
    shrink(ds)
    ds.save_as(folder / "slice1.dcm")
    with pytest.raises(InconsistentSeriesError, match="mixed sizes"):
        read_image(folder)


def test_several_series_are_listed_and_chosen(tmp_path):
    folder = _write_series(tmp_path, [0, 2, 4], SeriesInstanceUID=["1.2.3.4", "1.2.3.4", "1.2.9.9"])
    series = list_series(folder)
    assert [(s.uid, len(s.files)) for s in series] == [("1.2.3.4", 2), ("1.2.9.9", 1)]
    with pytest.raises(InvalidImageError, match="holds 2 series") as excinfo:
        read_image(folder)
    assert "1.2.3.4" in str(excinfo.value) and "1.2.9.9" in str(excinfo.value)
    assert read_series(folder, series_uid="1.2.3.4").array.shape == (2, 128, 128)
    assert read_series(folder, series_uid="9.9").array.shape == (128, 128)  # unique ending
    with pytest.raises(InvalidImageError, match="matches no series"):
        read_series(folder, series_uid="7.7.7")


def test_folder_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidImageError, match="no DICOM image files"):
        read_image(tmp_path)
