from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from medlens.errors import ExportError
from medlens.export import (
    OnnxModel,
    Tolerance,
    export_onnx,
    quantize_dynamic_int8,
    quantize_static_int8,
    verify,
)

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def fp32_path(tmp_path_factory: pytest.TempPathFactory, trained_tiny: nn.Module) -> Path:
    out = tmp_path_factory.mktemp("fp32") / "model.onnx"
    return export_onnx(trained_tiny, torch.zeros(2, 1, 16, 16), out)


def test_static_int8_keeps_labels_and_auc(
    tmp_path: Path, fp32_path: Path, trained_tiny: nn.Module, make_blobs
) -> None:
    calibration, _ = make_blobs(64, seed=1)
    held_out, labels = make_blobs(96, seed=2)
    out = quantize_static_int8(fp32_path, tmp_path / "int8.onnx", calibration.split(16))

    proto = onnx.load(str(out))
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in proto.graph.node}
    scales = {t.name: list(t.dims) for t in proto.graph.initializer}
    assert scales["features.3.weight_scale"] == [16]  # one scale per output channel
    assert proto.graph.output[0].name == "logits"
    result = verify(
        trained_tiny, OnnxModel(out), held_out.split(32), precision="int8", labels=labels.numpy()
    )
    assert result.passed, result.failures
    assert result.label_agreement >= 0.97
    assert result.auc_reference is not None and result.auc_reference > 0.95
    assert abs(result.auc_change) <= 0.005
    assert out.stat().st_size < fp32_path.stat().st_size


def test_static_int8_needs_calibration_images(tmp_path: Path, fp32_path: Path) -> None:
    with pytest.raises(ExportError, match="no calibration images"):
        quantize_static_int8(fp32_path, tmp_path / "int8.onnx", [])
    assert not (tmp_path / "int8.onnx").exists()


def test_dynamic_int8_runs(tmp_path: Path, fp32_path: Path, trained_tiny: nn.Module, blobs) -> None:
    out = quantize_dynamic_int8(fp32_path, tmp_path / "dyn.onnx")
    images, labels = blobs
    result = verify(trained_tiny, OnnxModel(out), [images], precision="int8", labels=labels.numpy())
    assert result.passed, result.failures


def test_impossible_tolerance_fails_verification(
    fp32_path: Path, trained_tiny: nn.Module, blobs
) -> None:
    images, _ = blobs
    result = verify(
        trained_tiny,
        OnnxModel(fp32_path),
        [images],
        precision="fp32",
        tolerance=Tolerance(max_abs_diff=0.0),
    )
    assert not result.passed
    assert "logit difference" in result.failures[0]
