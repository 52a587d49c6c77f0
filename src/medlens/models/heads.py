"""Classifier heads a registry model can be built with (``create_model(..., head=...)``).

``linear``: the model's own ``nn.Linear`` (one logit per class). ``ordinal``: a
rank-consistent head for ``K`` ordered grades, as in CORAL (Cao et al. 2020): one shared
weight vector gives a score ``s`` and ``K - 1`` biases give the cumulative logits
``z_k = s + b_k`` of ``P(grade > k)``. The biases are kept in decreasing order
(``b_k = b_0 - sum softplus``), so the cumulative probabilities never increase with ``k``.
The head returns per-grade log-probabilities, so a softmax of its output gives the grade
probabilities and every consumer of ``(B, K)`` logits works unchanged.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HEADS", "Head", "OrdinalHead", "grade_log_probs"]

Head = Literal["linear", "ordinal"]
HEADS: tuple[str, ...] = ("linear", "ordinal")
MIN_GAP = 1e-4  # smallest distance between two biases: keeps every grade probability > 0


class OrdinalHead(nn.Module):
    """``(B, in_features)`` features to ``(B, num_classes)`` grade log-probabilities."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"an ordinal head needs at least 2 grades, got {num_classes}")
        self.in_features, self.out_features = in_features, num_classes
        self.score = nn.Linear(in_features, 1, bias=False)
        self.first_bias = nn.Parameter(torch.zeros(1))
        # softplus(0.54) ~ 1: initial cut-points one logit apart, centred on 0
        self.gaps = nn.Parameter(torch.full((num_classes - 2,), 0.54))
        with torch.no_grad():
            self.first_bias.fill_((num_classes - 2) / 2)

    def biases(self) -> torch.Tensor:
        """The ``K - 1`` decreasing biases ``b_k``."""
        steps = F.softplus(self.gaps) + MIN_GAP
        return torch.cat([self.first_bias, self.first_bias - steps.cumsum(0)])

    def cumulative_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, K - 1)`` logits of ``P(grade > k)``, non-increasing along the last axis."""
        return self.score(x) + self.biases()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grade_log_probs(self.cumulative_logits(x))


def grade_log_probs(cumulative: torch.Tensor) -> torch.Tensor:
    """Per-grade log-probabilities from non-increasing cumulative logits ``(B, K - 1)``.

    ``p_0 = 1 - σ(z_0)``, ``p_k = σ(z_{k-1}) - σ(z_k)``, ``p_{K-1} = σ(z_{K-2})``, with
    ``log(σ(a) - σ(b)) = logσ(a) + logσ(-b) + log(1 - e^(b - a))`` for ``a > b``.
    """
    first = F.logsigmoid(-cumulative[:, :1])
    last = F.logsigmoid(cumulative[:, -1:])
    a, b = cumulative[:, :-1], cumulative[:, 1:]
    gap = (a - b).clamp(min=MIN_GAP)
    middle = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(-gap))
    return torch.cat([first, middle, last], dim=1)


def attach_head(model: nn.Module, head: str) -> None:
    """Replace ``model``'s final layer by ``head`` (same input width and number of classes)."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r} (known: {', '.join(HEADS)})")
    if head == "linear":
        return
    old = model.get_classifier()  # type: ignore[operator]
    model.set_submodule(model.classifier_name, OrdinalHead(old.in_features, old.out_features))  # type: ignore[attr-defined]
