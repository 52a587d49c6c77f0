"""ONNX Runtime behind the same call as a PyTorch classifier: tensor in, logits out."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from medlens.errors import ExportError

__all__ = ["OnnxModel"]


class OnnxModel:
    """An ONNX Runtime session that a :class:`~medlens.inference.Predictor` can call like a model.

    >>> model = OnnxModel("runs/r1/model.onnx")          # doctest: +SKIP
    >>> logits = model(torch.zeros(4, 1, 224, 224))     # doctest: +SKIP

    Args:
        path: an ``.onnx`` file with one image input (dynamic batch) and one logits output.
        num_threads: intra-op threads; default: the CPUs this process may use.
        providers: ONNX Runtime execution providers; default: CPU.
    """

    engine = "onnx"

    def __init__(
        self,
        path: str | Path,
        *,
        num_threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = num_threads or _available_cpus()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no warnings on stderr per session
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ExportError(
                f"{self.path}: ONNX Runtime cannot load this model ({type(exc).__name__})"
            ) from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ExportError(
                f"{self.path}: expected one input and one output, "
                f"got {len(inputs)} and {len(outputs)}"
            )
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name

    def __call__(self, batch: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits for a float batch ``(N, C, ...)`` as a CPU float32 tensor."""
        if isinstance(batch, torch.Tensor):
            batch = batch.detach().cpu().float().contiguous().numpy()
        array = np.ascontiguousarray(batch, dtype=np.float32)
        (logits,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(logits)

    def eval(self) -> OnnxModel:
        """No-op, so code written for ``nn.Module`` can call it."""
        return self

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r})"


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
