"""Export and compression, each step verified against the PyTorch model it came from.

Run-level (what the CLI calls; each writes files atomically):

* :func:`export_run`: ``model.onnx`` (+ ``model.int8.onnx``) and ``export.json`` beside a
  run, refused with :class:`~medlens.errors.ExportError` when verification fails.
* :func:`prune_run` / :func:`distill_run`: a new run directory with ``compression.json``.

Building blocks:

* :func:`export_onnx` / :class:`OnnxModel`: ONNX (dynamo exporter, dynamic batch) and ONNX
  Runtime behind the model's own call (tensor in, logits out).
* :func:`quantize_static_int8` / :func:`quantize_dynamic_int8`: int8 with ONNX Runtime.
* :func:`verify`: logits difference (fp32), label agreement and AUC change (int8);
  segmenters: :mod:`medlens.export.segmentation` (sliding windows, Dice agreement).
* :func:`prune_model`, :func:`sparsity`, :class:`DistillationLoss`, :func:`model_report`.
"""

from __future__ import annotations

from medlens.export.compare import ModelReport, model_report
from medlens.export.distill import DistillationLoss, distill_run
from medlens.export.onnx_export import DEFAULT_OPSET, check_onnx, export_onnx
from medlens.export.prune import prune_model, prune_run, sparsity
from medlens.export.quantize import quantize_dynamic_int8, quantize_static_int8
from medlens.export.run import ExportResult, deployed_onnx, export_run
from medlens.export.verify import Tolerance, Verification, collect_logits, verify
from medlens.inference.onnx_runtime import OnnxModel

__all__ = [
    "DEFAULT_OPSET",
    "DistillationLoss",
    "ExportResult",
    "ModelReport",
    "OnnxModel",
    "Tolerance",
    "Verification",
    "check_onnx",
    "collect_logits",
    "deployed_onnx",
    "distill_run",
    "export_onnx",
    "export_run",
    "model_report",
    "prune_model",
    "prune_run",
    "quantize_dynamic_int8",
    "quantize_static_int8",
    "sparsity",
    "verify",
]
