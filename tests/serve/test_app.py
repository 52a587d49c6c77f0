"""In-process API tests: every route, the answers' values, and the audit rows they leave."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from medlens.serve import AuditStore


def audit_rows(client) -> list:
    return client.app.state.service.audit.read()


def decode_png(text: str) -> PILImage.Image:
    return PILImage.open(io.BytesIO(base64.b64decode(text)))


def test_health_ready_and_model_card(client, run_dir: Path) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    card = json.loads((run_dir / "model.json").read_text())
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model_version"] == card["sha256"][:12]
    model = client.get("/v1/model").json()
    assert model["classes"] == ["NORMAL", "PNEUMONIA"]
    assert model["threshold"] == pytest.approx(card["threshold"])
    assert model["weights_sha256"] == card["sha256"]
    assert model["intended_use"] is None  # train_run does not state one
    assert model["card"]["create_model"]["name"] == "simple_cnn"


def test_predict_png_matches_the_python_api(client, run_dir: Path, tmp_path: Path, make_png):
    from medlens import read_image
    from medlens.inference import Predictor

    data = make_png(seed=3)
    response = client.post("/v1/predict", files={"file": ("a.png", data, "image/png")})
    assert response.status_code == 200
    body = response.json()
    (tmp_path / "a.png").write_bytes(data)
    expected = Predictor.from_run(run_dir).predict([read_image(tmp_path / "a.png")])[0]
    assert body["label"] == expected.label
    for name, p in expected.probabilities.items():
        assert body["probabilities"][name] == pytest.approx(p, abs=1e-6)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert body["input_sha256"] == hashlib.sha256(data).hexdigest()
    assert body["image"] == {"modality": "OT", "shape": [224, 224]}
    assert body["engine"] == "torch" and body["threshold"] == pytest.approx(expected.threshold)
    assert body["preview_png"] is None and body["heatmap_png"] is None
    assert response.headers["x-request-id"] == body["request_id"]
    (row,) = audit_rows(client)
    assert (row.request_id, row.status_code, row.label) == (body["request_id"], 200, body["label"])
    assert row.input_sha256 == body["input_sha256"] and row.item is None
    assert row.probability == pytest.approx(body["probabilities"][body["label"]])
    assert row.model_version == body["model_version"] and row.engine == "torch"


def test_predict_dicom_with_preview_and_heatmap(client, ct_dicom: Path) -> None:
    files = {"file": ("ct.dcm", ct_dicom.read_bytes(), "application/dicom")}
    body = client.post("/v1/predict?heatmap=true&preview=true", files=files).json()
    assert body["image"]["modality"] == "CT"
    preview, heatmap = decode_png(body["preview_png"]), decode_png(body["heatmap_png"])
    assert preview.size == heatmap.size == (128, 128)
    assert heatmap.mode == "RGBA"


def test_heatmap_has_the_preview_geometry(client, make_png) -> None:
    files = {"file": ("s.png", make_png(size=300, seed=5), "image/png")}
    body = client.post("/v1/predict?heatmap=true", files=files).json()
    assert body["preview_png"] is None  # not asked for; the heatmap still fits it
    heatmap = decode_png(body["heatmap_png"])
    assert heatmap.size == (300, 300) and heatmap.mode == "RGBA"


def test_preview_window_presets_change_a_ct_preview(client, ct_dicom: Path) -> None:
    files = {"file": ("ct.dcm", ct_dicom.read_bytes(), "application/dicom")}
    lung = client.post("/v1/preview?window=lung", files=files)
    bone = client.post("/v1/preview?window=bone", files=files)
    assert lung.status_code == bone.status_code == 200
    assert lung.headers["content-type"] == "image/png"
    a = np.asarray(PILImage.open(io.BytesIO(lung.content)), dtype=float)
    b = np.asarray(PILImage.open(io.BytesIO(bone.content)), dtype=float)
    assert a.shape == b.shape == (128, 128)
    assert a.mean() > b.mean()  # soft tissue is bright in a lung window, dark in a bone one
    bad = client.post("/v1/preview?window=nonsense", files=files)
    assert bad.status_code == 422 and bad.json()["error"] == "cannot_process"


def test_predict_real_chest_xray(client, xray_jpeg: Path) -> None:
    files = {"file": (xray_jpeg.name, xray_jpeg.read_bytes(), "image/jpeg")}
    body = client.post("/v1/predict?preview=true", files=files).json()
    assert body["label"] in ("NORMAL", "PNEUMONIA")
    assert decode_png(body["preview_png"]).size == (224, 224)
    # the file name carries a patient id: it must not come back or reach the audit log
    assert xray_jpeg.stem not in json.dumps(body)
    assert xray_jpeg.stem.split("_")[0] not in repr(audit_rows(client))


def test_batch(client, ct_dicom: Path, png: bytes) -> None:
    files = [
        ("files", ("a.png", png, "image/png")),
        ("files", ("b.dcm", ct_dicom.read_bytes(), "application/dicom")),
    ]
    body = client.post("/v1/predict/batch", files=files).json()
    assert [r["index"] for r in body["results"]] == [0, 1]
    assert [r["image"]["modality"] for r in body["results"]] == ["OT", "CT"]
    rows = audit_rows(client)
    assert [r.item for r in rows] == [0, 1]
    assert {r.request_id for r in rows} == {body["request_id"]}
    assert rows[1].input_sha256 == hashlib.sha256(ct_dicom.read_bytes()).hexdigest()


def test_batch_limit(make_client, png: bytes) -> None:
    client = make_client(max_batch_files=2)
    files = [("files", (f"{i}.png", png, "image/png")) for i in range(3)]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 413 and response.json()["error"] == "too_many_files"
    (row,) = audit_rows(client)
    assert (row.status_code, row.reason, row.item) == (413, "too_many_files", None)


def test_page_docs_and_static(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert 'src="/static/app.js"' in page.text and "http" not in page.text.split("<body")[0]
    assert client.get("/static/app.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/v1/predict", "/v1/predict/batch", "/v1/preview", "/v1/model", "/readyz"):
        assert route in paths


def test_docs_need_no_other_host(client) -> None:
    """Swagger UI's JS, CSS and icon come from the app itself: /docs works offline."""
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "http://" not in docs.text and "https://" not in docs.text
    assert '"validatorUrl": null' in docs.text  # no badge fetched from swagger.io
    csp = docs.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert len(assets) == 3 and all(a.startswith("/docs/static/") for a in assets), assets
    types = {client.get(a).headers["content-type"].split(";")[0] for a in assets}
    assert types == {"text/javascript", "text/css", "image/png"}
    assert "SwaggerUIBundle" in client.get(next(a for a in assets if a.endswith(".js"))).text
    assert client.get("/openapi.json").status_code == 200


