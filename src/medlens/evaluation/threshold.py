"""Choosing a decision threshold on validation data.

A case is called positive when ``prob >= threshold``. The candidate thresholds are the
distinct predicted probabilities (scikit-learn's ``roc_curve``), so the returned
operating point is exactly what the threshold achieves on the validation data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_curve

from medlens.errors import EvaluationError
from medlens.evaluation._checks import check_inputs

ThresholdMethod = Literal["youden", "accuracy", "sensitivity", "fixed"]


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold and what it achieves on the data it was chosen on."""

    threshold: float
    method: ThresholdMethod
    sensitivity: float
    specificity: float
    target_sensitivity: float | None = None

    @property
    def youden_j(self) -> float:
        return self.sensitivity + self.specificity - 1

    def to_dict(self) -> dict[str, float | str | None]:
        return asdict(self) | {"youden_j": self.youden_j}


def select_threshold(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    method: ThresholdMethod = "youden",
    target_sensitivity: float | None = None,
    fixed: float = 0.5,
) -> OperatingPoint:
    """Choose the threshold of a binary classifier on validation labels and probabilities.

    Args:
        y_true: 0/1 labels, ``(n,)``.
        probs: probability of the positive class, ``(n,)`` (or ``(n, 2)``).
        method: ``"youden"`` maximises sensitivity + specificity - 1 (ties: the highest
            threshold); ``"accuracy"`` maximises the share of correct calls at the
            validation prevalence (ties: the highest threshold); ``"sensitivity"`` takes
            the highest threshold whose sensitivity reaches ``target_sensitivity``;
            ``"fixed"`` uses ``fixed``.
        target_sensitivity: required for ``method="sensitivity"``, in (0, 1].
        fixed: the threshold for ``method="fixed"``.
    """
    y, p = check_inputs(y_true, probs, "binary")
    if method == "fixed":
        return _operating_point(y, p, float(fixed), method)
    if not 0 < y.sum() < len(y):
        raise EvaluationError("threshold selection needs both classes in the validation labels")
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    fpr, tpr, thresholds = fpr[1:], tpr[1:], thresholds[1:]  # drop the "nothing positive" point
    if method == "youden":
        best = int(np.argmax(tpr - fpr))
        return _operating_point(y, p, float(thresholds[best]), method)
    if method == "accuracy":
        positives = y.sum()
        correct = tpr * positives + (1 - fpr) * (len(y) - positives)
        return _operating_point(y, p, float(thresholds[int(np.argmax(correct))]), method)
    if method == "sensitivity":
        if target_sensitivity is None or not 0 < target_sensitivity <= 1:
            raise EvaluationError(
                f"method 'sensitivity' needs target_sensitivity in (0, 1], got {target_sensitivity}"
            )
        best = int(np.argmax(tpr >= target_sensitivity - 1e-12))
        return _operating_point(y, p, float(thresholds[best]), method, target_sensitivity)
    raise EvaluationError(
        f"unknown threshold method {method!r}: use youden, accuracy, sensitivity or fixed"
    )


def select_thresholds(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    method: ThresholdMethod = "youden",
    target_sensitivity: float | None = None,
    fixed: float = 0.5,
) -> list[OperatingPoint]:
    """:func:`select_threshold` for each label of a multilabel task (``(n, K)`` inputs)."""
    y, p = check_inputs(y_true, probs, "multilabel")
    return [
        select_threshold(
            y[:, j], p[:, j], method=method, target_sensitivity=target_sensitivity, fixed=fixed
        )
        for j in range(y.shape[1])
    ]


def _operating_point(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    method: ThresholdMethod,
    target: float | None = None,
) -> OperatingPoint:
    pred = p >= threshold
    positives, negatives = y == 1, y == 0
    sens = float(pred[positives].mean()) if positives.any() else float("nan")
    spec = float((~pred[negatives]).mean()) if negatives.any() else float("nan")
    return OperatingPoint(threshold, method, sens, spec, target)
