"""Ordinal (graded) classification: the grade decision and its metrics.

Grades are class indices ``0..K-1`` in order. The *expected grade* of a case is
``sum_k k * p_k``. A model decides a grade by one of three rules (:func:`decide_grades`):
``argmax`` of its grade probabilities; ``median``, the number of cumulative probabilities
``P(grade > k)`` above 0.5 (CORAL's rule, robust when a rank-consistent head gives middle
grades little mass); or ``cut_points``, the expected grade compared with ``K - 1`` increasing
cut-points (``grade = #{k : expected >= t_k}``) chosen on the validation split to maximise
the quadratic-weighted kappa (:func:`select_cut_points`).

Metrics (:func:`ordinal_metrics`): quadratic-weighted kappa (scikit-learn's
``cohen_kappa_score(weights="quadratic")``), mean absolute error in grades (of the decided
and of the expected grade), accuracy, the confusion matrix and, per cut-point ``k``, the
ROC-AUC of ``P(grade >= k)`` for ``grade >= k``; each with a stratified bootstrap interval
(:mod:`medlens.evaluation.bootstrap`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import cohen_kappa_score

from medlens.errors import EvaluationError
from medlens.evaluation.bootstrap import (
    DEFAULT_RESAMPLES,
    bootstrap,
    percentile_interval,
    strata_of,
    weighted_roc_auc,
)

__all__ = [
    "decide_grades",
    "expected_grade",
    "ordinal_metrics",
    "quadratic_kappa",
    "select_cut_points",
]

MAX_CANDIDATES = 256  # cut-point candidates per search step (quantiles of the expected grade)


def expected_grade(probs: ArrayLike) -> np.ndarray:
    """``sum_k k * p_k`` per row of ``(n, K)`` grade probabilities."""
    p = _check_probs(probs)
    return p @ np.arange(p.shape[1], dtype=np.float64)


def decide_grades(
    probs: ArrayLike, cut_points: Sequence[float] | None = None, *, rule: str = "argmax"
) -> np.ndarray:
    """Grades from ``(n, K)`` probabilities: the expected grade cut at ``cut_points``
    (``K - 1`` increasing values) when given, else ``rule`` (``argmax`` or ``median``)."""
    p = _check_probs(probs)
    if cut_points is None:
        if rule == "median":
            return (1 - p.cumsum(axis=1)[:, :-1] > 0.5).sum(axis=1)
        if rule != "argmax":
            raise EvaluationError(f"unknown grade rule {rule!r}: argmax, median or cut_points")
        return p.argmax(axis=1)
    cuts = np.asarray(cut_points, dtype=np.float64)
    if cuts.shape != (p.shape[1] - 1,) or np.any(np.diff(cuts) < 0):
        raise EvaluationError(f"need {p.shape[1] - 1} increasing cut-points, got {cut_points}")
    return (expected_grade(p)[:, None] >= cuts).sum(axis=1)


def quadratic_kappa(y_true: ArrayLike, grades: ArrayLike, n_grades: int) -> float:
    """Quadratic-weighted Cohen's kappa; NaN when it is undefined (one grade only)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        value = cohen_kappa_score(y_true, grades, labels=range(n_grades), weights="quadratic")
    return float(value)


def select_cut_points(y_true: ArrayLike, probs: ArrayLike, passes: int = 3) -> dict[str, Any]:
    """Cut-points on the expected grade that maximise QWK on these (validation) cases.

    Coordinate ascent from rounding (``t_k = k + 0.5``): each cut-point in turn moves to
    the candidate between its neighbours with the highest kappa (a tie keeps it), so the
    result is never worse than rounding. Returns ``{"decision", "cut_points", "qwk",
    "qwk_argmax", "qwk_median"}``: ``decision`` is the rule with the highest kappa;
    ``cut_points`` only when they beat both ``argmax`` and ``median`` (ties: argmax).
    """
    y, p = _check_labels(y_true, probs)
    k = p.shape[1]
    expected = expected_grade(p)
    cuts = np.arange(k - 1, dtype=np.float64) + 0.5
    best = _kappa_or_floor(y, (expected[:, None] >= cuts).sum(1), k)
    candidates = _candidates(expected)
    for _ in range(passes):
        moved = False
        for j in range(k - 1):
            low = cuts[j - 1] if j > 0 else -np.inf
            high = cuts[j + 1] if j < k - 2 else np.inf
            for value in candidates[(candidates >= low) & (candidates <= high)]:
                trial = cuts.copy()
                trial[j] = value
                score = _kappa_or_floor(y, (expected[:, None] >= trial).sum(1), k)
                if score > best:
                    best, cuts, moved = score, trial, True
        if not moved:
            break
    argmax = _kappa_or_floor(y, decide_grades(p, rule="argmax"), k)
    median = _kappa_or_floor(y, decide_grades(p, rule="median"), k)
    decision = max(("argmax", argmax), ("median", median), ("cut_points", best),
                   key=lambda item: item[1])[0]  # fmt: skip
    return {
        "decision": decision,
        "cut_points": [float(c) for c in cuts] if decision == "cut_points" else None,
        "qwk": float(max(best, argmax, median)),
        "qwk_argmax": float(argmax),
        "qwk_median": float(median),
    }


