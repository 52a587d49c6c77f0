"""PyTorch -> ONNX with the torch.export-based (dynamo) exporter, then ``onnx.checker``.

The TorchScript-based exporter is deprecated since PyTorch 2.9 and is not used.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from medlens.errors import ExportError
from medlens.export._files import public_mode

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "check_onnx", "export_onnx"]

#: Opset 20 is fully implemented by ONNX Runtime >= 1.17 (the oldest the ``export`` extra
#: allows is 1.18) and is the opset the PyTorch exporter translates to natively.
DEFAULT_OPSET = 20
#: The torch.export-based exporter emits opset 18 or newer.
MIN_OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export ``model`` (in eval mode) to ``path`` with a dynamic batch axis, then check it.

    Args:
        model: a module mapping an image batch ``(N, C, H, W)`` or ``(N, C, D, H, W)`` to logits.
        example: one batch with the deployed shape; its batch axis is made dynamic, so a
            batch of 2 or more avoids the exporter specialising on size 1.
        path: where ``model.onnx`` goes; written atomically (temp file + ``os.replace``).
        opset: ONNX opset, :data:`MIN_OPSET` up to what the installed ``onnx`` knows.

    Raises:
        ExportError: the model cannot be traced or the graph fails ``onnx.checker``.
    """
    path = Path(path)
    _check_opset(opset)
    example = example.detach().float().cpu().contiguous()
    batch = torch.export.Dim("batch", min=1)
    with _eval_mode(model), _temporary(path) as tmp:
        try:
            with warnings.catch_warnings():
                # the exporter's own deprecation chatter is not ours to act on
                warnings.simplefilter("ignore", category=DeprecationWarning)
                warnings.simplefilter("ignore", category=FutureWarning)
                program = torch.onnx.export(
                    model,
                    (example,),
                    dynamo=True,
                    dynamic_shapes=({0: batch},),
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    opset_version=opset,
                    external_data=False,
                    verbose=False,
                )
        except Exception as exc:  # the exporter raises many unrelated types
            raise ExportError(
                f"{path}: torch.onnx.export failed for {type(model).__name__} "
                f"({type(exc).__name__}: {_first_line(exc)})"
            ) from exc
        program.save(str(tmp), external_data=False)
        check_onnx(tmp, name=path)
        os.replace(tmp, path)
    return path


def check_onnx(path: str | Path, *, name: str | Path | None = None) -> None:
    """Run ``onnx.checker`` (full check, with shape inference) on a saved model."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{name or path}: onnx.checker rejected the graph: {exc}") from exc


def _check_opset(opset: int) -> None:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ExportError(f"opset {opset} not supported: choose {MIN_OPSET}..{newest}")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[Path]:
    """A temp file path beside ``path``, removed unless it was moved into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    public_mode(tmp)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "no message"
