"""The held-out and calibration rows an export is checked on, for every task."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from medlens.errors import ExportError


def read_manifest(source: str | Path) -> Any:
    """The dataset manifest at ``source`` (an export needs one to verify on)."""
    from medlens.data import load_manifest

    if not Path(source).exists():
        raise ExportError(f"{source}: no manifest to verify the export on (--calibration-data)")
    return load_manifest(source)


def first_split(manifest: Any, splits: tuple[str, ...], source: Any) -> tuple[list[Any], str]:
    """The rows of the first non-empty split in ``splits`` (``""``: rows without a split)."""
    for split in splits:
        records = list(manifest.split(split))
        if records:
            return records, split or "all"
    raise ExportError(f"{source}: no cases in split(s) {list(splits)}")


def sample_records(records: list[Any], limit: int, seed: int) -> list[Any]:
    """At most ``limit`` of ``records``, drawn with ``seed``."""
    return random.Random(seed).sample(records, limit) if len(records) > limit else records


def refuse_padded_slices(preprocessing: dict[str, Any], what: str) -> None:
    """Refuse ``what`` (export, pruning, distillation) for a run whose studies keep their own
    slice count (``preprocessing.slices: pad``): the ONNX graph and the held-out tensors these
    steps use have one slice count, so padded studies would silently change the outputs."""
    if preprocessing.get("slices") == "pad":
        raise ExportError(
            f"{what} is not available for runs with preprocessing.slices 'pad' yet (the "
            "exported graph and the comparison images have a fixed slice count); serve and "
            "predict the run with the PyTorch engine, or retrain with slices 'resample'"
        )
