"""evaluate_predictions: the content of metrics.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medlens.errors import EvaluationError
from medlens.evaluation import (
    Evaluator,
    classification_metrics,
    evaluate_predictions,
    expected_calibration_error,
    write_metrics,
)

KEYS = {
    "schema_version", "task", "class_names", "n_cases", "class_counts", "decision",
    "bootstrap", "metrics", "per_class", "confusion_matrix", "curves", "calibration",
}  # fmt: skip


def test_binary_content_is_complete_and_json_ready(make_binary) -> None:
    y, p = make_binary(300)
    m = evaluate_predictions(
        y, p, class_names=["normal", "pneumonia"], threshold=0.4, n_bootstrap=200
    )
    assert set(m) == KEYS
    json.dumps(m, allow_nan=False)  # plain JSON: no numpy types, no NaN
    assert m["n_cases"] == 300 and sum(m["class_counts"].values()) == 300
    assert m["decision"] == {"rule": "probability >= threshold", "threshold": 0.4}
    point = classification_metrics(y, p, threshold=0.4)["overall"]
    for name, entry in m["metrics"].items():
        assert entry["value"] == pytest.approx(point[name], abs=1e-6)
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    assert np.sum(m["confusion_matrix"]["counts"]) == 300
    assert m["calibration"]["ece"] == pytest.approx(expected_calibration_error(y, p), abs=1e-6)
    roc = m["curves"]["roc"]["pneumonia"]
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
    assert roc["threshold"][0] is None  # scikit-learn's +inf: "nothing is positive"


def test_same_seed_same_output_other_seed_other_intervals(make_binary) -> None:
    y, p = make_binary(200)
    a = evaluate_predictions(y, p, n_bootstrap=100, seed=3)
    assert a == evaluate_predictions(y, p, n_bootstrap=100, seed=3)
    b = evaluate_predictions(y, p, n_bootstrap=100, seed=4)
    assert a["metrics"]["roc_auc"]["value"] == b["metrics"]["roc_auc"]["value"]
    assert a["metrics"]["roc_auc"]["ci_low"] != b["metrics"]["roc_auc"]["ci_low"]


def test_curves_are_compacted(make_binary) -> None:
    y, p = make_binary(5000)
    m = evaluate_predictions(y, p, n_bootstrap=0)
    assert len(m["curves"]["roc"]["positive"]["fpr"]) <= 200
    assert len(m["curves"]["pr"]["positive"]["recall"]) <= 200
    assert m["metrics"]["roc_auc"]["ci_low"] is None  # no bootstrap, no interval


def test_multiclass_and_multilabel(make_multiclass, make_multilabel) -> None:
    y, p = make_multiclass(200, k=3)
    m = evaluate_predictions(y, p, task="multiclass", class_names=["a", "b", "c"], n_bootstrap=50)
    assert m["decision"]["rule"] == "argmax"
    assert set(m["per_class"]) == {"a", "b", "c"} and set(m["curves"]["roc"]) == {"a", "b", "c"}
    assert np.array(m["confusion_matrix"]["counts"]).shape == (3, 3)
    y, p = make_multilabel(200, k=2)
    m = evaluate_predictions(y, p, task="multilabel", threshold=[0.3, 0.6], n_bootstrap=50)
    assert m["class_counts"] == {"class_0": int(y[:, 0].sum()), "class_1": int(y[:, 1].sum())}
    assert m["per_class"]["class_1"]["sensitivity"]["ci_high"] is not None
    json.dumps(m, allow_nan=False)


def test_calibration_before_and_after_temperature() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(int)  # calibrated by construction
    sharp = p**3 / (p**3 + (1 - p) ** 3)  # over-confident version of p
    m = evaluate_predictions(y, p, raw_probs=sharp, temperature=3.0, n_bootstrap=0)
    cal = m["calibration"]
    assert cal["temperature"] == 3.0
    assert cal["before_temperature"]["ece"] > cal["ece"]
    assert sum(cal["reliability"]["count"]) == 2000


def test_one_class_only_still_evaluates() -> None:
    m = evaluate_predictions([1, 1, 1, 1], [0.2, 0.6, 0.7, 0.9], n_bootstrap=20)
    assert m["metrics"]["roc_auc"]["value"] is None
    assert m["metrics"]["sensitivity"]["value"] == 0.75
    assert m["curves"] == {"roc": {}, "pr": {}}


def test_evaluator_accumulates_batches(make_binary) -> None:
    y, p = make_binary(120)
    evaluator = Evaluator(task="binary", n_bootstrap=30, threshold=0.5)
    for start in range(0, 120, 50):
        evaluator.update(y[start : start + 50], p[start : start + 50])
    assert evaluator.compute() == evaluate_predictions(y, p, n_bootstrap=30, threshold=0.5)
    evaluator.reset()
    with pytest.raises(EvaluationError, match="nothing to evaluate"):
        evaluator.compute()


def test_write_metrics_is_atomic_json(tmp_path, make_binary) -> None:
    y, p = make_binary(100)
    m = evaluate_predictions(y, p, n_bootstrap=20)
    path = write_metrics(tmp_path / "eval" / "test" / "metrics.json", m)
    assert json.loads(path.read_text()) == m
    assert [f.name for f in path.parent.iterdir()] == ["metrics.json"]  # no temp file left


def test_class_names_must_fit(make_binary) -> None:
    y, p = make_binary(10)
    with pytest.raises(EvaluationError, match="class names"):
        evaluate_predictions(y, p, class_names=["only one"])
    with pytest.raises(EvaluationError, match="class names"):
        evaluate_predictions(y, p, class_names=["same", "same"])
