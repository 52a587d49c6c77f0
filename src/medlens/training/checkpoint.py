"""Atomic, safe checkpoints: safetensors for weights, ``weights_only`` pickles for state."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medlens.errors import WeightsError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "load_checkpoint",
    "load_weights",
    "repair_run_dir",
    "save_checkpoint",
    "save_weights",
    "sha256_file",
]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    A temporary file in the same folder is written, flushed and fsynced, then renamed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save a training state (tensors, numbers, strings, lists, dicts) atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, refusing arbitrary pickles."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have no common type
        kind = exc.__class__.__name__
        raise WeightsError(f"{path}: not a loadable medlens checkpoint ({kind})") from None


def save_weights(model: nn.Module, path: str | Path) -> str:
    """Write the model's state dict as safetensors atomically; return its sha256."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    data = save(tensors)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_weights(model: nn.Module, path: str | Path, *, sha256: str | None = None) -> None:
    """Load safetensors weights into ``model``, checking the file hash when one is given."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights not found: {path}")
    data = path.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise WeightsError(f"{path}: sha256 does not match the one recorded in model.json")
    try:
        state = load(data)
    except (SafetensorError, ValueError) as exc:  # a pickle renamed, a torn file, ...
        raise WeightsError(f"{path}: not a safetensors file ({_first_line(exc)})") from None
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise WeightsError(f"{path}: weights do not fit the model ({exc})") from None


def repair_run_dir(run_dir: str | Path) -> None:
    """Undo what a kill or a power cut can leave in a run directory, before a resume.

    Removes the temporary files of interrupted atomic writes (``.*.tmp`` in the run
    directory and its ``checkpoints/``) and cuts a torn last line off ``metrics.jsonl``
    (appends that never reached the disk whole).
    """
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir / "checkpoints"):
        for stale in folder.glob(".*.tmp"):
            if stale.is_file():
                stale.unlink(missing_ok=True)
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        data = metrics.read_bytes()
        end = _complete_lines_end(data)
        if end < len(data):
            atomic_write_bytes(metrics, data[:end])


def _complete_lines_end(data: bytes) -> int:
    """Where the JSON lines of ``data`` stop being whole: after its last parsable,
    newline-terminated line, dropping only an unparsable tail."""
    end = len(data)
    while end:
        start = data.rfind(b"\n", 0, end - 1) + 1
        if data[end - 1 : end] == b"\n" and _is_json(data[start:end]):
            return end
        end = start
    return 0


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
