"""Window presets, parsing, the file's own window / VOI LUT, percentile windows."""

from __future__ import annotations

import numpy as np
import pytest

from medlens import read_image
from medlens.errors import ConfigError
from medlens.io import Image
from medlens.transforms.intensity import (
    WINDOW_PRESETS,
    Window,
    apply_window,
    auto_window,
    display_array,
    parse_window,
    percentile_window,
)


def test_apply_window_maps_edges_and_clips():
    hu = np.array([-2000, -1350, -600, 150, 3000], dtype=np.float32)
    out = apply_window(hu, *WINDOW_PRESETS["lung"])  # centre -600, width 1500
    np.testing.assert_allclose(out, [0, 0, 0.5, 1, 1])
    assert out.dtype == np.float32
    with pytest.raises(ConfigError):
        apply_window(hu, 0, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lung", Window(-600, 1500)),
        ("BONE", WINDOW_PRESETS["bone"]),
        ("40,80", Window(40, 80)),
        ("-600, 1500", Window(-600, 1500)),
        ("auto", None),
    ],
)
def test_parse_window(text, expected):
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["lungs", "1,2,3", "40,-5", ""])
def test_parse_window_rejects_nonsense(text):
    with pytest.raises(ConfigError):
        parse_window(text)


def test_auto_window_prefers_the_files_window(dicom_testfile):
    mr = read_image(dicom_testfile("MR_small.dcm"))
    assert auto_window(mr) == Window(600, 1600)
    ct = read_image(dicom_testfile("CT_small.dcm"))  # no window in the file
    window = auto_window(ct)
    low, high = np.percentile(ct.array, [0.5, 99.5])
    assert window.center == pytest.approx((low + high) / 2)
    assert window.width == pytest.approx(high - low)


def test_display_uses_the_voi_lut_when_there_is_no_window(dicom_testfile):
    import pydicom
    from pydicom.pixels import apply_voi

    path = dicom_testfile("vlut_04.dcm")
    ds = pydicom.dcmread(path)
    expected = apply_voi(ds.pixel_array, ds) / (2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    np.testing.assert_allclose(display_array(read_image(path)), expected, atol=1e-6)


def test_monochrome1_displays_like_a_viewer(dicom_testfile):
    """The inverted CR with its mirrored window shows bone bright, as viewers show it."""
    import pydicom
    from pydicom.pixels import apply_voi_lut

    path = dicom_testfile("RG1_UNCR.dcm")
    ds = pydicom.dcmread(path)
    viewer = -apply_voi_lut(ds.pixel_array, ds).astype(np.float64)  # MONOCHROME1: low is white
    mine = display_array(read_image(path))
    assert np.corrcoef(viewer.ravel()[::97], mine.ravel()[::97])[0, 1] > 0.99


def test_percentile_window_ignores_non_finite_and_constant():
    assert percentile_window(np.full((4, 4), 7.0)) == Window(7.5, 1.0)
    window = percentile_window(np.array([0.0, 10.0, np.nan]), 0, 100)
    assert window == Window(5.0, 10.0)


def test_display_scales_colour_by_dtype():
    rgb = Image(array=np.full((2, 2, 3), 255, np.uint8), spacing=(1.0, 1.0))
    assert display_array(rgb).max() == 1.0
