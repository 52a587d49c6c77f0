"""Calibration: reliability diagrams, ECE, Brier score and temperature scaling.

What is calibrated depends on the task:

* binary: the probability of the positive class against the observed positive rate;
* multiclass: the top-label confidence against accuracy (Guo et al., 2017);
* multilabel: every (case, label) probability against the label, pooled.

Temperature scaling divides the logits by one scalar ``T > 0`` fitted on validation
logits by minimising the negative log-likelihood (L-BFGS on ``log T``). Binary logits may
be one column (sigmoid) or two (softmax); multilabel logits use a sigmoid per label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, softmax
from sklearn.metrics import brier_score_loss

from medlens.errors import EvaluationError
from medlens.evaluation._checks import Task, check_inputs, check_task

DEFAULT_BINS = 15


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Equal-width bins over [0, 1]: mean predicted probability and observed frequency.

    Empty bins have ``count == 0`` and ``nan`` confidence and frequency.
    """

    bin_edges: list[float]
    confidence: list[float]
    frequency: list[float]
    count: list[int]

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean of |frequency - confidence|."""
        count = np.asarray(self.count, dtype=np.float64)
        gap = np.abs(np.asarray(self.frequency) - np.asarray(self.confidence))
        return float(np.sum(np.where(count > 0, gap, 0.0) * count) / count.sum())

    def to_dict(self) -> dict[str, list]:
        return asdict(self)


def reliability_diagram(
    y_true: ArrayLike, probs: ArrayLike, *, task: str = "binary", n_bins: int = DEFAULT_BINS
) -> ReliabilityDiagram:
    """Reliability-diagram data (see the module docstring for what is compared)."""
    if n_bins < 1:
        raise EvaluationError(f"n_bins must be at least 1, got {n_bins}")
    confidence, outcome = _confidence_and_outcome(y_true, probs, check_task(task))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(idx, weights=confidence, minlength=n_bins) / count
        freq = np.bincount(idx, weights=outcome, minlength=n_bins) / count
    return ReliabilityDiagram(edges.tolist(), conf.tolist(), freq.tolist(), count.tolist())


def expected_calibration_error(
    y_true: ArrayLike, probs: ArrayLike, *, task: str = "binary", n_bins: int = DEFAULT_BINS
) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins."""
    return reliability_diagram(y_true, probs, task=task, n_bins=n_bins).ece


def brier_score(y_true: ArrayLike, probs: ArrayLike, *, task: str = "binary") -> float:
    """Brier score: mean squared error of the probabilities (multiclass: summed over classes)."""
    task_ = check_task(task)
    y, p = check_inputs(y_true, probs, task_)
    if task_ == "binary":
        return float(brier_score_loss(y, p, labels=[0, 1]))
    if task_ == "multiclass":
        return float(brier_score_loss(y, p, labels=np.arange(p.shape[1]), scale_by_half=False))
    return float(np.mean((p - y) ** 2))


def logits_to_probs(logits: ArrayLike, task: str = "binary") -> np.ndarray:
    """Probabilities from logits: sigmoid (one binary column, multilabel) or softmax.

    Binary tasks return the positive-class probability ``(n,)``.
    """
    task_ = check_task(task)
    z = _check_logits(logits, task_)
    probs = expit(z) if task_ == "multilabel" or z.shape[1] == 1 else softmax(z, axis=1)
    return probs[:, -1] if task_ == "binary" else probs


def apply_temperature(logits: ArrayLike, temperature: float) -> np.ndarray:
    """Logits divided by ``temperature`` (which must be positive)."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise EvaluationError(f"temperature must be positive and finite, got {temperature}")
    return np.asarray(logits, dtype=np.float64) / temperature


#: The temperatures searched: a fit outside them means logits that scaling cannot calibrate
#: (e.g. biased by class weights), and flattening every probability to 0.5 helps no reader.
TEMPERATURE_BOUNDS = (0.05, 20.0)


def fit_temperature(
    logits: ArrayLike, y_true: ArrayLike, *, task: str = "binary", max_iter: int = 200
) -> float:
    """The temperature minimising the validation NLL of ``logits / T``, searched on log T
    within :data:`TEMPERATURE_BOUNDS` (bounded Brent search)."""
    import torch
    import torch.nn.functional as F
    from scipy.optimize import minimize_scalar

    task_ = check_task(task)
    z = torch.from_numpy(_check_logits(logits, task_))
    y = np.asarray(y_true)
    if len(y) != len(z):
        raise EvaluationError(f"{len(z)} logits but {len(y)} labels for temperature scaling")
    softmax = task_ == "multiclass" or (task_ == "binary" and z.shape[1] == 2)
    target = torch.as_tensor(y, dtype=torch.long if softmax else torch.float64)
    if task_ == "binary" and not softmax:
        target = target.reshape(-1, 1)

    def nll(log_t: float) -> float:
        scaled = z / float(np.exp(log_t))
        if softmax:
            return float(F.cross_entropy(scaled, target))
        return float(F.binary_cross_entropy_with_logits(scaled, target))

    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(nll, bounds=(low, high), method="bounded",
                             options={"maxiter": max_iter, "xatol": 1e-6})  # fmt: skip
    temperature = float(np.exp(result.x))
    if not np.isfinite(temperature):
        raise EvaluationError("temperature scaling diverged: are the logits separable?")
    return temperature


class TemperatureScaler:
    """Fit a temperature on validation logits, then turn logits into calibrated probabilities.

    >>> scaler = TemperatureScaler(task="multiclass").fit(val_logits, val_labels)
    >>> probs = scaler.predict_proba(test_logits)
    """

    def __init__(self, task: str = "binary") -> None:
        self.task = check_task(task)
        self.temperature: float = 1.0

    def fit(self, logits: ArrayLike, y_true: ArrayLike) -> TemperatureScaler:
        self.temperature = fit_temperature(logits, y_true, task=self.task)
        return self

    def predict_proba(self, logits: ArrayLike) -> np.ndarray:
        return logits_to_probs(apply_temperature(logits, self.temperature), self.task)


def _check_logits(logits: ArrayLike, task: Task) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 1 and task == "binary":
        z = z[:, None]
    if z.ndim != 2 or len(z) == 0 or (task == "binary" and z.shape[1] > 2):
        raise EvaluationError(f"logits of shape {z.shape} do not fit a {task} task")
    if not np.all(np.isfinite(z)):
        raise EvaluationError("logits must be finite")
    return z


def _confidence_and_outcome(
    y_true: ArrayLike, probs: ArrayLike, task: Task
) -> tuple[np.ndarray, np.ndarray]:
    y, p = check_inputs(y_true, probs, task)
    if task == "binary":
        return p, y.astype(np.float64)
    if task == "multiclass":
        return p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    return p.reshape(-1), y.reshape(-1).astype(np.float64)
