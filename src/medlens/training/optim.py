"""Optimisers, learning-rate schedules with linear warm-up, and the L1 penalty."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from medlens.config import OptimizerConfig, ScheduleConfig
from medlens.errors import ConfigError

__all__ = ["LRSchedule", "build_optimizer", "l1_penalty", "layer_depths"]


def build_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov momentum), Adam or AdamW; no weight decay on biases and norm layers.

    With ``config.layer_decay`` the parameters are grouped by depth (:func:`layer_depths`):
    stage ``k`` of ``n`` trains at ``lr * layer_decay ** (n - k)``, the head at ``lr``.
    """
    depths = layer_depths(model) if config.layer_decay is not None else {}
    top = max(depths.values(), default=0)
    grouped: dict[tuple[int, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        key = (depths.get(name, top), param.ndim > 1)
        grouped.setdefault(key, []).append(param)
    groups = []
    for (depth, decays), params in sorted(grouped.items(), key=lambda kv: (kv[0][0], not kv[0][1])):
        scale = (config.layer_decay or 1.0) ** (top - depth)
        groups.append({
            "params": params, "weight_decay": config.weight_decay if decays else 0.0,
            "lr": config.lr * scale, "lr_scale": scale, "layer": depth,
        })  # fmt: skip
    if config.name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    if config.name == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    return torch.optim.AdamW(groups, lr=config.lr)


def layer_depths(model: nn.Module) -> dict[str, int]:
    """Parameter name -> depth: ``k`` for the model's ``stages[k]`` (input first), ``n``
    (one past the last stage) for everything else: the classifier head.

    A peft-wrapped model is grouped by its base model's stages (adapter tensors sit inside
    the layers they adapt).
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    stages = getattr(base, "stages", None)
    if not stages:
        raise ConfigError(
            f"optimizer.layer_decay needs a model with stages; {type(base).__name__} has none"
        )
    prefix = "" if base is model else _prefix(model, base)
    owner = {f"{prefix}{module}": k for k, group in enumerate(stages) for module in group}
    depths = {}
    for name, _ in model.named_parameters():
        parts = name.split(".")
        found = (owner.get(".".join(parts[:i])) for i in range(len(parts), 0, -1))
        depth = next((d for d in found if d is not None), len(stages))
        depths[name] = depth
    return depths


def _prefix(model: nn.Module, base: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is base:
            return f"{name}." if name else ""
    return ""


def l1_penalty(model: nn.Module, coefficient: float) -> torch.Tensor | float:
    """``coefficient * sum(|w|)`` over weight matrices and kernels (0.0 when disabled)."""
    if coefficient == 0.0:
        return 0.0
    return coefficient * sum(p.abs().sum() for p in model.parameters() if p.ndim > 1)


class LRSchedule:
    """Per-step warm-up plus cosine/step/constant decay, or plateau decay per epoch.

    Call :meth:`after_batch` after every optimiser step and :meth:`after_epoch` with the
    validation metric (higher is better) at the end of every epoch.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        config: ScheduleConfig,
        *,
        epochs: int,
        steps_per_epoch: int,
    ) -> None:
        self.config = config
        self.warmup_steps = round(config.warmup_epochs * steps_per_epoch)
        self.total_steps = max(1, epochs * steps_per_epoch)
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.step_count = 0
        self.lambda_lr = torch.optim.lr_scheduler.LambdaLR(optimizer, self._factor)
        self.plateau = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=config.gamma, patience=config.plateau_patience
            )
            if config.name == "plateau"
            else None
        )

    def _factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.config.name == "cosine":
            progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
            floor = self.config.min_lr_ratio
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if self.config.name == "step":
            return self.config.gamma ** (step // (self.config.step_epochs * self.steps_per_epoch))
        return 1.0

    def after_batch(self) -> None:
        self.step_count += 1
        if self.plateau is None or self.step_count <= self.warmup_steps:
            self.lambda_lr.step()

    def after_epoch(self, metric: float | None) -> None:
        """Plateau schedules step on the monitored figure (None: no validation this epoch)."""
        if metric is None:
            return
        if self.plateau is not None and self.step_count >= self.warmup_steps:
            self.plateau.step(metric)

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_count": self.step_count,
            "lambda_lr": self.lambda_lr.state_dict(),
            "plateau": None if self.plateau is None else self.plateau.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = state["step_count"]
        self.lambda_lr.load_state_dict(state["lambda_lr"])
        if self.plateau is not None and state["plateau"] is not None:
            self.plateau.load_state_dict(state["plateau"])
