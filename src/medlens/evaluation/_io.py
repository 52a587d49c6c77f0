"""Atomic writes, JSON conversion and the output folder of evaluations."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A reader sees either the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_jsonable(value: Any, digits: int = 6) -> Any:
    """Plain JSON types: numpy scalars and arrays become numbers and lists, rounded to
    ``digits`` significant decimals; nan and infinities become ``None``."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_jsonable(v, digits) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return round(float(value), digits) if math.isfinite(value) else None
    return value


def write_json(path: str | os.PathLike[str], content: dict[str, Any]) -> Path:
    """Write ``content`` as indented JSON, atomically."""
    text = json.dumps(to_jsonable(content), indent=2, allow_nan=False)
    return atomic_write(path, text + "\n")


def evaluation_dir(
    run_dir: str | os.PathLike[str], data: str | os.PathLike[str] | None, split: str
) -> Path:
    """Where an evaluation of ``run_dir`` on ``split`` of ``data`` writes its files.

    The run's own data (``data`` None, the run folder or its ``manifest.csv``):
    ``eval/<split>/``. Other data: ``eval/<name>-<split>/``, ``<name>`` the data folder's
    name; for a file its name without the extension (``manifest.csv``: its folder's name).
    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_`` (64 at
    most): ``--data "/data/St Mary's" --split test`` writes ``eval/St_Mary_s-test/``,
    ``--data ext/pneumonia.npz`` ``eval/pneumonia-test/``. Data of the same name shares
    its folder: the later evaluation replaces the files.
    """
    run_dir = Path(run_dir)
    own = run_dir / "eval" / _safe(split)
    if data is None:
        return own
    data = Path(data).resolve()
    if data in (run_dir.resolve(), (run_dir / "manifest.csv").resolve()):
        return own
    name = data.name
    if data.is_file() or data.suffix in (".csv", ".npz"):
        name = data.parent.name if data.name == "manifest.csv" else data.stem
    return run_dir / "eval" / f"{_safe(name)}-{_safe(split)}"


def _safe(name: str) -> str:
    """``name`` as one portable path component."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:64] or "data"
