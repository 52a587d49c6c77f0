"""DICOM SEG for a label map on a real CT series: readable, aligned frame by frame."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from medlens.errors import InvalidImageError
from medlens.io import read_image

hd = pytest.importorskip("highdicom")

from medlens.pipeline.segmentation import _inputs  # noqa: E402
from medlens.segmentation.dicom_seg import write_dicom_seg  # noqa: E402


@pytest.fixture(scope="module")
def ct_series(shared_datasets):
    return shared_datasets / "totalsegmentator_example" / "example_ct_dicom"


def test_dicom_seg_frames_match_the_series(ct_series, tmp_path) -> None:
    volume = read_image(ct_series)
    labels = np.where(volume.array > 300, 2, 0).astype(np.uint8)  # bone, as label value 2
    labels[:, :40, :40] = 1  # a corner block as a second class
    path = write_dicom_seg(
        labels,
        ct_series,
        tmp_path / "ct_seg.dcm",
        class_names=["background", "corner", "bone"],
        label_values=[0, 1, 2],
    )
    seg = hd.seg.segread(path)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["corner", "bone"]
    source_uid = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
    assert source_uid == pydicom.dcmread(next(ct_series.iterdir())).SeriesInstanceUID
    # every frame lies on a slice of medlens's volume and holds that slice's mask
    lps = volume.affine.copy()
    lps[:2] *= -1  # RAS+ affine back to DICOM's LPS
    slice_positions = np.array([lps[:3] @ [i, 0, 0, 1] for i in range(len(labels))])
    pixels = seg.pixel_array
    assert len(seg.PerFrameFunctionalGroupsSequence) == 2 * len(labels)
    for frame, group in zip(pixels, seg.PerFrameFunctionalGroupsSequence, strict=True):
        position = np.asarray(group.PlanePositionSequence[0].ImagePositionPatient, float)
        index = int(np.argmin(np.linalg.norm(slice_positions - position, axis=1)))
        np.testing.assert_allclose(slice_positions[index], position, atol=1e-3)
        number = group.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        np.testing.assert_array_equal(frame, labels[index] == number)


def test_dicom_seg_refuses_a_wrong_shape(ct_series, tmp_path) -> None:
    with pytest.raises(InvalidImageError, match="does not match the series"):
        write_dicom_seg(
            np.zeros((3, 4, 5), np.uint8),
            ct_series,
            tmp_path / "x.dcm",
            class_names=["background", "a"],
            label_values=[0, 1],
        )


def test_a_dicom_folder_is_one_series_input(ct_series, tmp_path) -> None:
    (tmp_path / "a.nii.gz").write_bytes(b"")
    found = list(_inputs([ct_series, tmp_path]))
    assert found[0] == (ct_series, True)
    assert found[1:] == [(tmp_path / "a.nii.gz", False)]
