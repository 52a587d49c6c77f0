"""Calibration: ECE, reliability diagram, Brier score, temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss

from medlens.errors import EvaluationError
from medlens.evaluation import (
    TemperatureScaler,
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    logits_to_probs,
    reliability_diagram,
)


def _calibrated_binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose sigmoid is the true probability of each label."""
    rng = np.random.default_rng(seed)
    logits = 2.0 * rng.normal(size=n)
    y = (rng.random(n) < logits_to_probs(logits)).astype(int)
    return logits, y


def _calibrated_multiclass(n: int, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = 2.0 * rng.normal(size=(n, k))
    probs = logits_to_probs(logits, "multiclass")
    y = (rng.random((n, 1)) > probs.cumsum(axis=1)).sum(axis=1)
    return logits, np.minimum(y, k - 1)


def test_reliability_diagram_by_hand() -> None:
    y = [0, 1, 1, 1]
    p = [0.1, 0.2, 0.8, 0.9]
    diagram = reliability_diagram(y, p, n_bins=2)
    assert diagram.count == [2, 2]
    assert diagram.confidence == pytest.approx([0.15, 0.85])
    assert diagram.frequency == pytest.approx([0.5, 1.0])
    assert diagram.ece == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)
    assert np.isnan(reliability_diagram(y, p, n_bins=10).frequency[5])  # an empty bin


def test_calibrated_data_has_small_ece_and_overconfident_large() -> None:
    logits, y = _calibrated_binary(20000)
    assert expected_calibration_error(y, logits_to_probs(logits)) < 0.02
    assert expected_calibration_error(y, logits_to_probs(4 * logits)) > 0.08
    mlogits, my = _calibrated_multiclass(20000)
    probs = logits_to_probs(mlogits, "multiclass")
    assert expected_calibration_error(my, probs, task="multiclass") < 0.02


def test_brier_score_matches_definitions() -> None:
    logits, y = _calibrated_binary(500)
    p = logits_to_probs(logits)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p))
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    expected = ((0.3**2 + 0.2**2 + 0.1**2) + (0.1**2 + 0.9**2 + 0.8**2)) / 2
    assert brier_score([0, 1], probs, task="multiclass") == pytest.approx(expected)
    assert brier_score([[1, 0]], [[0.6, 0.2]], task="multilabel") == pytest.approx(0.1)


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_temperature_recovers_the_scale_and_reduces_nll(scale: float) -> None:
    logits, y = _calibrated_multiclass(4000)
    distorted = scale * logits
    t = fit_temperature(distorted, y, task="multiclass")
    assert t == pytest.approx(scale, rel=0.1)
    before = log_loss(y, logits_to_probs(distorted, "multiclass"))
    after = log_loss(y, logits_to_probs(apply_temperature(distorted, t), "multiclass"))
    assert after < before


def test_binary_single_logit_and_two_logits_agree() -> None:
    logits, y = _calibrated_binary(3000)
    single = fit_temperature(3 * logits, y)
    double = fit_temperature(np.c_[np.zeros_like(logits), 3 * logits], y)
    assert single == pytest.approx(3.0, rel=0.1)
    assert double == pytest.approx(single, rel=1e-4)
    scaler = TemperatureScaler().fit(3 * logits, y)
    before = expected_calibration_error(y, logits_to_probs(3 * logits))
    assert expected_calibration_error(y, scaler.predict_proba(3 * logits)) < before / 2


def test_multilabel_temperature() -> None:
    logits, y = _calibrated_binary(3000)
    stacked = np.c_[logits, logits[::-1]]
    labels = np.c_[y, y[::-1]]
    assert fit_temperature(2 * stacked, labels, task="multilabel") == pytest.approx(2.0, rel=0.1)


def test_fit_leaves_torch_state_alone() -> None:
    threads, grad = torch.get_num_threads(), torch.is_grad_enabled()
    logits, y = _calibrated_binary(100)
    fit_temperature(logits, y)
    assert (torch.get_num_threads(), torch.is_grad_enabled()) == (threads, grad)


def test_extreme_logits_give_probabilities_without_warnings() -> None:
    probs = logits_to_probs(np.array([-1000.0, 0.0, 1000.0]))
    assert probs.tolist() == [0.0, 0.5, 1.0]
    rows = logits_to_probs(np.array([[1000.0, -1000.0, 0.0]]), "multiclass")
    assert rows.sum() == pytest.approx(1.0)


def test_calibration_errors() -> None:
    with pytest.raises(EvaluationError, match="positive"):
        apply_temperature([1.0], 0.0)
    with pytest.raises(EvaluationError, match="do not fit"):
        fit_temperature(np.zeros((4, 3)), [0, 1, 0, 1], task="binary")
    with pytest.raises(EvaluationError, match="labels"):
        fit_temperature(np.zeros(4), [0, 1])
    with pytest.raises(EvaluationError, match="n_bins"):
        reliability_diagram([0, 1], [0.2, 0.8], n_bins=0)


def test_temperature_stays_within_its_bounds_for_biased_logits() -> None:
    """Logits biased by class weights: NLL keeps falling as T grows; the fit stops at the
    upper bound instead of flattening every probability to 0.5 (T was 1.7e6 in a real run)."""
    from medlens.evaluation.calibration import TEMPERATURE_BOUNDS, fit_temperature

    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.1).astype(int)
    logits = (8.0 + rng.normal(0, 1, 400) + 0.5 * y).reshape(-1, 1)  # all called positive
    temperature = fit_temperature(logits, y, task="binary")
    assert TEMPERATURE_BOUNDS[0] <= temperature <= TEMPERATURE_BOUNDS[1]
    assert temperature == pytest.approx(TEMPERATURE_BOUNDS[1], rel=1e-3)
