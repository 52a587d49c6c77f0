"""Bad input and load: size limit, content types, hostile files, saturation, timeouts."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest

ERROR_KEYS = {"error", "detail", "request_id"}


def check_error(response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS and body["error"] == reason
    assert "/tmp" not in body["detail"] and "Traceback" not in body["detail"]
    assert response.headers["x-request-id"] == body["request_id"]


def last_row(client):
    return client.app.state.service.audit.read()[-1]


def multipart(name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = "medlens-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


@pytest.mark.parametrize(
    ("name", "data", "content_type", "status", "reason"),
    [
        ("notes.txt", b"just text", "text/plain", 415, "unsupported_media_type"),
        ("a.gif", b"GIF89a....", "image/gif", 415, "unsupported_media_type"),
        ("x.bin", b"\x00\x01garbage" * 50, "application/octet-stream", 415, "unsupported_format"),
        ("empty.png", b"", "image/png", 422, "invalid_image"),
    ],
)
def test_refused_inputs(client, name, data, content_type, status, reason) -> None:
    response = client.post("/v1/predict", files={"file": (name, data, content_type)})
    check_error(response, status, reason)
    row = last_row(client)
    assert (row.status_code, row.reason, row.label) == (status, reason, None)


def test_truncated_png(client, png: bytes) -> None:
    response = client.post(
        "/v1/predict", files={"file": ("t.png", png[: len(png) // 2], "image/png")}
    )
    assert 400 <= response.status_code < 500
    check_error(response, response.status_code, response.json()["error"])
    assert last_row(client).input_sha256 is not None  # the refusal is traceable to the bytes


def test_hostile_dicom_header(client, tmp_path: Path) -> None:
    """A DICOM that promises 65535 x 65535 pixels and carries 16 bytes."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality, ds.PatientName = "OT", "Doe^Jane"
    ds.Rows = ds.Columns = 65535
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = b"\x00" * 16
    path = tmp_path / "bomb.dcm"
    ds.save_as(path, enforce_file_format=True)
    response = client.post(
        "/v1/predict", files={"file": ("b.dcm", path.read_bytes(), "application/dicom")}
    )
    assert 400 <= response.status_code < 500
    assert "Doe" not in response.text


@pytest.mark.parametrize("defined_length", [False, True], ids=["undefined", "defined"])
def test_deeply_nested_dicom_is_a_4xx(client, nested_dicom, defined_length: bool) -> None:
    data = nested_dicom(20_000, defined_length=defined_length)
    response = client.post("/v1/predict", files={"file": ("n.dcm", data, "application/dicom")})
    check_error(response, 422, "invalid_image")
    assert "nested more than 32 levels" in response.json()["detail"]
    assert last_row(client).reason == "invalid_image"


def test_png_decompression_bomb(client) -> None:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("1", (30000, 30000)).save(buffer, format="PNG")  # ~100 kB, 900 Mpx
    response = client.post("/v1/predict", files={"file": ("b.png", buffer.getvalue(), "image/png")})
    assert response.status_code in (413, 422)


def test_declared_size_over_limit(make_client, png: bytes) -> None:
    client = make_client(max_upload_mb=0.01)
    big = png + b"\x00" * 20_000
    response = client.post("/v1/predict", files={"file": ("a.png", big, "image/png")})
    check_error(response, 413, "too_large")
    assert last_row(client).reason == "too_large"


def test_streamed_size_over_limit(make_client, png: bytes) -> None:
    """Chunked upload without Content-Length: counted while it streams."""
    client = make_client(max_upload_mb=0.01)
    body, boundary = multipart("a.png", png + b"\x00" * 20_000, "image/png")
    chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = client.post("/v1/predict", content=chunks, headers=headers)
    check_error(response, 413, "too_large")


def test_missing_file_field(client) -> None:
    response = client.post("/v1/predict", data={"nothing": "here"})
    check_error(response, 422, "invalid_input")
    assert "file" in response.json()["detail"]


class BlockingPredictor:
    """The real predictor, held at a gate until the test lets it go."""

    def __init__(self, real, release: threading.Event) -> None:
        self.real, self.release, self.entered = real, release, threading.Event()
        self.card, self.engine = real.card, real.engine

    def predict(self, images):
        self.entered.set()
        self.release.wait(30)
        return self.real.predict(images)


@pytest.fixture
def blocking(run_dir: Path):
    from medlens.inference import Predictor

    release = threading.Event()
    yield BlockingPredictor(Predictor.from_run(run_dir), release)
    release.set()


