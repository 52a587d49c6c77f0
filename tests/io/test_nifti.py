"""NIfTI: axis order, affine, round trip, hostile headers."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from medlens import read_image
from medlens.errors import ImageTooLargeError, NonFiniteImageError, UnsupportedFormatError
from medlens.io import write_image


def _save(array, path, affine=None):
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return path


def test_axes_are_stored_k_j_i_with_the_affine_permuted(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)  # (i, j, k)
    affine = np.diag([0.5, 0.8, 2.0, 1.0])
    affine[:3, 3] = [10, 20, 30]
    image = read_image(_save(data, tmp_path / "v.nii.gz", affine))
    assert image.array.shape == (4, 3, 2)
    assert image.array[3, 2, 1] == data[1, 2, 3]
    assert image.spacing == pytest.approx((2.0, 0.8, 0.5))
    # world position of voxel (i, j, k) = (1, 2, 3) is unchanged
    np.testing.assert_allclose(image.affine @ [3, 2, 1, 1], affine @ [1, 2, 3, 1])
    assert image.meta["orientation"] == "RAS"


def test_round_trip_is_exact(tmp_path, shared_datasets):
    source = shared_datasets / "totalsegmentator_example" / "example_ct_sm.nii.gz"
    image = read_image(source)
    assert image.array.shape == (30, 101, 122) and image.array.dtype == np.int16
    out = write_image(image, tmp_path / "copy.nii.gz")
    again = read_image(out)
    np.testing.assert_array_equal(again.array, image.array)
    assert again.array.dtype == image.array.dtype
    np.testing.assert_allclose(again.affine, image.affine)
    assert again.spacing == image.spacing
    original = nib.load(source)
    np.testing.assert_array_equal(
        np.asanyarray(nib.load(out).dataobj), np.asanyarray(original.dataobj)
    )


def test_2d_round_trip(tmp_path):
    image = read_image(
        _save(np.random.default_rng(0).random((5, 7)).astype(np.float32), tmp_path / "a.nii")
    )
    assert image.array.shape == (7, 5)
    again = read_image(write_image(image, tmp_path / "b.nii"))
    np.testing.assert_array_equal(again.array, image.array)


def test_hippocampus_pair_shares_a_grid(shared_datasets):
    root = shared_datasets / "hippocampus_msd"
    image = read_image(root / "imagesTr" / "hippocampus_190.nii.gz")
    labels = read_image(root / "labelsTr" / "hippocampus_190.nii.gz", kind="label")
    assert image.array.shape == labels.array.shape
    np.testing.assert_allclose(image.affine, labels.affine)
    assert labels.kind == "label" and set(np.unique(labels.array)) == {0, 1, 2}


def test_nan_voxels_are_refused(tmp_path):
    data = np.zeros((4, 4, 4), dtype=np.float32)
    data[1, 2, 3] = np.nan
    with pytest.raises(NonFiniteImageError, match="1 voxel"):
        read_image(_save(data, tmp_path / "nan.nii.gz"))


def test_header_claiming_huge_volume_is_refused_before_loading(tmp_path):
    path = _save(np.zeros((2, 2, 2), dtype=np.uint8), tmp_path / "small.nii")
    raw = bytearray(path.read_bytes())
    raw[42:48] = np.array([4096, 4096, 4096], dtype="<i2").tobytes()  # dim[1..3]
    path.write_bytes(bytes(raw))
    with pytest.raises(ImageTooLargeError, match="4096x4096x4096"):
        read_image(path)


def test_time_series_is_unsupported(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="4D"):
        read_image(_save(np.zeros((3, 3, 3, 2), dtype=np.int16), tmp_path / "t.nii"))


def test_writing_a_synthetic_image_keeps_spacing_and_narrows_int64(tmp_path):
    from medlens.io import Image

    image = Image(array=np.arange(24, dtype=np.int64).reshape(2, 3, 4), spacing=(3.0, 2.0, 0.5))
    again = read_image(write_image(image, tmp_path / "s.nii.gz"))
    assert again.spacing == (3.0, 2.0, 0.5)  # the identity affine was rescaled to the spacing
    assert again.array.dtype == np.int32
    np.testing.assert_array_equal(again.array, image.array)
