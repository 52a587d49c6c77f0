"""Export and compression, each step verified against the PyTorch model it came from.

* :func:`export_onnx` / :class:`OnnxModel`: ONNX (dynamo exporter, dynamic batch) and ONNX
  Runtime behind the model's own call (tensor in, logits out).
* :func:`quantize_static_int8` / :func:`quantize_dynamic_int8`: int8 with ONNX Runtime.
* :func:`verify`: logits difference (fp32), label agreement and AUC change (int8).
"""

from __future__ import annotations

from medlens.export.onnx_export import DEFAULT_OPSET, check_onnx, export_onnx
from medlens.export.quantize import quantize_dynamic_int8, quantize_static_int8
from medlens.export.runtime import OnnxModel
from medlens.export.verify import Tolerance, Verification, collect_logits, verify

__all__ = [
    "DEFAULT_OPSET",
    "OnnxModel",
    "Tolerance",
    "Verification",
    "check_onnx",
    "collect_logits",
    "export_onnx",
    "quantize_dynamic_int8",
    "quantize_static_int8",
    "verify",
]
