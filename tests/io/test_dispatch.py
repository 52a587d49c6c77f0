"""read_image picks the reader by content; hostile and mislabelled files; inputs untouched."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from medlens import read_image
from medlens.errors import ConfigError, InvalidImageError, UnsupportedFormatError
from medlens.io import Image, detect_format, write_image
from medlens.io.raster import write_png


def test_format_follows_content_not_name(dicom_testfile, tmp_path):
    plain = tmp_path / "IM0001"  # DICOM files often have no extension
    shutil.copy(dicom_testfile("CT_small.dcm"), plain)
    assert detect_format(plain).name == "DICOM"
    assert read_image(plain).modality == "CT"


def test_png_renamed_dcm_is_refused_with_a_clear_message(tmp_path):
    png = write_png(np.zeros((4, 4), np.uint8), tmp_path / "x.png")
    fake = tmp_path / "scan.dcm"
    png.rename(fake)
    with pytest.raises(InvalidImageError, match="extension says DICOM but the content is raster"):
        read_image(fake)


def test_dicom_renamed_nii_is_refused(dicom_testfile, tmp_path):
    fake = tmp_path / "brain.nii.gz"
    shutil.copy(dicom_testfile("MR_small.dcm"), fake)
    with pytest.raises(InvalidImageError, match="extension says NIfTI but the content is DICOM"):
        read_image(fake)


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("empty.dcm", b"", InvalidImageError, "empty"),
        (
            "noise.bin",
            bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
            UnsupportedFormatError,
            "unknown",
        ),
        ("noise.dcm", b"\x00" * 2000, UnsupportedFormatError, "extension says DICOM"),
        ("text.nii.gz", b"\x1f\x8bnot really gzip", UnsupportedFormatError, "unknown"),
    ],
)
def test_unusable_files(tmp_path, name, content, error, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error, match=message):
        read_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidImageError, match="no such file"):
        read_image(tmp_path / "absent.dcm")


def test_reading_never_modifies_the_input(dicom_testfile, shared_datasets, tmp_path):
    sources = [
        dicom_testfile("RG1_J2KR.dcm"),
        dicom_testfile("MR_small_RLE.dcm"),
        shared_datasets / "hippocampus_msd" / "imagesTr" / "hippocampus_190.nii.gz",
    ]
    for source in sources:
        copy = tmp_path / source.name
        shutil.copy2(source, copy)
        os.chmod(copy, 0o444)  # read-only: writing would fail
        before = (copy.read_bytes(), copy.stat().st_mtime_ns)
        read_image(copy)
        assert (copy.read_bytes(), copy.stat().st_mtime_ns) == before


def test_label_kind(tmp_path):
    np.save(tmp_path / "mask.npy", np.array([[0.0, 1.0], [2.0, 1.0]], dtype=np.float32))
    labels = read_image(tmp_path / "mask.npy", kind="label")
    assert labels.kind == "label" and labels.array.dtype == np.uint8
    np.save(tmp_path / "soft.npy", np.array([[0.0, 0.5]], dtype=np.float32))
    with pytest.raises(InvalidImageError, match="non-integer"):
        read_image(tmp_path / "soft.npy", kind="label")


def test_write_image_refuses_unknown_extensions(tmp_path):
    image = Image(array=np.zeros((2, 2), np.uint8), spacing=(1.0, 1.0))
    with pytest.raises(ConfigError, match=r"\.jpg"):
        write_image(image, tmp_path / "x.jpg")


def test_writes_are_atomic(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    def crash(self, fp, *args, **kwargs):
        with open(fp, "wb") as handle:
            handle.write(b"half a png")
        raise OSError("disk full")

    target = tmp_path / "out.png"
    target.write_bytes(b"previous")
    monkeypatch.setattr(PILImage.Image, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        write_image(Image(array=np.zeros((2, 2), np.uint8), spacing=(1.0, 1.0)), target)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp file left
