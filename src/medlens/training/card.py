"""The model card, ``model.json``: everything needed to rebuild and use a trained model.

Keys: ``format``, ``architecture``, ``create_model`` (keyword arguments of
:func:`medlens.models.create_model`, without weights), ``preprocessing`` (a
:class:`~medlens.transforms.preprocess.Preprocessing` dump), ``classes``, ``task``,
``threshold`` (binary: a number; multilabel: one per label; multiclass: null),
``operating_point``, ``temperature``, ``data_fingerprint``, ``versions``, ``sha256`` (of
``model.safetensors``), ``training`` (best epoch and validation figures), ``created``.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medlens.errors import ModelError
from medlens.training.checkpoint import atomic_write_text

__all__ = ["CARD_FORMAT", "read_card", "versions", "write_card"]

CARD_FORMAT = "medlens-model/1"
REQUIRED = ("architecture", "create_model", "preprocessing", "classes", "task", "sha256")


def versions() -> dict[str, str]:
    """Versions of medlens and the libraries that shape a model's numbers."""
    import torch

    from medlens import __version__

    return {"medlens": __version__, "torch": torch.__version__, "python": platform.python_version()}


def write_card(run_dir: str | Path, card: dict[str, Any]) -> Path:
    """Write ``model.json`` atomically (adds format, versions and creation time)."""
    path = Path(run_dir) / "model.json"
    full = {
        "format": CARD_FORMAT,
        **card,
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(path, json.dumps(full, indent=2) + "\n")
    return path


def read_card(run_dir: str | Path) -> dict[str, Any]:
    """Read and check ``model.json`` of a run directory."""
    path = Path(run_dir) / "model.json"
    if not path.is_file():
        raise ModelError(f"no model.json in {Path(run_dir)}: is it a finished medlens run?")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelError(f"{path}: not valid JSON") from None
    missing = [key for key in REQUIRED if not isinstance(card, dict) or key not in card]
    if missing:
        raise ModelError(f"{path}: missing keys {missing}")
    return card
