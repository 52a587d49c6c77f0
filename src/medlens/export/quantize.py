"""Int8 quantization with ONNX Runtime: static QDQ (calibrated) or dynamic.

Static quantization is the one that speeds up CNNs on CPU: activations (uint8) and weights
(int8, one scale per output channel) are both quantized, with activation ranges measured
on real images. Dynamic quantization only needs the model, quantizes weights ahead and
activations on the fly, and helps mostly the matrix multiplications of a classifier head
or a transformer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from medlens.errors import ExportError
from medlens.export.onnx_export import INPUT_NAME, check_onnx

__all__ = ["CalibrationMethod", "quantize_dynamic_int8", "quantize_static_int8"]

CalibrationMethod = Literal["minmax", "entropy", "percentile"]


def quantize_static_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: Iterable[torch.Tensor | np.ndarray],
    *,
    per_channel: bool = True,
    reduce_range: bool = False,
    method: CalibrationMethod = "minmax",
) -> Path:
    """Static int8 QDQ quantization of an fp32 ONNX model, calibrated on image batches.

    Args:
        fp32_path: the model written by :func:`~medlens.export.export_onnx`.
        out_path: the quantized model; written atomically.
        calibration: preprocessed image batches ``(N, C, ...)`` as the model sees them,
            typically a few hundred training images.
        per_channel: one weight scale per output channel (recommended for CNNs).
        reduce_range: 7-bit weights; can help accuracy on CPUs without VNNI.
        method: how activation ranges are chosen from the calibration outputs.

    Raises:
        ExportError: empty calibration data, or ONNX Runtime failed to quantize.
    """
    from onnxruntime import quantization as q

    reader = _BatchReader([_as_array(batch) for batch in calibration])
    if not len(reader):
        raise ExportError(f"{fp32_path}: no calibration images given for int8 quantization")
    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise ExportError(f"unknown calibration method {method!r}: choose {sorted(methods)}")

    def run(prepared: Path, tmp: Path) -> None:
        q.quantize_static(
            prepared,
            tmp,
            reader,
            quant_format=q.QuantFormat.QDQ,
            per_channel=per_channel,
            reduce_range=reduce_range,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=methods[method],
            nodes_to_exclude=_output_nodes(prepared) + _float_nodes(prepared),
            # min/max merged batch by batch: memory for one batch's activations, not all
            extra_options={"CalibStridedMinMax": 1} if method == "minmax" else None,
        )

    return _quantize(fp32_path, out_path, run)


def quantize_dynamic_int8(fp32_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic int8 quantization (weights int8 ahead, activations at run time).

    Only ``MatMul``/``Gemm`` are quantized: ONNX Runtime's CPU kernel for a dynamically
    quantized convolution (``ConvInteger``) is slower than its fp32 convolution.
    """
    from onnxruntime import quantization as q

    def run(prepared: Path, tmp: Path) -> None:
        q.quantize_dynamic(
            prepared,
            tmp,
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=False,
            weight_type=q.QuantType.QInt8,
        )

    return _quantize(fp32_path, out_path, run)


def _quantize(
    fp32_path: str | Path, out_path: str | Path, run: Callable[[Path, Path], None]
) -> Path:
    """Pre-process (shape inference, graph fusions), quantize, check, move into place."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if not fp32_path.is_file():
        raise ExportError(f"{fp32_path}: no such ONNX model to quantize")
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".medlens-quant-") as scratch:
        cleaned, prepared, tmp = (Path(scratch) / f"{n}.onnx" for n in ("in", "prep", "out"))
        try:
            _strip_value_info(fp32_path, cleaned)
            quant_pre_process(cleaned, prepared, skip_symbolic_shape=True)
            run(prepared, tmp)
        except ExportError:
            raise
        except Exception as exc:  # onnxruntime.quantization raises untyped errors
            raise ExportError(
                f"{fp32_path}: int8 quantization failed ({type(exc).__name__}: {exc})"
            ) from exc
        check_onnx(tmp, name=out_path)
        os.replace(tmp, out_path)
    return out_path


def _output_nodes(path: Path) -> list[str]:
    """Nodes that produce the logits: kept in float, so scores keep their resolution
    (uint8 logits would create ties and move the AUC)."""
    import onnx

    graph = onnx.load(str(path)).graph
    outputs = {o.name for o in graph.output}
    return [node.name for node in graph.node if outputs & set(node.output)]


#: Kept in float: instance norm computes its statistics per image at run time, and its
#: 1-D scale has no per-channel axis for the quantizer (a segmentation U-Net's norm).
FLOAT_OPS = frozenset({"InstanceNormalization"})


def _float_nodes(path: Path) -> list[str]:
    """Nodes of :data:`FLOAT_OPS`, left unquantized."""
    import onnx

    return [node.name for node in onnx.load(str(path)).graph.node if node.op_type in FLOAT_OPS]


def _strip_value_info(path: Path, out: Path) -> None:
    """Copy the model without its recorded intermediate shapes.

    The PyTorch exporter also records shapes for weights; once the quantizer transposes a
    weight, that stale entry contradicts shape inference. Shapes are inferred again anyway.
    """
    import onnx

    proto = onnx.load(str(path))
    del proto.graph.value_info[:]
    onnx.save(proto, str(out))


def _as_array(batch: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(batch, torch.Tensor):
        batch = batch.detach().cpu().float().numpy()
    return np.ascontiguousarray(batch, dtype=np.float32)


class _BatchReader:
    """Feeds calibration batches to ONNX Runtime (duck-types ``CalibrationDataReader``,
    with the ``len``/``set_range`` that strided calibration asks for)."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self._batches = batches
        self._next, self._end = 0, len(batches)

    def __len__(self) -> int:
        return len(self._batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._next, self._end = start_index, min(end_index, len(self._batches))

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= self._end:
            return None
        self._next += 1
        return {INPUT_NAME: self._batches[self._next - 1]}

    def __iter__(self) -> _BatchReader:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item
