"""Bootstrap: vectorised metrics match scikit-learn; intervals behave; resampling is stratified."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from medlens.errors import EvaluationError
from medlens.evaluation import classification_bootstrap, classification_metrics, percentile_interval
from medlens.evaluation.bootstrap import (
    classification_statistic,
    resample_weights,
    strata_of,
    weighted_average_precision,
    weighted_roc_auc,
)


def _delong_se(y: np.ndarray, p: np.ndarray) -> float:
    """Standard error of the AUC by DeLong et al. (1988), via midranks (Sun & Xu, 2014)."""
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    all_ranks = rankdata(np.r_[pos, neg])
    v10 = (all_ranks[:m] - rankdata(pos)) / n  # structural components of positives
    v01 = 1 - (all_ranks[m:] - rankdata(neg)) / m
    return float(np.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_ranking_metrics_match_sklearn(ties: bool, make_binary) -> None:
    y, p = make_binary(200, seed=3)
    p = np.round(p, 1) if ties else p
    w = np.random.default_rng(0).integers(0, 4, size=(5, len(y))).astype(float)
    auc = weighted_roc_auc(y.astype(bool), p, w)
    ap = weighted_average_precision(y.astype(bool), p, w)
    for i, weights in enumerate(w):
        assert auc[i] == pytest.approx(roc_auc_score(y, p, sample_weight=weights))
        assert ap[i] == pytest.approx(average_precision_score(y, p, sample_weight=weights))


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_unit_weights_reproduce_point_estimates(
    task, make_binary, make_multiclass, make_multilabel
):
    make = {"binary": make_binary, "multiclass": make_multiclass, "multilabel": make_multilabel}
    y, p = make[task](150)
    point = classification_metrics(y, p, task=task, threshold=0.45)
    values = classification_statistic(y, p, task=task, threshold=0.45)(np.ones((1, len(y))))
    for name, value in point["overall"].items():
        assert values[name][0] == pytest.approx(value, nan_ok=True), name
    for name, value in point["per_class"].items():
        assert values[f"per_class/{name}"][0] == pytest.approx(value, nan_ok=True), name


def test_intervals_contain_point_and_narrow_with_n(make_binary) -> None:
    widths = []
    for n in (150, 2400):
        y, p = make_binary(n, seed=5, separation=0.8)
        point = classification_metrics(y, p, threshold=0.5)["overall"]
        samples = classification_bootstrap(y, p, threshold=0.5, n_resamples=400, seed=0)
        for name, value in point.items():
            low, high = percentile_interval(samples[name])
            assert low <= value <= high, name
        low, high = percentile_interval(samples["roc_auc"])
        widths.append(high - low)
    assert widths[1] < widths[0] / 2.5  # 16x the cases: about 4x narrower


def test_bootstrap_se_of_auc_agrees_with_delong(make_binary) -> None:
    y, p = make_binary(600, seed=11, separation=0.8)
    samples = classification_bootstrap(y, p, n_resamples=1000, seed=0)["roc_auc"]
    assert samples.std(ddof=1) == pytest.approx(_delong_se(y, p), rel=0.15)


def test_seeded_and_deterministic(make_binary) -> None:
    y, p = make_binary(200)
    a = classification_bootstrap(y, p, n_resamples=50, seed=7)
    b = classification_bootstrap(y, p, n_resamples=50, seed=7)
    c = classification_bootstrap(y, p, n_resamples=50, seed=8)
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    assert not np.array_equal(a["roc_auc"], c["roc_auc"])


def test_stratified_resamples_keep_rare_class() -> None:
    rng = np.random.default_rng(0)
    y = np.zeros(300, dtype=int)
    y[:2] = 1  # two positives among 300
    p = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1)
    samples = classification_bootstrap(y, p, n_resamples=300, seed=0)
    assert np.isfinite(samples["roc_auc"]).all()
    assert np.isfinite(samples["sensitivity"]).all()
    for w in resample_weights(strata_of(y), 20, seed=0):
        assert (w[:, y == 1].sum(axis=1) == 2).all()
        assert (w[:, y == 0].sum(axis=1) == 298).all()


def test_multiclass_rare_class_and_per_class_samples(make_multiclass) -> None:
    y, p = make_multiclass(200, k=3)
    y[:3] = 2
    y[3:] = np.where(y[3:] == 2, 0, y[3:])  # class 2: three cases only
    samples = classification_bootstrap(y, p, task="multiclass", n_resamples=100)
    assert samples["per_class/roc_auc"].shape == (100, 3)
    assert np.isfinite(samples["per_class/roc_auc"]).all()


def test_multilabel_strata_are_label_patterns_with_rare_ones_pooled() -> None:
    y = np.array([[0, 1]] * 5 + [[1, 1]] * 6 + [[1, 0], [0, 0]])
    strata = strata_of(y)
    assert len(set(strata[:5])) == len(set(strata[5:11])) == 1
    assert strata[11] == strata[12]  # two single-case patterns share one stratum
    assert len(set(strata.tolist())) == 3
    rng = np.random.default_rng(0)
    many = rng.integers(0, 2, (200, 12))  # nearly every pattern unique
    weights = next(resample_weights(strata_of(many), 50, seed=0))
    assert weights.std(axis=0).min() > 0  # every case varies between resamples


def test_chunks_cover_all_resamples(monkeypatch) -> None:
    monkeypatch.setattr("medlens.evaluation.bootstrap._MAX_CELLS", 1000)
    blocks = list(resample_weights(np.zeros(300, dtype=int), 10, seed=0))
    assert len(blocks) == 4 and sum(len(b) for b in blocks) == 10


def test_percentile_interval_of_undefined_metric_is_nan() -> None:
    low, high = percentile_interval(np.full((10, 2), np.nan))
    assert np.isnan(low).all() and np.isnan(high).all()
    with pytest.raises(EvaluationError):
        percentile_interval(np.zeros(3), confidence=1.5)
    with pytest.raises(EvaluationError):
        list(resample_weights(np.zeros(3, dtype=int), 0))
