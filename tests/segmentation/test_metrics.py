"""Dice and HD95 on shapes with known answers; summaries with bootstrap CIs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medlens.errors import EvaluationError
from medlens.evaluation.segmentation import case_metrics, evaluate_segmentations, summarize_cases

pytest.importorskip("monai")


def _cube(shape, start, size, value=1):
    out = np.zeros(shape, dtype=np.uint8)
    out[tuple(slice(s, s + size) for s in start)] = value
    return out


def test_shifted_cube_dice_and_hd95_in_mm() -> None:
    truth = _cube((20, 20, 20), (5, 5, 5), 6)
    shifted = _cube((20, 20, 20), (7, 5, 5), 6)  # 2 voxels along axis 0
    scores = case_metrics(shifted, truth, num_classes=2)
    assert scores["dice"][0] == pytest.approx(2 * 4 * 36 / (2 * 216))
    assert scores["hd95"][0] == pytest.approx(2.0)
    # the same shift with 3 mm slices is 6 mm
    scaled = case_metrics(shifted, truth, num_classes=2, spacing=(3.0, 1.0, 1.0))
    assert scaled["hd95"][0] == pytest.approx(6.0)
    assert case_metrics(truth, truth, num_classes=2) == {"dice": [1.0], "hd95": [0.0]}


def test_empty_structures_follow_the_convention() -> None:
    truth = _cube((10, 10), (2, 2), 4)
    empty = np.zeros_like(truth)
    both = case_metrics(empty, empty, num_classes=2)
    missed = case_metrics(empty, truth, num_classes=2)
    assert both == {"dice": [1.0], "hd95": [0.0]}
    assert missed["dice"] == [0.0] and math.isnan(missed["hd95"][0])
    with pytest.raises(EvaluationError, match="shape"):
        case_metrics(truth[:5], truth, num_classes=2)


def test_summary_means_skip_undefined_and_give_cis() -> None:
    cases = [
        {"dice": [0.9, 0.8], "hd95": [1.0, 2.0]},
        {"dice": [0.7, 0.0], "hd95": [3.0, float("nan")]},
        {"dice": [0.8, 0.6], "hd95": [2.0, 4.0]},
    ]
    summary = summarize_cases(cases, ["a", "b"], n_bootstrap=300, seed=1)
    a, b = summary["per_class"]["a"], summary["per_class"]["b"]
    assert a["dice"]["value"] == pytest.approx(0.8)
    assert b["hd95"]["value"] == pytest.approx(3.0) and b["hd95_undefined_cases"] == 1
    assert a["dice"]["ci_low"] <= 0.8 <= a["dice"]["ci_high"]
    assert 0.7 - 1e-9 <= a["dice"]["ci_low"] and a["dice"]["ci_high"] <= 0.9 + 1e-9
    mean = summary["metrics"]["mean_dice"]["value"]
    assert mean == pytest.approx(np.mean([0.85, 0.35, 0.7]))
    again = summarize_cases(cases, ["a", "b"], n_bootstrap=300, seed=1)
    assert again == summary  # seeded


def test_evaluate_segmentations_json_ready() -> None:
    truth = _cube((12, 12), (2, 2), 5) + _cube((12, 12), (8, 8), 3, value=2)
    result = evaluate_segmentations(
        [("c1", truth, truth, (1.0, 1.0)), ("c2", np.zeros_like(truth), truth, None)],
        ["background", "x", "y"],
        n_bootstrap=0,
    )
    assert result["class_names"] == ["x", "y"] and result["n_cases"] == 2
    assert result["cases"][1]["hd95"] == {"x": None, "y": None}
    assert result["per_class"]["x"]["dice"] == {"value": 0.5, "ci_low": None, "ci_high": None}
    with pytest.raises(EvaluationError, match="background"):
        evaluate_segmentations([], ["background"])