def ordinal_metrics(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    cut_points: Sequence[float] | None = None,
    rule: str = "argmax",
    class_names: Sequence[str] | None = None,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The ordinal section of ``metrics.json``: every figure as ``{value, ci_low, ci_high}``.

    The model's decision: ``cut_points`` when given, else ``rule`` (argmax or median).
    """
    y, p = _check_labels(y_true, probs)
    k = p.shape[1]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise EvaluationError(f"{k} grades but {len(names)} class names")
    grades = decide_grades(p, cut_points, rule=rule)
    statistic = _statistic(y, p, grades)
    point = {name: float(v[0]) for name, v in statistic(np.ones((1, len(y)))).items()}
    samples = (
        bootstrap(statistic, strata_of(y), n_resamples=n_bootstrap, seed=seed)
        if n_bootstrap
        else {}
    )
    figures = {
        name: _with_ci(value, samples.get(name), confidence) for name, value in point.items()
    }
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, grades), 1)
    return {
        "grades": names,
        "decision": {"rule": "cut_points" if cut_points else rule, "cut_points": cut_points},
        "metrics": {name: figures[name] for name in ("qwk", "mae", "mae_expected", "accuracy")},
        "cut_point_auc": {f">= {names[j]}": figures[f"auc_ge_{j}"] for j in range(1, k)},
        "confusion_matrix": confusion.tolist(),
    }


def _statistic(y: np.ndarray, p: np.ndarray, grades: np.ndarray) -> Any:
    """The figures as functions of bootstrap case weights ``(b, n)``."""
    k = p.shape[1]
    expected = expected_grade(p)
    truth = y[:, None] == np.arange(k)
    decided = grades[:, None] == np.arange(k)
    cells = (truth[:, :, None] & decided[:, None, :]).reshape(len(y), k * k).astype(float)
    penalty = ((np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2).reshape(-1).astype(float)
    above = [y >= j for j in range(1, k)]
    p_above = [p[:, j:].sum(1) for j in range(1, k)]

    def statistic(w: np.ndarray) -> dict[str, np.ndarray]:
        total = w.sum(1)
        observed = (w @ cells).reshape(-1, k, k)
        chance = observed.sum(2)[:, :, None] * observed.sum(1)[:, None, :] / total[:, None, None]
        disagreement = chance.reshape(-1, k * k) @ penalty
        with np.errstate(all="ignore"):
            qwk = np.where(disagreement > 0, 1 - (w @ cells @ penalty) / disagreement, np.nan)
        figures = {
            "qwk": qwk,
            "mae": w @ np.abs(grades - y) / total,
            "mae_expected": w @ np.abs(expected - y) / total,
            "accuracy": w @ (grades == y).astype(float) / total,
        }
        for j in range(1, k):
            figures[f"auc_ge_{j}"] = weighted_roc_auc(above[j - 1], p_above[j - 1], w)
        return figures

    return statistic


def _with_ci(value: float, samples: np.ndarray | None, confidence: float) -> dict[str, Any]:
    finite = float(value) if np.isfinite(value) else None
    if samples is None:
        return {"value": finite, "ci_low": None, "ci_high": None}
    low, high = percentile_interval(samples, confidence)
    return {
        "value": finite,
        "ci_low": float(low) if np.isfinite(low) else None,
        "ci_high": float(high) if np.isfinite(high) else None,
    }


def _kappa_or_floor(y: np.ndarray, grades: np.ndarray, k: int) -> float:
    value = quadratic_kappa(y, grades, k)
    return value if np.isfinite(value) else -1.0


def _candidates(expected: np.ndarray) -> np.ndarray:
    """Midpoints between neighbouring distinct expected grades (at most MAX_CANDIDATES)."""
    values = np.unique(expected)
    mids = (values[1:] + values[:-1]) / 2 if len(values) > 1 else values
    if len(mids) > MAX_CANDIDATES:
        mids = np.unique(np.quantile(mids, np.linspace(0, 1, MAX_CANDIDATES)))
    return mids


def _check_probs(probs: ArrayLike) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2 or not np.all(np.isfinite(p)):
        raise EvaluationError(
            f"grade probabilities must be a finite (n, K>=2) array, got {p.shape}"
        )
    return p


def _check_labels(y_true: ArrayLike, probs: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = _check_probs(probs)
    y = np.asarray(y_true).reshape(-1)
    if len(y) != len(p) or len(y) == 0:
        raise EvaluationError(f"{len(y)} grades for {len(p)} rows of probabilities")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]:
        raise EvaluationError(f"grades must be integers in 0..{p.shape[1] - 1}")
    return y.astype(np.int64), p
