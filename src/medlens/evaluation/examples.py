"""Cases and pictures shown in the report: which to pick, and how they are carried."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medlens.evaluation import plots
from medlens.evaluation._checks import check_inputs, check_task
from medlens.evaluation.classification import Threshold, predict_labels


@dataclass(frozen=True)
class ReportImage:
    """A PNG picture with its caption (for example a Grad-CAM overlay)."""

    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class ExampleCase:
    """One evaluated case shown in the report: its picture, truth, call and probabilities."""

    png: bytes
    true_label: str
    predicted_label: str
    probabilities: Mapping[str, float] = field(default_factory=dict)
    caption: str = ""

    @property
    def correct(self) -> bool:
        return self.true_label == self.predicted_label

    @classmethod
    def from_array(cls, array: np.ndarray, **fields: Any) -> ExampleCase:
        """Build the PNG from a 2D (or RGB, or channels-first) array."""
        return cls(png=plots.image_png(array), **fields)


def select_examples(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    task: str = "binary",
    threshold: Threshold = 0.5,
    per_group: int = 4,
) -> dict[str, list[int]]:
    """Indices of the most confident correct and wrong cases, alternating between classes.

    Returns ``{"correct": [...], "wrong": [...]}``, at most ``per_group`` each: what the
    model gets right without doubt, and the errors it is surest about.
    """
    task_ = check_task(task)
    y, p = check_inputs(y_true, probs, task_)
    pred = predict_labels(p, task_, threshold)
    if task_ == "multiclass":
        right, margin, strata = pred == y, p.max(axis=1), y
    else:
        t = np.broadcast_to(np.asarray(0.5 if threshold is None else threshold), p.shape)
        right = (pred == y) if task_ == "binary" else (pred == y).all(axis=1)
        margin = np.abs(p - t) if task_ == "binary" else np.abs(p - t).mean(axis=1)
        strata = y if task_ == "binary" else np.zeros(len(y), dtype=int)
    return {
        "correct": _round_robin(np.flatnonzero(right), margin, strata, per_group),
        "wrong": _round_robin(np.flatnonzero(~right), margin, strata, per_group),
    }


def _round_robin(idx: np.ndarray, margin: np.ndarray, strata: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` of ``idx``, most confident first, taking one per stratum in turn."""
    queues = [
        list(idx[strata[idx] == s][np.argsort(-margin[idx][strata[idx] == s], kind="stable")])
        for s in np.unique(strata[idx])
    ]
    chosen: list[int] = []
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(int(queue.pop(0)))
    return chosen
