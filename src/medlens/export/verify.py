"""Numeric verification of an exported model against its PyTorch reference.

fp32 exports must reproduce the logits (max absolute difference); int8 exports must keep
the decisions (label agreement) and the ranking (AUC change on labelled, held-out images).
An ordinal model's decisions are its grades, decided by the card's grade rule (argmax,
median or cut-points on the expected grade), not the argmax of its outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch

from medlens.config import Task
from medlens.errors import ExportError

__all__ = ["Tolerance", "Verification", "collect_logits", "verify"]

Threshold = float | list[float] | None
LogitFn = Callable[[torch.Tensor], torch.Tensor]


class GradeRule(Protocol):
    """How an ordinal model's grade is decided (the card's ``ordinal`` section)."""

    decision: str
    cut_points: list[float] | None


@dataclass(frozen=True)
class Tolerance:
    """What an export must reach to be written.

    Attributes:
        max_abs_diff: fp32 only: largest allowed |logit difference| to PyTorch.
        min_label_agreement: int8: fraction of images whose predicted label is unchanged.
        max_auc_drop: int8: largest allowed fall of the AUC (needs labelled images).
        min_dice_agreement: segmentation, fp32 and int8: least Dice overlap, per class,
            between the PyTorch and the exported label maps.
    """

    max_abs_diff: float = 1e-3
    min_label_agreement: float = 0.97
    max_auc_drop: float = 0.005
    min_dice_agreement: float = 0.99


@dataclass(frozen=True)
class Verification:
    """The outcome of one verification, as written to ``export.json``."""

    precision: Literal["fp32", "int8"]
    passed: bool
    n_images: int
    max_abs_diff: float
    label_agreement: float
    auc_reference: float | None
    auc_exported: float | None
    auc_change: float | None
    failures: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failures"] = list(self.failures)
        return data


def verify(
    reference: LogitFn | np.ndarray,
    exported: LogitFn,
    batches: Iterable[torch.Tensor],
    *,
    precision: Literal["fp32", "int8"],
    labels: np.ndarray | None = None,
    task: Task = "binary",
    threshold: Threshold = 0.5,
    temperature: float = 1.0,
    tolerance: Tolerance = Tolerance(),
    grade_rule: GradeRule | None = None,
) -> Verification:
    """Run both models on the same batches and judge the exported one.

    fp32 is judged on the logits' max absolute difference, int8 on label agreement and,
    when ``labels`` are given, on the AUC change. Both are always reported. ``reference``
    is the PyTorch model or its logits on ``batches``, computed once beforehand. With a
    ``grade_rule`` (ordinal models) the label agreement is that of the decided grades.
    """
    batches = list(batches)
    ref = reference if isinstance(reference, np.ndarray) else collect_logits(reference, batches)
    out = collect_logits(exported, batches)
    if ref.shape != out.shape:
        raise ExportError(f"exported model gives logits {out.shape}, PyTorch {ref.shape}")
    ref_p = class_probabilities(ref, task, temperature)
    out_p = class_probabilities(out, task, temperature)
    ref_labels = decide(ref_p, task, threshold, grade_rule)
    agreement = float(np.mean(ref_labels == decide(out_p, task, threshold, grade_rule)))
    auc_ref = auc_or_none(labels, ref_p, task)
    auc_out = auc_or_none(labels, out_p, task)
    change = None if auc_ref is None or auc_out is None else auc_out - auc_ref
    diff = float(np.max(np.abs(ref - out)))

    failures: list[str] = []
    if precision == "fp32" and not diff <= tolerance.max_abs_diff:
        failures.append(f"max |logit difference| {diff:.3g} > {tolerance.max_abs_diff:.3g}")
    if precision == "int8":
        if agreement < tolerance.min_label_agreement:
            failures.append(
                f"label agreement {agreement:.4f} < {tolerance.min_label_agreement:.4f}"
            )
        if change is not None and change < -tolerance.max_auc_drop:
            failures.append(f"AUC fell by {-change:.4f} > {tolerance.max_auc_drop:.4f}")
    return Verification(
        precision=precision,
        passed=not failures,
        n_images=len(ref),
        max_abs_diff=diff,
        label_agreement=agreement,
        auc_reference=auc_ref,
        auc_exported=auc_out,
        auc_change=change,
        failures=tuple(failures),
    )


def class_probabilities(logits: np.ndarray, task: Task, temperature: float) -> np.ndarray:
    from medlens.training.outputs import probabilities

    return probabilities(torch.from_numpy(logits), task, temperature).double().numpy()


def collect_logits(model: LogitFn, batches: Iterable[torch.Tensor]) -> np.ndarray:
    """Concatenated float64 logits of ``model`` over ``batches`` (no gradients)."""
    outputs = []
    with torch.inference_mode():
        for batch in batches:
            logits = model(batch)
            outputs.append(torch.as_tensor(logits).detach().cpu().double().numpy())
    if not outputs:
        raise ExportError("no images to verify the export on")
    return np.concatenate(outputs)


def decide(
    probs: np.ndarray, task: Task, threshold: Threshold, grade_rule: GradeRule | None = None
) -> np.ndarray:
    """Predicted labels: the grade by ``grade_rule`` (ordinal), argmax (multiclass) or
    probability >= threshold (default 0.5)."""
    if grade_rule is not None:
        from medlens.evaluation.ordinal import decide_grades

        rule = grade_rule.decision
        return decide_grades(
            probs, grade_rule.cut_points, rule="argmax" if rule == "cut_points" else rule
        )
    if task == "multiclass":
        return probs.argmax(axis=1)
    cut = np.asarray(0.5 if threshold is None else threshold, dtype=np.float64)
    return probs[:, 1] >= cut if task == "binary" else probs >= cut


def auc_or_none(labels: np.ndarray | None, probs: np.ndarray, task: Task) -> float | None:
    """Macro AUC (one-vs-rest for multiclass); None without labels or when undefined."""
    if labels is None:
        return None
    from medlens.training.loop import auc_score

    labels = np.asarray(labels)
    if len(labels) != len(probs):
        raise ExportError(f"{len(labels)} labels for {len(probs)} verification images")
    value = auc_score(probs, labels, task)
    return value if math.isfinite(value) else None
