"""With a verified ONNX export in the run, the service runs ONNX Runtime (the Predictor's
choice), answers like PyTorch within tolerance, and still draws Grad-CAM from the weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported_run(run_dir: Path) -> Path:
    from medlens.export.run import export_run

    copy = run_dir.parent / "exported"  # beside the run: its manifest's relative paths hold
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("*.sqlite*"))
    export_run(copy, max_verify=16)
    return copy


@pytest.mark.slow
def test_onnx_engine_matches_torch(make_client, exported_run: Path, run_dir: Path, png) -> None:
    onnx = make_client(run_dir=exported_run)
    torch = make_client(run_dir=run_dir)
    files = {"file": ("a.png", png, "image/png")}
    a = onnx.post("/v1/predict?heatmap=true", files=files).json()
    b = torch.post("/v1/predict", files=files).json()
    assert (a["engine"], b["engine"]) == ("onnx", "torch")
    assert onnx.get("/v1/model").json()["engine"] == "onnx"
    for name, p in b["probabilities"].items():
        assert a["probabilities"][name] == pytest.approx(p, abs=1e-3)
    assert a["heatmap_png"]
    assert 'engine="onnx"' in onnx.get("/metrics").text
