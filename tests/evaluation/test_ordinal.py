"""Ordinal metrics, cut-points chosen on validation, and the report section."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, mean_absolute_error, roc_auc_score

from medlens.errors import EvaluationError
from medlens.evaluation.ordinal import (
    decide_grades,
    expected_grade,
    ordinal_metrics,
    select_cut_points,
)
from medlens.evaluation.ordinal_report import ordinal_section


def graded(n: int = 300, k: int = 4, noise: float = 1.0, seed: int = 0):
    """Grades and probabilities peaked around a noisy copy of the grade."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centre = y + rng.normal(0, noise, n)
    logits = -((np.arange(k)[None] - centre[:, None]) ** 2)
    p = np.exp(logits)
    return y, p / p.sum(1, keepdims=True)


def test_point_values_match_scikit_learn() -> None:
    y, p = graded()
    result = ordinal_metrics(y, p, n_bootstrap=0)
    pred = p.argmax(1)
    figures = result["metrics"]
    assert figures["qwk"]["value"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))
    assert figures["mae"]["value"] == pytest.approx(mean_absolute_error(y, pred))
    assert figures["mae_expected"]["value"] == pytest.approx(
        mean_absolute_error(y, expected_grade(p))
    )
    assert figures["accuracy"]["value"] == pytest.approx(np.mean(pred == y))
    for k in (1, 2, 3):
        auc = result["cut_point_auc"][f">= {k}"]["value"]
        assert auc == pytest.approx(roc_auc_score(y >= k, p[:, k:].sum(1)))
    assert np.sum(result["confusion_matrix"]) == len(y)
    assert result["decision"] == {"rule": "argmax", "cut_points": None}


def test_bootstrap_intervals_bracket_the_value_and_are_seeded() -> None:
    y, p = graded(n=120)
    first = ordinal_metrics(y, p, n_bootstrap=200, seed=3)
    assert first == ordinal_metrics(y, p, n_bootstrap=200, seed=3)
    for entry in first["metrics"].values():
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]


def test_cut_points_chosen_on_validation_beat_or_equal_argmax() -> None:
    for seed in range(4):
        y, p = graded(n=150, noise=1.2, seed=seed)
        # a model biased towards low grades: argmax under-grades, cut-points can fix it
        biased = p * np.array([2.0, 1.5, 1.0, 0.7])
        biased /= biased.sum(1, keepdims=True)
        chosen = select_cut_points(y, biased)
        assert chosen["qwk"] >= max(chosen["qwk_argmax"], chosen["qwk_median"])
        rule = "argmax" if chosen["cut_points"] else chosen["decision"]
        grades = decide_grades(biased, chosen["cut_points"], rule=rule)
        assert cohen_kappa_score(y, grades, weights="quadratic") == pytest.approx(chosen["qwk"])
        if chosen["decision"] == "cut_points":
            assert np.all(np.diff(chosen["cut_points"]) >= 0)


def test_decide_grades_counts_cut_points_at_or_below_the_expected_grade() -> None:
    p = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0.5, 0.5], [0, 0, 1.0]])  # expected 0, 1, 1.5, 2
    assert decide_grades(p, [0.5, 1.6]).tolist() == [0, 1, 1, 2]
    assert decide_grades(p, [0.5, 1.5]).tolist() == [0, 1, 2, 2]
    with pytest.raises(EvaluationError, match="increasing"):
        decide_grades(p, [1.5, 0.5])


def test_median_rule_counts_cumulative_probabilities_above_one_half() -> None:
    p = np.array([[0.4, 0.2, 0.4], [0.6, 0.1, 0.3], [0.1, 0.3, 0.6]])
    assert decide_grades(p, rule="median").tolist() == [1, 0, 2]
    assert decide_grades(p, rule="argmax").tolist() == [0, 0, 2]
    with pytest.raises(EvaluationError, match="unknown grade rule"):
        decide_grades(p, rule="mode")


def test_bad_inputs_are_typed_errors() -> None:
    with pytest.raises(EvaluationError, match="grades must be integers"):
        ordinal_metrics([0, 5], np.full((2, 3), 1 / 3), n_bootstrap=0)
    with pytest.raises(EvaluationError, match="class names"):
        ordinal_metrics([0, 1], np.full((2, 3), 1 / 3), class_names=["a"], n_bootstrap=0)


def test_report_section_shows_grades_and_figures() -> None:
    y, p = graded(n=60)
    names = ["none", "mild", "moderate", "severe"]
    result = ordinal_metrics(y, p, cut_points=[0.5, 1.5, 2.5], class_names=names, n_bootstrap=20)
    html = ordinal_section({"ordinal": result})
    assert "Quadratic-weighted kappa" in html and "none &lt; mild" in html
    assert "AUC, grade &gt;= severe" in html and "0.50, 1.50, 2.50" in html
    assert ordinal_section({"task": "multiclass"}) == ""
