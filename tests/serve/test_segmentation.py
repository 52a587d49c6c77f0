"""The service on a segmentation run: JSON result, overlay, label map downloads, audit."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from medlens.errors import ImageTooLargeError, InvalidImageError
from medlens.serve import segment, uploads

RED = (0xE6, 0x19, 0x4B)  # the first class's colour


def decode(text: str) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(base64.b64decode(text))))


def png_file(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def series_zip(ct: Path, slices: int = 4, member: str = "DOE^JOHN/slice{k}.dcm") -> bytes:
    """A zip of a real CT slice repeated as a series (new UIDs, 5 mm apart)."""
    import pydicom
    from pydicom.uid import generate_uid

    first, series, buffer = pydicom.dcmread(ct), generate_uid(), io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for k in range(slices):
            ds = copy.deepcopy(first)
            ds.SeriesInstanceUID, ds.SOPInstanceUID = series, generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceNumber = k + 1
            position = [float(v) for v in first.ImagePositionPatient]
            ds.ImagePositionPatient = [*position[:2], position[2] + 5.0 * k]
            data = io.BytesIO()
            ds.save_as(data)
            archive.writestr(member.format(k=k), data.getvalue())
    return buffer.getvalue()


@pytest.fixture
def seg_client(make_client: Callable[..., object], seg_run_2d: Path):
    return make_client(run_dir=seg_run_2d)


@pytest.fixture
def seg3d_client(make_client: Callable[..., object], seg_run_3d: Path):
    # a 512x512x20 CT by sliding window takes seconds; on a loaded CI machine it took over 30
    return make_client(run_dir=seg_run_3d, inference_timeout_s=300)


# --- without a model --------------------------------------------------------------------


def test_largest_slice_and_overlay_colours() -> None:
    labels = np.zeros((5, 8, 8), np.uint8)
    labels[3, 2:6, 2:6], labels[1, 0, 0] = 2, 1
    assert segment.largest_slice(labels) == 3
    assert segment.largest_slice(np.zeros((5, 2, 2), np.uint8)) == 2  # none: the middle one
    rgba = np.asarray(
        PILImage.open(io.BytesIO(segment.render_overlay(labels[3], (16, 16), [1, 2])))
    )
    assert rgba.shape == (16, 16, 4)
    assert (rgba[4:12, 4:12, 3] == 255).all() and (rgba[:4, :, 3] == 0).all()
    assert tuple(rgba[8, 8, :3]) == (0x3C, 0xB4, 0x4B)  # the second class's colour


def test_zip_is_unpacked_under_the_limits(tmp_path: Path, monkeypatch) -> None:
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("../../evil/NAME^PATIENT.dcm", b"\0" * 5000)
        z.writestr("dir/", b"")
    folder = uploads.unpack_series(archive, tmp_path / "a", max_bytes=10_000)
    assert [p.name for p in folder.iterdir()] == ["00000.dcm"]  # names never used
    assert not (tmp_path.parent / "evil").exists()
    with pytest.raises(ImageTooLargeError, match="upload limit"):  # counted, not declared
        uploads.unpack_series(archive, tmp_path / "b", max_bytes=4000)
    monkeypatch.setattr(uploads, "MAX_MEMBERS", 0)
    with pytest.raises(ImageTooLargeError, match="more than 0 files"):
        uploads.unpack_series(archive, tmp_path / "c", max_bytes=10_000)
    archive.write_bytes(b"PK not really")
    with pytest.raises(InvalidImageError, match="not a readable zip"):
        uploads.unpack_series(archive, tmp_path / "d", max_bytes=10_000)


# --- a real 2D segmentation run ---------------------------------------------------------


@pytest.mark.slow
def test_model_card_of_a_segmentation_run(seg_client) -> None:
    body = seg_client.get("/v1/model").json()
    assert body["task"] == "segmentation" and body["classes"] == ["background", "disk"]
    plan = body["segmentation"]
    assert plan["spatial_dims"] == 2 and plan["label_values"] == [0, 255]
    assert plan["volume_unit"] == "mm2" and len(plan["patch_size"]) == 2


@pytest.mark.slow
def test_predict_finds_the_disk_and_draws_it(seg_client, make_disk) -> None:
    image, disk = make_disk(np.random.default_rng(7))
    files = {"file": ("upload.png", png_file(image), "image/png")}
    response = seg_client.post("/v1/predict?preview=true", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "segmentation" and body["engine"] == "torch"
    assert body["classes_found"] == ["disk"] and body["label"] == "disk"
    assert body["volume_unit"] == "mm2" and body["slice_index"] is None
    assert body["volumes"]["disk"] == pytest.approx(disk.sum(), rel=0.35)  # 1 mm pixels
    assert body["colours"] == {"disk": "#e6194b"}
    preview, overlay = decode(body["preview_png"]), decode(body["overlay_png"])
    assert overlay.shape == (*preview.shape[:2], 4) == (48, 48, 4)
    drawn = overlay[..., 3] == 255
    assert (overlay[drawn][:, :3] == RED).all() and (overlay[~drawn][:, 3] == 0).all()
    assert (drawn & disk).sum() / (drawn | disk).sum() > 0.6  # coloured where the disk is


@pytest.mark.slow
def test_metrics_and_audit_row_of_a_segmentation(seg_client, make_disk) -> None:
    image, _ = make_disk(np.random.default_rng(8))
    data = png_file(image)
    before = seg_client.get("/metrics").text
    response = seg_client.post("/v1/predict", files={"file": ("upload.png", data, "image/png")})
    assert response.status_code == 200 and response.json()["preview_png"] is None
    after = seg_client.get("/metrics").text
    ok = 'medlens_requests_total{route="/v1/predict",status="200"}'
    latency = 'medlens_inference_latency_seconds_count{engine="torch"}'
    for line in (ok, latency):
        assert _value(after, line) == _value(before, line) + 1
    rows = seg_client.app.state.service.audit.read()
    row = rows[-1]
    assert row.route == "/v1/predict" and row.status_code == 200
    assert row.label == "disk" and row.probability is None and row.engine == "torch"
    assert row.input_sha256 == hashlib.sha256(data).hexdigest()


def _value(text: str, line: str) -> float:
    found = [float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)]
    return found[0] if found else 0.0


@pytest.mark.slow
def test_dicom_seg_of_a_dicom_file_and_refusals(seg_client, ct_dicom: Path, png: bytes) -> None:
    import pydicom

    files = {"file": ("upload.dcm", ct_dicom.read_bytes(), "application/dicom")}
    response = seg_client.post("/v1/predict?format=dicom-seg", files=files)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom"
    assert response.headers["content-disposition"] == 'attachment; filename="segmentation.dcm"'
    seg = pydicom.dcmread(io.BytesIO(response.content))
    source = pydicom.dcmread(ct_dicom)
    assert seg.Modality == "SEG" and seg.SegmentSequence[0].SegmentLabel == "disk"
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == source.SeriesInstanceUID
    assert (seg.Rows, seg.Columns) == (source.Rows, source.Columns)

    not_dicom = {"file": ("upload.png", png, "image/png")}
    refused = seg_client.post("/v1/predict?format=dicom-seg", files=not_dicom)
    assert refused.status_code == 422 and "needs a DICOM upload" in refused.json()["detail"]
    heatmap = seg_client.post("/v1/predict?heatmap=true", files=not_dicom)
    assert heatmap.status_code == 400 and heatmap.json()["error"] == "not_available"
    assert "not available for segmentation" in heatmap.json()["detail"]
    batch = seg_client.post("/v1/predict/batch", files=[("files", not_dicom["file"])])
    assert batch.status_code == 400 and "segmentation" in batch.json()["detail"]


def test_classifier_refuses_label_map_formats(client, png: bytes) -> None:
    files = {"file": ("upload.png", png, "image/png")}
    response = client.post("/v1/predict?format=nifti", files=files)
    assert response.status_code == 400 and "segmentation models" in response.json()["detail"]


# --- a real 3D segmentation run ---------------------------------------------------------


@pytest.mark.slow
def test_nifti_download_keeps_the_input_geometry(seg3d_client, seg_run_3d: Path) -> None:
    import nibabel as nib

    source = sorted((seg_run_3d.parent / "Task00_Blobs" / "imagesTr").glob("*.nii.gz"))[0]
    files = {"file": ("upload.nii.gz", source.read_bytes(), "application/gzip")}
    body = seg3d_client.post("/v1/predict?preview=true", files=files).json()
    assert body["volume_unit"] == "mm3" and 0 <= body["slice_index"] < 20
    assert decode(body["overlay_png"]).shape[:2] == decode(body["preview_png"]).shape[:2]
    response = seg3d_client.post("/v1/predict?format=nifti", files=files)
    assert response.status_code == 200 and response.headers["content-type"] == "application/gzip"
    written = nib.Nifti1Image.from_bytes(gzip.decompress(response.content))
    original = nib.load(source)
    assert written.shape == original.shape
    np.testing.assert_allclose(written.affine, original.affine, atol=1e-5)
    assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1, 2}  # the blobs' label values
    shown = seg3d_client.post(f"/v1/preview?slice={body['slice_index']}", files=files)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    beyond = seg3d_client.post("/v1/preview?slice=999", files=files)
    assert beyond.status_code == 422


@pytest.mark.slow
def test_dicom_seg_of_a_zipped_series(seg3d_client, ct_dicom: Path) -> None:
    import pydicom

    files = {"file": ("upload.zip", series_zip(ct_dicom), "application/zip")}
    body = seg3d_client.post("/v1/predict", files=files).json()
    assert body["image"] == {"modality": "CT", "shape": [4, 128, 128]}
    assert body["spacing"][0] == pytest.approx(5.0)
    response = seg3d_client.post("/v1/predict?format=dicom-seg", files=files)
    assert response.status_code == 200, response.text
    seg = pydicom.dcmread(io.BytesIO(response.content))
    segments = len(seg.SegmentSequence)
    assert seg.Modality == "SEG" and int(seg.NumberOfFrames) == 4 * segments  # every slice
    rows = seg3d_client.app.state.service.audit.read()
    assert "DOE" not in repr(rows) and "DOE" not in seg3d_client.get("/metrics").text


@pytest.mark.slow
def test_real_ct_series_zip(seg3d_client, shared_datasets: Path) -> None:
    folder = shared_datasets / "totalsegmentator_example" / "example_ct_dicom"
    if not folder.is_dir():
        pytest.skip("the TotalSegmentator example CT series is not there")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    files = {"file": ("upload.zip", buffer.getvalue(), "application/zip")}
    response = seg3d_client.post("/v1/predict?format=nifti", files=files)
    assert response.status_code == 200, response.text
    import nibabel as nib

    written = nib.Nifti1Image.from_bytes(gzip.decompress(response.content))
    assert written.shape == (512, 512, 20)
