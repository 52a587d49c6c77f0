"""DICOM files: values after the LUTs, compressed == uncompressed twins, hostile files."""

from __future__ import annotations

import numpy as np
import pytest

from medlens import read_image
from medlens.errors import (
    ImageTooLargeError,
    InvalidImageError,
    NoPixelDataError,
    TruncatedImageError,
    UnsupportedFormatError,
)

TWINS = [
    ("MR_small.dcm", "MR_small_bigendian.dcm"),
    ("MR_small.dcm", "MR_small_RLE.dcm"),
    ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),
    ("MR_small.dcm", "MR_small_jp2klossless.dcm"),
    ("emri_small.dcm", "emri_small_RLE.dcm"),
    ("emri_small.dcm", "emri_small_jpeg_ls_lossless.dcm"),
    ("emri_small.dcm", "emri_small_jpeg_2k_lossless.dcm"),
    ("emri_small.dcm", "emri_small_big_endian.dcm"),
    ("693_UNCR.dcm", "693_J2KR.dcm"),
    ("US1_UNCR.dcm", "US1_J2KR.dcm"),
    ("SC_rgb.dcm", "SC_rgb_rle_2frame.dcm"),
    ("OBXXXX1A.dcm", "OBXXXX1A_rle.dcm"),
]


@pytest.mark.parametrize(("plain", "encoded"), TWINS, ids=[t[1] for t in TWINS])
def test_encoded_twin_decodes_to_the_same_values(dicom_testfile, plain, encoded):
    a = read_image(dicom_testfile(plain))
    b = read_image(dicom_testfile(encoded))
    b_array = b.array[0] if b.array.ndim == a.array.ndim + 1 else b.array  # 2-frame twin
    np.testing.assert_array_equal(a.array, b_array)
    assert a.spacing == b.spacing[-len(a.spacing) :]


def test_chest_cr_monochrome1_j2k_matches_uncompressed_and_is_inverted(dicom_testfile):
    plain = read_image(dicom_testfile("RG1_UNCR.dcm"))
    j2k = read_image(dicom_testfile("RG1_J2KR.dcm"))
    assert plain.array.shape == (1955, 1841)
    assert plain.modality == "CR" and plain.meta["photometric"] == "MONOCHROME1"
    np.testing.assert_array_equal(plain.array, j2k.array)
    # inverted over the 15 stored bits: stored 0 (white in MONOCHROME1) becomes 32767
    import pydicom

    stored = pydicom.dcmread(dicom_testfile("RG1_UNCR.dcm")).pixel_array
    np.testing.assert_array_equal(plain.array, 32767.0 - stored)
    assert plain.meta["inverted"] is True
    assert plain.meta["window"] == [32767 - 15000, 30000]  # the file's window, mirrored


def test_monochrome1_reads_like_its_monochrome2_conversion(edited_dicom, dicom_testfile):
    import pydicom

    def to_monochrome2(ds):
        ds.PixelData = (32767 - ds.pixel_array).astype(np.uint16).tobytes()
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.WindowCenter = 32767 - 15000

    mono1 = read_image(dicom_testfile("RG1_UNCR.dcm"))
    mono2 = read_image(edited_dicom("RG1_UNCR.dcm", edit=to_monochrome2))
    np.testing.assert_array_equal(mono1.array, mono2.array)
    assert mono1.meta["window"] == mono2.meta["window"]
    assert (
        pydicom.dcmread(dicom_testfile("RG1_UNCR.dcm")).PhotometricInterpretation == "MONOCHROME1"
    )


def test_ct_values_are_hounsfield_units(dicom_testfile):
    ct = read_image(dicom_testfile("CT_small.dcm"))
    assert ct.array.dtype == np.float32
    assert ct.meta["rescale"] == [1.0, -1024.0]
    assert ct.array.min() == pytest.approx(-896)  # air outside the phantom/patient
    assert -200 < float(np.median(ct.array)) < 200  # soft tissue
    assert ct.spacing == pytest.approx((0.661468, 0.661468))


def test_affine_maps_pixels_to_ras_world(dicom_testfile):
    import pydicom

    ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    ct = read_image(dicom_testfile("CT_small.dcm"))
    row, col = 10, 20
    lps = (
        np.array([float(v) for v in ds.ImagePositionPatient])
        + col
        * float(ds.PixelSpacing[1])
        * np.array([float(v) for v in ds.ImageOrientationPatient[:3]])
        + row
        * float(ds.PixelSpacing[0])
        * np.array([float(v) for v in ds.ImageOrientationPatient[3:]])
    )
    ras = ct.affine @ np.array([row, col, 0, 1.0])
    np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-4)


def test_enhanced_ct_uses_functional_groups(dicom_testfile):
    image = read_image(dicom_testfile("eCT_Supplemental.dcm"))
    assert image.array.shape == (2, 512, 512)
    assert image.array.min() == -1024.0  # Pixel Value Transformation: intercept -1024
    assert image.meta["window"] == [49.0, 102.0]  # Frame VOI LUT
    assert image.spacing[1:] == pytest.approx((0.388672, 0.388672))  # Pixel Measures


def test_modality_lut_sequence_and_voi_lut_are_applied_or_kept(dicom_testfile):
    import pydicom
    from pydicom.pixels import apply_modality_lut

    path = dicom_testfile("mlut_18.dcm")
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(read_image(path).array, apply_modality_lut(ds.pixel_array, ds))
    voi = read_image(dicom_testfile("vlut_04.dcm")).meta["voi_lut"]
    assert len(voi["table"]) > 1 and voi["bits"] in (8, 16)