def test_saturated_answers_503_with_retry_after(make_client, blocking, png: bytes) -> None:
    client = make_client(predictor=blocking, max_concurrency=1, queue_size=0)
    files = {"file": ("a.png", png, "image/png")}
    first: dict = {}
    worker = threading.Thread(
        target=lambda: first.update(r=client.post("/v1/predict", files=files))
    )
    worker.start()
    assert blocking.entered.wait(10)
    refused = client.post("/v1/predict", files=files)
    check_error(refused, 503, "saturated")
    assert refused.headers["retry-after"] == "1"
    blocking.release.set()
    worker.join(30)
    assert first["r"].status_code == 200
    assert client.app.state.service.gate.admitted == 0
    reasons = [r.reason for r in client.app.state.service.audit.read()]
    assert sorted(reasons, key=str) == sorted(["saturated", None], key=str)


def test_saturated_answers_without_waiting_for_the_audit_commit(
    make_client, blocking, png: bytes, monkeypatch
) -> None:
    """With the audit database stuck, a saturated request is still answered; its row follows."""
    client = make_client(predictor=blocking, max_concurrency=1, queue_size=0)
    files = {"file": ("a.png", png, "image/png")}
    first: dict = {}
    worker = threading.Thread(
        target=lambda: first.update(r=client.post("/v1/predict", files=files))
    )
    worker.start()
    assert blocking.entered.wait(10)
    store, stuck = client.app.state.service.audit, threading.Event()
    real_write = store.write
    monkeypatch.setattr(store, "write", lambda records: (stuck.wait(30), real_write(records)))
    refused: dict = {}
    second = threading.Thread(
        target=lambda: refused.update(r=client.post("/v1/predict", files=files))
    )
    second.start()
    second.join(10)
    assert not second.is_alive(), "the 503 waited for the audit database"
    check_error(refused["r"], 503, "saturated")
    stuck.set()
    blocking.release.set()
    worker.join(30)
    assert first["r"].status_code == 200
    assert sorted(r.reason or "" for r in store.read()) == ["", "saturated"]


def gauge(client, name: str) -> float:
    line = next(x for x in client.get("/metrics").text.splitlines() if x.startswith(f"{name} "))
    return float(line.split()[1])


def test_queue_and_in_flight_gauges_follow_the_gate(make_client, blocking, png: bytes) -> None:
    client = make_client(predictor=blocking, max_concurrency=1, queue_size=2)
    files = {"file": ("a.png", png, "image/png")}
    workers = [threading.Thread(target=lambda: client.post("/v1/predict", files=files))]
    workers[0].start()
    assert blocking.entered.wait(10)
    assert gauge(client, "medlens_inference_queued") == 0
    workers.append(threading.Thread(target=lambda: client.post("/v1/predict", files=files)))
    workers[1].start()
    for _ in range(200):  # the second request is admitted, then waits for the slot
        if gauge(client, "medlens_inference_queued") == 1:
            break
        threading.Event().wait(0.05)
    assert gauge(client, "medlens_inference_queued") == 1
    assert gauge(client, "medlens_requests_in_flight") == 3  # two uploads and this scrape
    blocking.release.set()
    for worker in workers:
        worker.join(30)
    assert gauge(client, "medlens_inference_queued") == 0
    assert gauge(client, "medlens_requests_in_flight") == 1


def test_timeout_answers_504_and_keeps_the_slot(make_client, blocking, png: bytes) -> None:
    client = make_client(predictor=blocking, max_concurrency=1, inference_timeout_s=0.2)
    response = client.post("/v1/predict", files={"file": ("a.png", png, "image/png")})
    check_error(response, 504, "timeout")
    gate = client.app.state.service.gate
    assert gate.running == 1  # the thread still runs: its slot is not given away
    blocking.release.set()
    for _ in range(200):
        if gate.running == 0:
            break
        threading.Event().wait(0.05)
    assert gate.running == 0
    assert last_row(client).reason == "timeout"


def test_rgb_and_16_bit_inputs(client, tmp_path: Path) -> None:
    from PIL import Image as PILImage

    rgb = io.BytesIO()
    PILImage.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(rgb, format="PNG")
    deep = io.BytesIO()
    PILImage.fromarray(np.arange(40 * 50, dtype=np.uint16).reshape(40, 50)).save(deep, format="PNG")
    for data in (rgb.getvalue(), deep.getvalue()):
        response = client.post(
            "/v1/predict?preview=true", files={"file": ("x.png", data, "image/png")}
        )
        assert response.status_code == 200, response.text


def test_uploads_are_deleted_after_the_request(client, png: bytes, tmp_path: Path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ok = client.post("/v1/predict?heatmap=true", files={"file": ("a.png", png, "image/png")})
    bad = client.post("/v1/predict", files={"file": ("b.png", png[:100], "image/png")})
    assert (ok.status_code, bad.status_code // 100) == (200, 4)
    assert list(tmp_path.glob("medlens-upload-*")) == []
