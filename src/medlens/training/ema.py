"""An exponential moving average of a model's weights, validated and saved in its place.

Small, noisy datasets (a few dozen positives in validation) make the epoch-to-epoch weights
jumpy; the average is smoother and usually generalises better (Polyak & Juditsky, 1992). The
decay warms up as ``min(decay, (1 + n) / (10 + n))`` over the first updates, so early
averages are not dominated by the random initialisation. Batch-norm statistics are copied,
not averaged.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["ModelEma"]


class ModelEma:
    """``ema = ModelEma(model, 0.999)``; ``ema.update(model)`` after each optimiser step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        for name, average in self.module.state_dict().items():
            value = current[name].detach()
            if average.is_floating_point() and "running_" not in name:
                average.lerp_(value.to(average.dtype), 1.0 - decay)
            else:  # integer counters and batch-norm statistics follow the model
                average.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
