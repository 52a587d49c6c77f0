"""Losses for binary, multi-class, multi-label and ordinal classification."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medlens.config import LossConfig, Task
from medlens.errors import ConfigError

__all__ = ["BCELoss", "CoralLoss", "FocalLoss", "build_loss", "class_weights_from_counts"]


def class_weights_from_counts(counts: Sequence[int]) -> list[float]:
    """'balanced' weights ``n / (k * count)`` as in scikit-learn."""
    total, k = float(sum(counts)), len(counts)
    if min(counts) <= 0:
        raise ConfigError("class_weights 'balanced' needs at least one example of every class")
    return [total / (k * c) for c in counts]


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): ``(1 - p_t)^gamma`` times the cross-entropy.

    ``multiclass`` uses softmax over the last axis and integer targets; otherwise sigmoid
    logits with float targets of the same shape. ``weight`` is per class.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        *,
        multiclass: bool,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.gamma, self.multiclass, self.label_smoothing = gamma, multiclass, label_smoothing
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.multiclass:
            ce = F.cross_entropy(
                logits,
                target,
                weight=self.weight,
                reduction="none",
                label_smoothing=self.label_smoothing,
            )
            p_t = logits.softmax(-1).gather(-1, target[:, None]).squeeze(-1)
        else:
            smooth = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
            ce = F.binary_cross_entropy_with_logits(logits, smooth, reduction="none")
            p = logits.sigmoid()
            p_t = p * target + (1 - p) * (1 - target)
            if self.weight is not None:
                ce = ce * _binary_weight(self.weight, target)
        return ((1 - p_t).clamp(min=0) ** self.gamma * ce).mean()


def _binary_weight(weight: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-element weights of a sigmoid loss."""
    if target.shape[-1] == 1:  # binary: one logit, weights for (negative, positive)
        return weight[0] + (weight[1] - weight[0]) * target
    return weight  # multilabel: one weight per label, broadcast over the batch


class BCELoss(nn.Module):
    """Binary cross-entropy on logits with label smoothing and class weights."""

    def __init__(self, *, weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        smooth = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        weight = None if self.weight is None else _binary_weight(self.weight, target)
        return F.binary_cross_entropy_with_logits(logits, smooth, weight=weight)


class CoralLoss(nn.Module):
    """CORAL (Cao et al. 2020): the mean over the ``K - 1`` cut-points of the binary
    cross-entropy of ``grade > k``.

    Takes per-grade log-probabilities (the output of
    :class:`~medlens.models.heads.OrdinalHead`) and integer grades; ``log P(grade > k)`` is
    the log-sum-exp of the grades above ``k``, which for that head equals ``logσ(z_k)``.
    ``weight`` (one per cut-point) weighs the binary tasks, as the paper's ``λ``.
    """

    def __init__(self, *, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, log_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_probs = log_probs.log_softmax(-1)  # a no-op for the ordinal head's output
        k = log_probs.shape[1]
        above = torch.stack([log_probs[:, j + 1 :].logsumexp(-1) for j in range(k - 1)], 1)
        at_most = torch.stack([log_probs[:, : j + 1].logsumexp(-1) for j in range(k - 1)], 1)
        is_above = target[:, None] > torch.arange(k - 1, device=target.device)
        nll = -torch.where(is_above, above, at_most)
        if self.weight is not None:
            nll = nll * self.weight
        return nll.sum(1).mean() / (k - 1)


def build_loss(
    config: LossConfig, task: Task, class_counts: Sequence[int] | None = None
) -> nn.Module:
    """The loss for ``task``; binary heads have one logit, targets are float of its shape.

    ``class_counts`` (per class, from the training split) is needed for ``balanced`` weights.
    """
    weight = _resolve_weights(config, class_counts)
    if task == "ordinal":
        return _ordinal_loss(config, weight)
    multiclass = task == "multiclass"
    if config.name == "focal":
        return FocalLoss(
            config.focal_gamma,
            multiclass=multiclass,
            weight=weight,
            label_smoothing=config.label_smoothing,
        )
    if multiclass:
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)
    return BCELoss(weight=weight, label_smoothing=config.label_smoothing)


def _ordinal_loss(config: LossConfig, weight: torch.Tensor | None) -> nn.Module:
    """``coral`` (the default), ``cumulative_link`` (the likelihood of the ordinal head: the
    cross-entropy of its grade log-probabilities) or plain ``ce``; weights are per grade."""
    if config.name in ("auto", "coral"):
        if config.label_smoothing:
            raise ConfigError("loss.label_smoothing is not defined for the coral loss")
        # per-grade class weights become per-cut-point weights: the mean of both sides
        cut_weight = None if weight is None else (weight[:-1] + weight[1:]) / 2
        return CoralLoss(weight=cut_weight)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)


def _resolve_weights(config: LossConfig, class_counts: Sequence[int] | None) -> torch.Tensor | None:
    if config.class_weights is None:
        return None
    if config.class_weights == "balanced":
        if class_counts is None:
            raise ConfigError("class_weights 'balanced' needs the training class counts")
        values = class_weights_from_counts(class_counts)
    else:
        values = list(config.class_weights)
        if class_counts is not None and len(values) != len(class_counts):
            raise ConfigError(
                f"loss.class_weights has {len(values)} values for {len(class_counts)} classes"
            )
    return torch.tensor(values, dtype=torch.float32)
