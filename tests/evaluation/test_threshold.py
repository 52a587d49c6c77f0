"""Threshold selection on validation data."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.errors import EvaluationError
from medlens.evaluation import select_threshold, select_thresholds


def _sens_spec(y: np.ndarray, p: np.ndarray, t: float) -> tuple[float, float]:
    pred = p >= t
    return pred[y == 1].mean(), (~pred[y == 0]).mean()


def test_separable_data_gives_perfect_youden() -> None:
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    point = select_threshold(y, p)
    assert point.threshold == pytest.approx(0.7)
    assert (point.sensitivity, point.specificity, point.youden_j) == (1.0, 1.0, 1.0)


def test_youden_is_the_best_threshold(make_binary) -> None:
    y, p = make_binary(400, seed=2, separation=0.7)
    point = select_threshold(y, p, method="youden")
    best = max(sum(_sens_spec(y, p, t)) - 1 for t in np.unique(p))
    assert point.youden_j == pytest.approx(best)
    assert (point.sensitivity, point.specificity) == pytest.approx(
        _sens_spec(y, p, point.threshold)
    )


def test_accuracy_threshold_is_the_most_accurate(make_binary) -> None:
    y, p = make_binary(400, seed=3, separation=0.6)
    y[:300] = 0  # rare positives: the most accurate threshold is not Youden's
    point = select_threshold(y, p, method="accuracy")
    best = max(((p >= t) == y).mean() for t in np.unique(p))
    assert ((p >= point.threshold) == y).mean() == pytest.approx(best)
    assert point.method == "accuracy"


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 1.0])
def test_target_sensitivity_is_reached_with_the_highest_threshold(target: float, make_binary):
    y, p = make_binary(300, seed=4, separation=0.7)
    point = select_threshold(y, p, method="sensitivity", target_sensitivity=target)
    assert point.sensitivity >= target
    assert point.target_sensitivity == target
    higher = np.unique(p[p > point.threshold])
    if len(higher):  # the next higher candidate misses the target
        assert _sens_spec(y, p, higher[0])[0] < target


def test_fixed_threshold_reports_its_operating_point(make_binary) -> None:
    y, p = make_binary(100)
    point = select_threshold(y, p, method="fixed", fixed=0.5)
    assert point.threshold == 0.5
    assert (point.sensitivity, point.specificity) == pytest.approx(_sens_spec(y, p, 0.5))
    assert point.to_dict()["method"] == "fixed"


def test_multilabel_thresholds_one_per_label(make_multilabel) -> None:
    y, p = make_multilabel(200, k=3)
    points = select_thresholds(y, p, method="sensitivity", target_sensitivity=0.9)
    assert len(points) == 3
    assert all(point.sensitivity >= 0.9 for point in points)


def test_selection_errors() -> None:
    with pytest.raises(EvaluationError, match="both classes"):
        select_threshold([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(EvaluationError, match="target_sensitivity"):
        select_threshold([0, 1], [0.2, 0.9], method="sensitivity")
    with pytest.raises(EvaluationError, match="unknown threshold method"):
        select_threshold([0, 1], [0.2, 0.9], method="best")  # type: ignore[arg-type]
