"""Point estimates: hand-computed small cases and agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from medlens.errors import EvaluationError
from medlens.evaluation import METRICS, classification_metrics


def test_binary_by_hand() -> None:
    y = [0, 0, 1, 1, 1]
    p = [0.1, 0.6, 0.4, 0.8, 0.9]  # at 0.5: tp 2, fp 1, fn 1, tn 1
    result = classification_metrics(y, p, threshold=0.5)
    m = result["overall"]
    assert result["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(1 / 2)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["npv"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["balanced_accuracy"] == pytest.approx(7 / 12)
    assert m["roc_auc"] == pytest.approx(5 / 6)  # 5 of 6 (positive, negative) pairs in order
    assert list(m) == list(METRICS)


def test_threshold_is_inclusive_and_two_columns_accepted() -> None:
    y = np.array([0, 1, 1])
    p = np.array([0.2, 0.5, 0.7])
    assert classification_metrics(y, p, threshold=0.5)["overall"]["sensitivity"] == 1.0
    two = classification_metrics(y, np.c_[1 - p, p], threshold=0.5)
    assert two == classification_metrics(y, p, threshold=0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_matches_sklearn(seed: int, make_binary) -> None:
    y, p = make_binary(300, seed=seed)
    threshold = 0.4
    pred = (p >= threshold).astype(int)
    m = classification_metrics(y, p, threshold=threshold)["overall"]
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert m["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["npv"] == pytest.approx(skm.precision_score(y, pred, pos_label=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))


def test_multiclass_matches_sklearn(make_multiclass) -> None:
    y, p = make_multiclass(400, k=4)
    pred = p.argmax(axis=1)
    result = classification_metrics(y, p, task="multiclass")
    m = result["overall"]
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    onehot = np.eye(4)[y]
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(onehot, p, average="macro"))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    per_class_auc = [skm.roc_auc_score(y == k, p[:, k]) for k in range(4)]
    assert result["per_class"]["roc_auc"] == pytest.approx(per_class_auc)
    assert result["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()


def test_multilabel_matches_sklearn(make_multilabel) -> None:
    y, p = make_multilabel(300, k=3)
    thresholds = [0.3, 0.5, 0.7]
    pred = (p >= thresholds).astype(int)
    result = classification_metrics(y, p, task="multilabel", threshold=thresholds)
    m = result["overall"]
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, average="macro"))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p, average="macro"))
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["accuracy"] == pytest.approx(1 - skm.hamming_loss(y, pred))
    assert np.array(result["confusion_matrix"]).shape == (3, 2, 2)


def test_undefined_metrics_are_nan_not_errors() -> None:
    m = classification_metrics([1, 1, 1], [0.2, 0.7, 0.9])["overall"]
    assert np.isnan(m["specificity"]) and np.isnan(m["roc_auc"]) and np.isnan(m["pr_auc"])
    assert m["npv"] == 0.0  # the one negative call is wrong
    assert m["sensitivity"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("y", "p", "task", "match"),
    [
        ([0, 1], [0.5], "binary", "same"),
        ([0, 1], [0.5, 1.5], "binary", "probabilities"),
        ([0, 2], [0.5, 0.5], "binary", "0 or 1"),
        ([0.5, 1], [0.5, 0.5], "binary", "integer"),
        ([0, 3], [[0.5, 0.5], [0.2, 0.8]], "multiclass", "0..1"),
        ([0, 1], [[0.5, 0.6], [0.2, 0.8]], "multiclass", "sum to 1"),
        ([[0, 1]], [[0.5, 0.5], [0.2, 0.8]], "multilabel", "same"),
        ([0, 1], [0.5, 0.5], "regression", "unknown task"),
    ],
)
def test_bad_inputs_raise(y, p, task, match) -> None:
    with pytest.raises(EvaluationError, match=match):
        classification_metrics(y, p, task=task)


def test_threshold_per_label_must_fit(make_multilabel) -> None:
    y, p = make_multilabel(20, k=3)
    with pytest.raises(EvaluationError, match="one per label"):
        classification_metrics(y, p, task="multilabel", threshold=[0.5, 0.5])
