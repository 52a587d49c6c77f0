"""read_header / describe: facts for people, patient data only on request."""

from __future__ import annotations

import pydicom

from medlens.io import describe, read_header


def test_read_header_without_and_with_phi(dicom_testfile):
    path = dicom_testfile("MR_small.dcm")
    header = read_header(path)
    assert header["modality"] == "MR" and (header["rows"], header["cols"]) == (64, 64)
    assert "phi" not in header
    ds = pydicom.dcmread(path)
    assert str(ds.PatientName) not in repr(header)
    phi = read_header(path, show_phi=True)["phi"]
    assert phi["PatientName"] == str(ds.PatientName)
    assert phi["SeriesInstanceUID"] == ds.SeriesInstanceUID


def test_describe_summarises_values(dicom_testfile, shared_datasets):
    summary = describe(dicom_testfile("emri_small_jpeg_ls_lossless.dcm"))
    assert summary["shape"] == [10, 64, 64] and summary["frames"] == 10
    assert summary["transfer_syntax"] == "JPEG-LS Lossless Image Compression"
    nifti = describe(shared_datasets / "totalsegmentator_example" / "example_mr_sm.nii.gz")
    assert nifti["format"] == "NIfTI" and nifti["shape"] == [20, 91, 117]
    assert nifti["range"][0] <= nifti["range"][1]


def test_non_dicom_header_is_just_the_format(shared_datasets):
    path = shared_datasets / "pneumoniamnist" / "pneumoniamnist.npz"
    assert read_header(path) == {"format": "NumPy"}
