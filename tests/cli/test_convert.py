"""``medlens convert``: DICOM/series/NIfTI/raster to PNG or NIfTI, windows, slices, bits."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from medlens import read_image
from medlens.cli import app
from medlens.transforms.intensity import apply_window

runner = CliRunner()


def convert(*args: str):
    result = runner.invoke(app, ["convert", *map(str, args)])
    return result


def test_dicom_to_png_with_a_preset(dicom_testfile, tmp_path):
    source = dicom_testfile("CT_small.dcm")
    result = convert(source, tmp_path / "ct.png", "--window", "soft")
    assert result.exit_code == 0, result.output
    png = read_image(tmp_path / "ct.png").array
    expected = np.rint(apply_window(read_image(source).array, 50, 400) * 255)
    np.testing.assert_array_equal(png, expected)


def test_16_bit_png_and_custom_window(dicom_testfile, tmp_path):
    result = convert(
        dicom_testfile("CT_small.dcm"), tmp_path / "ct.png", "-w", "40,80", "--bits", "16"
    )
    assert result.exit_code == 0, result.output
    png = read_image(tmp_path / "ct.png").array
    assert png.dtype == np.uint16 and png.max() == 65535 and png.min() == 0


def test_auto_window_uses_the_files_window(dicom_testfile, tmp_path):
    source = dicom_testfile("MR_small.dcm")
    assert convert(source, tmp_path / "mr.png", "--window", "auto").exit_code == 0
    png = read_image(tmp_path / "mr.png").array
    np.testing.assert_array_equal(
        png, np.rint(apply_window(read_image(source).array, 600, 1600) * 255)
    )


def test_series_to_nifti_is_exact_and_to_png_takes_a_slice(shared_datasets, tmp_path):
    folder = shared_datasets / "totalsegmentator_example" / "example_ct_dicom"
    assert convert(folder, tmp_path / "ct.nii.gz").exit_code == 0
    volume, nifti = read_image(folder), read_image(tmp_path / "ct.nii.gz")
    assert nifti.array.dtype == np.int16  # integral HU stored compactly
    np.testing.assert_array_equal(nifti.array, volume.array)
    np.testing.assert_allclose(nifti.affine, volume.affine, atol=1e-4)
    result = convert(
        tmp_path / "ct.nii.gz", tmp_path / "s3.png", "--slice", "3", "--window", "lung"
    )
    assert result.exit_code == 0, result.output
    expected = np.rint(apply_window(volume.array[3], -600, 1500) * 255)
    np.testing.assert_array_equal(read_image(tmp_path / "s3.png").array, expected)


def test_middle_slice_by_default(dicom_testfile, tmp_path):
    source = dicom_testfile("emri_small.dcm")
    assert convert(source, tmp_path / "mid.png", "--window", "0,1000").exit_code == 0
    expected = np.rint(apply_window(read_image(source).array[5], 0, 1000) * 255)
    np.testing.assert_array_equal(read_image(tmp_path / "mid.png").array, expected)


def test_raster_to_png_is_unchanged_without_window(shared_datasets, tmp_path):
    jpeg = next((shared_datasets / "chest_xray_kermany_224" / "train" / "NORMAL").glob("*.jpeg"))
    assert convert(jpeg, tmp_path / "x.png").exit_code == 0
    np.testing.assert_array_equal(read_image(tmp_path / "x.png").array, read_image(jpeg).array)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "lungs"], "unknown window"),
        (["--bits", "12"], "8 or 16"),
        (["--slice", "99"], "out of range"),
    ],
)
def test_bad_options_give_one_line_errors(dicom_testfile, tmp_path, args, message):
    result = convert(dicom_testfile("emri_small.dcm"), tmp_path / "o.png", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.png").exists()
