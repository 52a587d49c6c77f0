"""From labels and probabilities to the full content of ``metrics.json``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import precision_recall_curve, roc_curve

from medlens.errors import EvaluationError
from medlens.evaluation._checks import Task, as_columns, check_inputs, check_task
from medlens.evaluation._io import to_jsonable, write_json
from medlens.evaluation.bootstrap import (
    DEFAULT_RESAMPLES,
    classification_bootstrap,
    percentile_interval,
)
from medlens.evaluation.calibration import DEFAULT_BINS, brier_score, reliability_diagram
from medlens.evaluation.classification import Threshold, classification_metrics

SCHEMA_VERSION = 1
MAX_CURVE_POINTS = 200


def evaluate_predictions(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    task: str = "binary",
    class_names: Sequence[str] | None = None,
    threshold: Threshold = 0.5,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
    n_bins: int = DEFAULT_BINS,
    raw_probs: ArrayLike | None = None,
    temperature: float | None = None,
) -> dict[str, Any]:
    """Every metric with its confidence interval, curves and calibration, JSON-ready.

    Args:
        y_true: labels (see :mod:`medlens.evaluation.classification` for the shapes).
        probs: predicted probabilities, after temperature scaling if any.
        task: "binary", "multiclass" or "multilabel".
        class_names: one name per class (binary: negative then positive).
        threshold: decision threshold (binary), one per label or shared (multilabel);
            ignored for multiclass, which predicts the argmax.
        n_bootstrap: stratified bootstrap resamples for the intervals; 0 for none.
        seed: seed of the bootstrap: the same inputs and seed give the same output.
        confidence: level of the percentile intervals.
        n_bins: equal-width bins of the reliability diagram and ECE.
        raw_probs: probabilities before temperature scaling, to report ECE before and after.
        temperature: the temperature that turned ``raw_probs`` into ``probs``.

    Returns:
        ``{"schema_version", "task", "class_names", "n_cases", "class_counts", "decision",
        "bootstrap", "metrics", "per_class", "confusion_matrix", "curves", "calibration"}``;
        each metric is ``{"value", "ci_low", "ci_high"}`` (``None`` where undefined).
    """
    task_ = check_task(task)
    y, p = check_inputs(y_true, probs, task_)
    names = _class_names(class_names, p, task_)
    point = classification_metrics(y, p, task=task_, threshold=threshold)
    samples = _bootstrap(y, p, task_, threshold, n_bootstrap, seed)
    overall = {k: _with_ci(v, samples.get(k), confidence) for k, v in point["overall"].items()}
    per_class = _per_class(point["per_class"], samples, names, task_, confidence)
    result = {
        "schema_version": SCHEMA_VERSION,
        "task": task_,
        "class_names": names,
        "n_cases": len(y),
        "class_counts": _class_counts(y, names, task_),
        "decision": _decision(threshold, task_),
        "bootstrap": {
            "n_resamples": n_bootstrap,
            "seed": seed,
            "confidence": confidence,
            "method": "percentile bootstrap, stratified by "
            + ("label pattern" if task_ == "multilabel" else "class"),
        },
        "metrics": overall,
        "per_class": per_class,
        "confusion_matrix": {"labels": names, "counts": point["confusion_matrix"]},
        "curves": curves(y, p, task=task_, class_names=names),
        "calibration": _calibration(y, p, raw_probs, temperature, task_, n_bins),
    }
    return to_jsonable(result)


def write_metrics(path: str | os.PathLike[str], metrics: dict[str, Any]) -> Path:
    """Write the output of :func:`evaluate_predictions` to ``path`` (JSON, atomically)."""
    return write_json(path, metrics)


class Evaluator:
    """Collect labels and probabilities batch by batch, then evaluate them all at once.

    >>> evaluator = Evaluator(task="binary", class_names=["normal", "pneumonia"])
    >>> for labels, probs in batches:
    ...     evaluator.update(labels, probs)
    >>> metrics = evaluator.compute()
    """

    def __init__(self, *, task: str = "binary", **options: Any) -> None:
        self.task = check_task(task)
        self.options = options
        self.reset()

    def update(self, y_true: ArrayLike, probs: ArrayLike) -> None:
        self._labels.append(np.asarray(y_true))
        self._probs.append(np.asarray(probs, dtype=np.float64))

    def compute(self) -> dict[str, Any]:
        if not self._labels:
            raise EvaluationError("nothing to evaluate: call update() with predictions first")
        labels, probs = np.concatenate(self._labels), np.concatenate(self._probs)
        return evaluate_predictions(labels, probs, task=self.task, **self.options)

    def reset(self) -> None:
        self._labels: list[np.ndarray] = []
        self._probs: list[np.ndarray] = []


def curves(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    task: str = "binary",
    class_names: Sequence[str] | None = None,
    max_points: int = MAX_CURVE_POINTS,
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """ROC and precision-recall curves per class (binary: the positive class only).

    Returns ``{"roc": {name: {"fpr", "tpr", "threshold"}}, "pr": {name: {"recall",
    "precision", "threshold"}}}`` with at most ``max_points`` points per curve.
    """
    task_ = check_task(task)
    y, p = check_inputs(y_true, probs, task_)
    names = _class_names(class_names, p, task_)
    truth, scores = as_columns(y, p, task_)
    shown = names[1:] if task_ == "binary" else names
    roc: dict[str, dict[str, list[float]]] = {}
    pr: dict[str, dict[str, list[float]]] = {}
    for j, name in enumerate(shown):
        if not 0 < truth[:, j].sum() < len(truth):
            continue  # a curve needs both classes
        fpr, tpr, thr = roc_curve(truth[:, j], scores[:, j])
        roc[name] = _compact({"fpr": fpr, "tpr": tpr, "threshold": thr}, max_points)
        precision, recall, thr = precision_recall_curve(truth[:, j], scores[:, j])
        thr = np.r_[thr, np.nan]  # scikit-learn gives one threshold fewer than points
        pr[name] = _compact(
            {"recall": recall, "precision": precision, "threshold": thr}, max_points
        )
    return {"roc": roc, "pr": pr}


def _bootstrap(
    y: np.ndarray, p: np.ndarray, task: Task, threshold: Threshold, n: int, seed: int
) -> dict[str, np.ndarray]:
    if n == 0:
        return {}
    return classification_bootstrap(y, p, task=task, threshold=threshold, n_resamples=n, seed=seed)


def _with_ci(value: float, samples: np.ndarray | None, confidence: float) -> dict[str, float]:
    if samples is None:
        return {"value": value, "ci_low": float("nan"), "ci_high": float("nan")}
    low, high = percentile_interval(samples, confidence)
    return {"value": value, "ci_low": float(low), "ci_high": float(high)}


def _per_class(
    point: dict[str, list[float]],
    samples: dict[str, np.ndarray],
    names: list[str],
    task: Task,
    confidence: float,
) -> dict[str, dict[str, dict[str, float]]]:
    if task == "binary":
        return {}
    result: dict[str, dict[str, dict[str, float]]] = {name: {} for name in names}
    for metric, values in point.items():
        drawn = samples.get(f"per_class/{metric}")
        for j, name in enumerate(names):
            result[name][metric] = _with_ci(
                values[j], None if drawn is None else drawn[:, j], confidence
            )
    return result


def _class_names(names: Sequence[str] | None, probs: np.ndarray, task: Task) -> list[str]:
    expected = 2 if task == "binary" else probs.shape[1]
    if names is None:
        return (
            ["negative", "positive"]
            if task == "binary"
            else [f"class_{i}" for i in range(expected)]
        )
    names = [str(name) for name in names]
    if len(names) != expected or len(set(names)) != expected:
        raise EvaluationError(f"{task} task: expected {expected} distinct class names, got {names}")
    return names


def _class_counts(y: np.ndarray, names: list[str], task: Task) -> dict[str, int]:
    counts = y.sum(axis=0) if task == "multilabel" else np.bincount(y, minlength=len(names))
    return {name: int(c) for name, c in zip(names, counts, strict=True)}


def _decision(threshold: Threshold, task: Task) -> dict[str, Any]:
    if task == "multiclass":
        return {"rule": "argmax", "threshold": None}
    return {
        "rule": "probability >= threshold",
        "threshold": 0.5 if threshold is None else threshold,
    }


def _calibration(
    y: np.ndarray,
    p: np.ndarray,
    raw: ArrayLike | None,
    temperature: float | None,
    task: Task,
    n_bins: int,
) -> dict[str, Any]:
    def summary(probs: ArrayLike) -> dict[str, Any]:
        diagram = reliability_diagram(y, probs, task=task, n_bins=n_bins)
        brier = brier_score(y, probs, task=task)
        return {"ece": diagram.ece, "brier": brier, "reliability": diagram.to_dict()}

    result = {"n_bins": n_bins, "temperature": temperature, **summary(p)}
    if raw is not None:
        result["before_temperature"] = summary(raw)
    return result


def _compact(curve: dict[str, np.ndarray], max_points: int) -> dict[str, list[float]]:
    """Keep at most ``max_points`` evenly spaced points, always the first and the last."""
    n = len(next(iter(curve.values())))
    keep = np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(int))
    return {key: values[keep].tolist() for key, values in curve.items()}
