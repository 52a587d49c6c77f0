"""The one place where an inference engine is chosen and loaded: PyTorch or ONNX Runtime.

``export.json`` (written by :mod:`medlens.export`) names a verified ONNX file of the card's
weights; :func:`pick_engine` uses it when it is present, up to date and ONNX Runtime is
installed. Weights are hash-checked against the card before they are loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medlens.errors import ConfigError, ModelError
from medlens.training.checkpoint import sha256_file

if TYPE_CHECKING:
    import torch

    from medlens.card import ModelCard

__all__ = [
    "ENGINES",
    "deployed_onnx",
    "load_engine",
    "pick_engine",
    "read_export_record",
    "to_channels_last",
]

ENGINES: tuple[str, ...] = ("torch", "onnx")


def load_engine(run_dir: Path, card: ModelCard, engine: str) -> Callable:
    """A callable batch -> logits for the run's weights on ``engine``."""
    if engine == "torch":
        from medlens.models import create_model
        from medlens.training.checkpoint import load_weights

        if card.adapter is not None:  # LoRA: base + adapter, merged into plain weights
            from medlens.models.lora import load_adapted

            return to_channels_last(load_adapted(run_dir, card).eval())
        model = create_model(**card.create_model)
        load_weights(model, run_dir / "model.safetensors", sha256=card.sha256)
        return to_channels_last(model.eval())
    if engine == "onnx":
        from medlens.inference.onnx_runtime import OnnxModel

        path = deployed_onnx(run_dir, card)
        if path is None:
            raise ModelError(
                f"{run_dir}: no verified ONNX export of these weights; run `medlens export`"
            )
        return OnnxModel(path)
    raise ConfigError(f"unknown inference engine {engine!r}: use one of {ENGINES}")


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """Channels-last weights for a 2D network (PyTorch's fast CPU convolution path).

    Eager EfficientNet-Lite0 at batch 1 was measured up to 100x slower in the default layout
    (docs/benchmarks/export.md). 3D networks (5-D weights) are left as they are.
    """
    import torch

    dims = {p.dim() for p in model.parameters()}
    if 4 in dims and 5 not in dims:
        model.to(memory_format=torch.channels_last)
    return model


def pick_engine(run_dir: str | Path, card: ModelCard) -> str:
    """``"onnx"`` when a verified, up-to-date export exists and ONNX Runtime is installed."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        return "torch"
    return "onnx" if deployed_onnx(run_dir, card) is not None else "torch"


def deployed_onnx(run_dir: str | Path, card: ModelCard | None = None) -> Path | None:
    """The ONNX file ``export.json`` deploys, or None when it is absent or out of date.

    Out of date: the file's sha256 differs from the record, or the record was made from
    other weights than the card's ``sha256``.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "export.json").is_file():
        return None
    record = read_export_record(run_dir)
    entry = record["model"]
    path = run_dir / entry["file"]
    if card is not None and record.get("source_sha256") != card.sha256:
        return None
    if not path.is_file() or sha256_file(path) != entry["sha256"]:
        return None
    return path


def read_export_record(run_dir: str | Path) -> dict[str, Any]:
    """Read ``export.json`` of a run (``ModelError`` if unreadable)."""
    path = Path(run_dir) / "export.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no export.json in {Path(run_dir)}: run `medlens export` first") from None
    except ValueError:
        raise ModelError(f"{path}: not valid JSON") from None
    entry = record.get("model") if isinstance(record, dict) else None
    name = entry.get("file") if isinstance(entry, dict) else None
    # only a file name beside the record: never a path that leads out of the run directory
    if not isinstance(name, str) or Path(name).name != name or "sha256" not in entry:
        raise ModelError(f"{path}: not a medlens export record")
    return record