def test_metrics(client, png: bytes) -> None:
    client.post("/v1/predict", files={"file": ("jane_doe_1234.png", png, "image/png")})
    client.post("/v1/predict", files={"file": ("x.txt", b"hello", "text/plain")})
    text = client.get("/metrics").text
    assert 'medlens_requests_total{route="/v1/predict",status="200"} 1.0' in text
    assert 'medlens_requests_total{route="/v1/predict",status="415"} 1.0' in text
    assert 'medlens_rejected_requests_total{reason="unsupported_media_type"} 1.0' in text
    assert 'medlens_inference_latency_seconds_count{engine="torch"} 1.0' in text
    assert "medlens_model_info{" in text and 'engine="torch"' in text
    assert "medlens_ready 1.0" in text and "medlens_requests_in_flight" in text
    assert "jane" not in text.lower()


def test_auth(make_client, png: bytes, token: str) -> None:
    client = make_client(api_token=token)
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 200
    assert client.get("/v1/model").status_code == 401
    assert client.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    files = {"file": ("a.png", png, "image/png")}
    refused = client.post("/v1/predict", files=files, headers=wrong)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    good = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/model", headers=good).status_code == 200
    assert client.post("/v1/predict", files=files, headers=good).status_code == 200
    rows = audit_rows(client)
    assert [(r.status_code, r.reason) for r in rows] == [(401, "unauthorized"), (200, None)]


def test_not_ready_when_weights_do_not_match(make_client, run_dir: Path, tmp_path: Path, png):
    import shutil

    bad_run = tmp_path / "tampered"
    shutil.copytree(run_dir, bad_run)
    (bad_run / "model.safetensors").write_bytes(b"0" * 64)
    client = make_client(run_dir=bad_run)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["detail"] == "model failed to load"
    response = client.post("/v1/predict", files={"file": ("a.png", png, "image/png")})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert client.get("/v1/model").status_code == 503
    assert [(r.status_code, r.reason) for r in audit_rows(client)] == [(503, "not_ready")]


def renamed_pickle_run(run_dir: Path, folder: Path) -> Path:
    """A copy of ``run_dir`` whose model.safetensors is a pickle, its hash in model.json."""
    import json
    import shutil

    import torch

    from medlens.serve.model import sha256_file

    bad = folder / "pickled"
    shutil.copytree(run_dir, bad)
    torch.save({"w": torch.zeros(2)}, bad / "model.safetensors")
    card = json.loads((bad / "model.json").read_text())
    card["sha256"] = sha256_file(bad / "model.safetensors")
    (bad / "model.json").write_text(json.dumps(card))
    return bad


def test_failed_when_the_weights_are_a_renamed_pickle(make_client, run_dir: Path, tmp_path):
    client = make_client(run_dir=renamed_pickle_run(run_dir, tmp_path))
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["detail"] == "model failed to load"
    assert "not a safetensors file" in client.app.state.service.model.error


def test_failed_when_the_loader_raises_anything(make_client) -> None:
    """Not only medlens errors: a loader's own exception still ends in 'failed'."""

    class Broken:
        card: dict = {}

        def __getattr__(self, name: str):
            raise KeyError(name)

    client = make_client(predictor=Broken())
    model = client.app.state.service.model
    assert model.failed and not model.ready and "KeyError" in model.error
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["detail"] == "model failed to load"


def test_audit_database_is_durable(client, make_settings) -> None:
    engine = client.app.state.service.audit.engine
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    url = make_settings().audit_url
    assert isinstance(AuditStore(url).read(), list)
