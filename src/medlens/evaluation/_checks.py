"""Validation of labels and probabilities, shared by every evaluation function.

Shapes after validation, with ``n`` cases and ``K`` classes (or labels):

=============  ===================  =========================================
task           ``y``                ``probs``
=============  ===================  =========================================
binary         ``(n,)`` int 0/1     ``(n,)`` probability of the positive class
multiclass     ``(n,)`` int 0..K-1  ``(n, K)`` rows summing to 1
multilabel     ``(n, K)`` int 0/1   ``(n, K)`` one probability per label
=============  ===================  =========================================

A binary ``probs`` may also be given as ``(n, 1)`` or as two columns ``(n, 2)``.
"""

from __future__ import annotations

from typing import Literal, cast

import numpy as np
from numpy.typing import ArrayLike

from medlens.errors import EvaluationError

Task = Literal["binary", "multiclass", "multilabel"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "multilabel")


def check_task(task: str) -> Task:
    """Return ``task`` if it is one of :data:`TASKS`, else raise."""
    if task not in TASKS:
        raise EvaluationError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    return cast(Task, task)


def check_inputs(y_true: ArrayLike, probs: ArrayLike, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise ``(y_true, probs)`` to the shapes in the module docstring."""
    task = check_task(task)
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if y.shape[:1] != p.shape[:1] or y.size == 0:
        raise EvaluationError(
            f"y_true has {len(y)} cases and probs {len(p)}: need the same, non-zero number"
        )
    if not np.all(np.isfinite(p)) or p.min() < -1e-6 or p.max() > 1 + 1e-6:
        raise EvaluationError("probs must be finite probabilities in [0, 1] (got logits?)")
    p = np.clip(p, 0.0, 1.0)
    y = _as_int_labels(y)
    if task == "binary":
        return _check_binary(y, p)
    if task == "multiclass":
        return _check_multiclass(y, p)
    return _check_multilabel(y, p)


def n_classes(probs: np.ndarray, task: Task) -> int:
    """Number of columns the metrics are reported for (1 for binary: the positive class)."""
    return 1 if task == "binary" else probs.shape[1]


def as_columns(y: np.ndarray, probs: np.ndarray, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest view: boolean truth and scores, both ``(n, K)`` (``K = 1`` for binary)."""
    if task == "binary":
        return y[:, None].astype(bool), probs[:, None]
    if task == "multiclass":
        return y[:, None] == np.arange(probs.shape[1]), probs
    return y.astype(bool), probs


def _as_int_labels(y: np.ndarray) -> np.ndarray:
    if y.dtype == bool:
        return y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.equal(np.mod(y, 1), 0)):
        raise EvaluationError("y_true must hold integer class indices (map names to indices)")
    return y.astype(np.int64)


def _check_binary(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if p.ndim == 2 and p.shape[1] in (1, 2):
        p = p[:, -1]
    if y.ndim != 1 or p.ndim != 1:
        raise EvaluationError(
            f"binary task: expected y_true (n,) and probs (n,), (n, 1) or (n, 2); "
            f"got {y.shape} and {p.shape}"
        )
    if not np.isin(y, (0, 1)).all():
        raise EvaluationError("binary task: y_true must be 0 or 1")
    return y, p


def _check_multiclass(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if y.ndim != 1 or p.ndim != 2 or p.shape[1] < 2:
        raise EvaluationError(
            "multiclass task: expected y_true (n,) and probs (n, K>=2); "
            f"got {y.shape} and {p.shape}"
        )
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise EvaluationError(f"multiclass task: y_true must lie in 0..{p.shape[1] - 1}")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise EvaluationError("multiclass task: each row of probs must sum to 1 (apply softmax)")
    return y, p


def _check_multilabel(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if y.ndim != 2 or y.shape != p.shape:
        raise EvaluationError(
            f"multilabel task: expected y_true and probs both (n, K); got {y.shape} and {p.shape}"
        )
    if not np.isin(y, (0, 1)).all():
        raise EvaluationError("multilabel task: y_true must be 0 or 1")
    return y, p
