"""Classification metrics at one operating point, from labels and predicted probabilities.

Point estimates come from scikit-learn (confusion matrices, ROC-AUC, average precision).
The ratios are derived from the confusion counts by :func:`metrics_from_counts`, which
works on arrays of any leading shape so that :mod:`medlens.evaluation.bootstrap` reuses it
for thousands of resamples at once.

Conventions:

* binary: metrics of the positive class (index 1); a case is positive when
  ``prob >= threshold``.
* multiclass: the predicted class is the argmax; sensitivity, specificity, precision, NPV,
  F1, ROC-AUC (one-vs-rest) and PR-AUC are macro averages over classes, accuracy is the
  fraction of correct cases and balanced accuracy the mean per-class sensitivity.
* multilabel: each label is a binary problem with its own threshold; every metric is the
  macro average over labels (accuracy is therefore ``1 - Hamming loss``).

An undefined value (for example specificity without negatives) is ``nan``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    multilabel_confusion_matrix,
    roc_auc_score,
)

from medlens.errors import EvaluationError
from medlens.evaluation._checks import Task, as_columns, check_inputs, check_task, n_classes

METRICS: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "sensitivity",
    "specificity",
    "precision",
    "npv",
    "f1",
    "accuracy",
    "balanced_accuracy",
)
"""Metric names, in the order reports show them. Sensitivity is recall, precision is PPV."""

Threshold = float | Sequence[float] | None


def predict_labels(probs: np.ndarray, task: Task, threshold: Threshold = 0.5) -> np.ndarray:
    """Predicted labels from validated probabilities: thresholded, or argmax for multiclass."""
    if task == "multiclass":
        return probs.argmax(axis=1)
    t = np.asarray(0.5 if threshold is None else threshold, dtype=np.float64)
    if t.ndim > 1 or (t.ndim == 1 and (task == "binary" or t.shape[0] != probs.shape[1])):
        raise EvaluationError(
            f"threshold must be one number{' or one per label' if task == 'multilabel' else ''}"
        )
    return (probs >= t).astype(np.int64)


def confusion_counts(y: np.ndarray, pred: np.ndarray, task: Task, k: int) -> np.ndarray:
    """Confusion matrix: ``(2, 2)`` binary, ``(K, K)`` multiclass, ``(K, 2, 2)`` multilabel.

    Rows are true classes, columns predicted ones (scikit-learn's layout).
    """
    if task == "multilabel":
        return multilabel_confusion_matrix(y, pred, labels=np.arange(k))
    return confusion_matrix(y, pred, labels=np.arange(2 if task == "binary" else k))


def counts_per_class(cm: np.ndarray, task: Task) -> tuple[np.ndarray, ...]:
    """One-vs-rest ``(tp, fp, fn, tn)``, each ``(K,)``, from :func:`confusion_counts`."""
    if task == "binary":
        (tn, fp), (fn, tp) = cm
        return tuple(np.array([v], dtype=np.float64) for v in (tp, fp, fn, tn))
    if task == "multilabel":
        return tuple(cm[:, i, j].astype(np.float64) for i, j in ((1, 1), (0, 1), (1, 0), (0, 0)))
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    return tp, fp, fn, cm.sum() - tp - fp - fn


def ranking_scores(y: np.ndarray, probs: np.ndarray, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """Per-class one-vs-rest ROC-AUC and average precision, ``(K,)`` each (nan: one class)."""
    truth, scores = as_columns(y, probs, task)
    auc = np.full(truth.shape[1], np.nan)
    ap = np.full(truth.shape[1], np.nan)
    for j in range(truth.shape[1]):
        if 0 < truth[:, j].sum() < len(truth):
            auc[j] = roc_auc_score(truth[:, j], scores[:, j])
            ap[j] = average_precision_score(truth[:, j], scores[:, j])
    return auc, ap


def metrics_from_counts(
    tp: np.ndarray,
    fp: np.ndarray,
    fn: np.ndarray,
    tn: np.ndarray,
    auc: np.ndarray,
    ap: np.ndarray,
    task: Task,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Overall and per-class metrics from one-vs-rest counts and ranking scores.

    Every input has shape ``(..., K)``; overall values have shape ``(...)`` and per-class
    values ``(..., K)``. Used for point estimates and, vectorised, for bootstrap resamples.
    """
    total = tp + fp + fn + tn
    sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    per_class = {
        "roc_auc": auc,
        "pr_auc": ap,
        "sensitivity": sens,
        "specificity": spec,
        "precision": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, total),
        "balanced_accuracy": (sens + spec) / 2,
    }
    overall = {name: _nanmean(values) for name, values in per_class.items()}
    if task == "multiclass":
        overall["accuracy"] = _ratio(tp.sum(axis=-1), total[..., 0])
        overall["balanced_accuracy"] = overall["sensitivity"]
    return overall, per_class


def classification_metrics(
    y_true: ArrayLike, probs: ArrayLike, *, task: str = "binary", threshold: Threshold = 0.5
) -> dict[str, dict[str, float] | dict[str, list[float]] | list]:
    """Point estimates of :data:`METRICS` at ``threshold`` (ignored for multiclass).

    Returns ``{"overall": {metric: value}, "per_class": {metric: [value per class]},
    "confusion_matrix": nested list}`` (see :func:`confusion_counts` for the layout).
    """
    task_ = check_task(task)
    y, p = check_inputs(y_true, probs, task_)
    cm = confusion_counts(y, predict_labels(p, task_, threshold), task_, n_classes(p, task_))
    counts = counts_per_class(cm, task_)
    overall, per_class = metrics_from_counts(*counts, *ranking_scores(y, p, task_), task_)
    return {
        "overall": {name: float(v) for name, v in overall.items()},
        "per_class": {name: [float(x) for x in v] for name, v in per_class.items()},
        "confusion_matrix": cm.tolist(),
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring nan, nan where all are nan (without a warning)."""
    finite = np.isfinite(values)
    return _ratio(np.where(finite, values, 0.0).sum(axis=-1), finite.sum(axis=-1))