def test_colour_is_rgb_and_multiframe_stacks_frames(dicom_testfile):
    ybr = read_image(dicom_testfile("SC_ybr_full_uncompressed.dcm"))
    rgb = read_image(dicom_testfile("SC_rgb.dcm"))
    assert ybr.is_rgb and ybr.array.shape == (100, 100, 3)
    difference = np.abs(ybr.array.astype(int) - rgb.array.astype(int))
    assert difference.max() <= 8 and difference.mean() < 1  # YBR -> RGB, up to rounding
    palette = read_image(dicom_testfile("OBXXXX1A.dcm"))
    assert palette.array.shape == (600, 800, 3)
    multi = read_image(dicom_testfile("emri_small.dcm"))
    assert multi.array.shape == (10, 64, 64) and multi.meta["frames"] == 10


def test_seg_is_a_label_map(dicom_testfile):
    seg = read_image(dicom_testfile("liver.dcm"))
    assert seg.kind == "label"
    assert set(np.unique(seg.array)) <= {0, 1}


def test_meta_holds_no_patient_data(dicom_testfile):
    import pydicom

    path = dicom_testfile("CT_small.dcm")
    ds = pydicom.dcmread(path)
    text = repr(read_image(path).meta)
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "InstitutionName"):
        assert str(ds.get(keyword)) not in text


# --- hostile and unusable files ----------------------------------------------------------


def test_structured_report_has_no_pixels(dicom_testfile):
    with pytest.raises(NoPixelDataError, match="no pixel data"):
        read_image(dicom_testfile("test-SR.dcm"))


def test_truncated_pixel_data(dicom_testfile):
    with pytest.raises(TruncatedImageError, match="8,130 bytes"):
        read_image(dicom_testfile("MR_truncated.dcm"))
    with pytest.raises(TruncatedImageError):
        read_image(dicom_testfile("emri_small_jpeg_2k_lossless_too_short.dcm"))


def test_file_cut_in_half(dicom_testfile, tmp_path):
    data = dicom_testfile("CT_small.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedImageError, match="cut.dcm"):
        read_image(cut)


def test_absurd_dimensions_refused_before_allocation(edited_dicom):
    path = edited_dicom("MR_small.dcm", Rows=65535, Columns=65535)
    with pytest.raises(ImageTooLargeError, match="65535x65535"):
        read_image(path)


def test_voxel_limit_is_configurable(dicom_testfile):
    with pytest.raises(ImageTooLargeError):
        read_image(dicom_testfile("CT_small.dcm"), max_voxels=100)


def test_unsupported_transfer_syntax(edited_dicom):
    def fake_syntax(ds):
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2, no decoder

    path = edited_dicom("MR_small_RLE.dcm", edit=fake_syntax)
    with pytest.raises(UnsupportedFormatError, match="MPEG2"):
        read_image(path)


def test_dicom_without_preamble_is_refused(dicom_testfile):
    with pytest.raises(InvalidImageError):
        read_image(dicom_testfile("no_meta.dcm"))


def test_every_small_pydicom_data_file_reads_or_fails_cleanly(dicom_testfile):
    """Robustness sweep: no pydicom-data file may escape with a non-medlens exception."""
    from medlens.errors import MedlensError

    folders = {dicom_testfile(name).parent for name in ("CT_small.dcm", "RG1_UNCR.dcm")}
    files = sorted(path for folder in folders for path in folder.glob("*.dcm"))
    read = refused = 0
    for path in files:
        if path.stat().st_size > 600_000 or path.name == "badVR.dcm":
            continue  # big files are covered above; badVR warns (warnings are errors here)
        try:
            read_image(path)
            read += 1
        except MedlensError:
            refused += 1
    assert read > 60 and refused > 5


def test_colour_multiframe_is_rgb(dicom_testfile):
    image = read_image(dicom_testfile("SC_rgb_rle_2frame.dcm"))
    assert image.array.shape == (2, 100, 100, 3) and image.ndim == 3 and image.is_rgb


@pytest.mark.parametrize("defined_length", [False, True], ids=["undefined", "defined"])
@pytest.mark.parametrize("depth", [33, 1_000, 5_000, 50_000])
def test_deeply_nested_sequences_are_one_typed_error(
    tmp_path, nested_dicom, depth: int, defined_length: bool
) -> None:
    """Thousands of nested sequence items: an InvalidImageError, not a RecursionError."""
    from medlens.io import read_header

    path = tmp_path / "nested.dcm"
    path.write_bytes(nested_dicom(depth, defined_length=defined_length))
    with pytest.raises(InvalidImageError, match="nested more than 32 levels"):
        read_image(path)
    with pytest.raises(InvalidImageError, match="nested more than 32 levels"):
        read_header(path)


@pytest.mark.parametrize("defined_length", [False, True], ids=["undefined", "defined"])
def test_nesting_up_to_the_limit_is_read(tmp_path, nested_dicom, defined_length: bool) -> None:
    from medlens.io import read_header

    path = tmp_path / "nested.dcm"
    path.write_bytes(nested_dicom(32, defined_length=defined_length))
    assert read_header(path)["modality"] == "OT"
    with pytest.raises(NoPixelDataError):  # read through, refused for what it is
        read_image(path)
