from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medlens.errors import ExportError, ModelError
from medlens.export import Tolerance
from medlens.export.run import deployed_onnx, export_run
from medlens.inference import Predictor
from medlens.io import read_image

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_run: Path) -> Path:
    """A copy of the tiny run with a verified fp32 export (read-only for the tests)."""
    # same depth below the pytest base folder as tiny_run: its manifest's relative paths hold
    run = Path(shutil.copytree(tiny_run, tmp_path_factory.mktemp("exported") / "run"))
    export_run(run)
    return run


def test_fp32_export_writes_verified_record(exported: Path) -> None:
    run_copy = exported
    record = json.loads((run_copy / "export.json").read_text())
    assert record["model"]["file"] == "model.onnx"
    assert record["source_sha256"] == json.loads((run_copy / "model.json").read_text())["sha256"]
    fp32 = record["verification"]["fp32"]
    assert fp32["passed"] and fp32["max_abs_diff"] < 1e-4 and fp32["n_images"] == 64
    assert record["preprocessing"]["spatial_size"] == [16, 16]
    assert record["input"]["shape"] == ["batch", 1, 16, 16]
    assert not [p for p in run_copy.iterdir() if p.name.startswith(".")]  # no staging left
    assert deployed_onnx(run_copy) == run_copy / "model.onnx"


def test_int8_export_is_deployed_and_keeps_auc(run_copy: Path) -> None:
    result = export_run(run_copy, quantize="int8")

    assert result.model.name == "model.int8.onnx"
    int8 = result.verifications["int8"]
    assert int8["passed"] and int8["label_agreement"] >= 0.97
    assert int8["auc_change"] is not None and abs(int8["auc_change"]) <= 0.005
    train_rows = (run_copy / "manifest.csv").read_text().count(",train")
    assert result.record["data"]["calibration_images"] == train_rows > 50
    assert result.model.stat().st_size < (run_copy / "model.onnx").stat().st_size


def test_impossible_tolerance_refuses_and_writes_nothing(run_copy: Path) -> None:
    before = sorted(p.name for p in run_copy.iterdir())
    with pytest.raises(ExportError, match="export refused.*logit difference"):
        export_run(run_copy, tolerance=Tolerance(max_abs_diff=0.0))
    assert sorted(p.name for p in run_copy.iterdir()) == before


def test_without_export_auto_is_torch_and_onnx_is_refused(tiny_run: Path) -> None:
    assert Predictor.from_run(tiny_run).engine == "torch"
    with pytest.raises(ModelError, match="medlens export"):
        Predictor.from_run(tiny_run, engine="onnx")


def test_predictor_onnx_matches_torch(exported: Path, blob_manifest: Path) -> None:
    images = [read_image(p) for p in sorted((blob_manifest.parent / "img").glob("1*.png"))[:8]]
    by_torch = Predictor.from_run(exported, engine="torch").predict(images)
    auto = Predictor.from_run(exported)
    assert auto.engine == "onnx"
    by_onnx = auto.predict(images)
    assert [p.engine for p in by_onnx] == ["onnx"] * 8
    assert [p.label for p in by_onnx] == [p.label for p in by_torch]
    for a, b in zip(by_onnx, by_torch, strict=True):
        np.testing.assert_allclose(
            list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5
        )


def test_tampered_onnx_is_not_used(exported: Path, tmp_path: Path) -> None:
    run_copy = Path(shutil.copytree(exported, tmp_path / "run"))
    with open(run_copy / "model.onnx", "ab") as stream:
        stream.write(b"\0")
    assert deployed_onnx(run_copy) is None
    assert Predictor.from_run(run_copy).engine == "torch"


def test_unknown_quantization_is_refused(run_copy: Path) -> None:
    with pytest.raises(ExportError, match="unknown quantization"):
        export_run(run_copy, quantize="fp16")  # type: ignore[arg-type]


def test_export_record_pointing_outside_the_run_is_refused(exported: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(exported, tmp_path / "run"))
    record = json.loads((run / "export.json").read_text())
    record["model"]["file"] = "../model.onnx"
    (run / "export.json").write_text(json.dumps(record))
    with pytest.raises(ModelError, match="not a medlens export record"):
        deployed_onnx(run)
