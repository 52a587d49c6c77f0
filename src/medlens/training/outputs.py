"""How logits become probabilities and targets become loss inputs, per task.

Binary models have one logit (sigmoid); multi-class models one per class (softmax);
multi-label models one per label (independent sigmoids); ordinal models one per grade
(softmax; the ordinal head outputs grade log-probabilities). Probabilities are always
reported per class: binary ``[1 - p, p]``.
"""

from __future__ import annotations

import torch

from medlens.config import Task

__all__ = ["num_outputs", "prepare_target", "probabilities"]


def num_outputs(task: Task, num_classes: int) -> int:
    """Width of the model head."""
    return 1 if task == "binary" else num_classes


def prepare_target(target: torch.Tensor, task: Task) -> torch.Tensor:
    """Integer labels (binary, multiclass) or 0/1 vectors (multilabel) as the loss wants them."""
    if task == "binary":
        return target.reshape(-1, 1).float()
    if task in ("multiclass", "ordinal"):
        return target.reshape(-1).long()
    return target.float()


def probabilities(logits: torch.Tensor, task: Task, temperature: float = 1.0) -> torch.Tensor:
    """Per-class probabilities ``(N, num_classes)`` from logits, after temperature scaling."""
    scaled = logits.double() / temperature  # float64: rows sum to 1 to machine precision
    if task in ("multiclass", "ordinal"):
        return scaled.softmax(-1)
    p = scaled.sigmoid()
    return torch.cat([1 - p, p], dim=1) if task == "binary" else p
