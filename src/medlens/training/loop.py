"""The training loop: a few named steps, with every part passed in.

:class:`Trainer` owns no policy beyond the loop itself: the model, optimiser, loss, schedule
and callbacks (progress bar, logs, checkpoints) are built elsewhere (see
:mod:`medlens.training.run`) and handed over. Best weights are kept by validation AUC;
early stopping counts epochs without improvement. Under torchrun each process trains on
its shard (``DistributedSampler``), the loss is all-reduced and validation runs on the
whole validation set in every process, so all ranks take the same decisions.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from medlens.config import Task
from medlens.training.distributed import DistContext, all_reduce_mean
from medlens.training.optim import LRSchedule, l1_penalty
from medlens.training.outputs import prepare_target, probabilities
from medlens.training.seed import get_rng_state, set_rng_state

__all__ = ["Callback", "EpochResult", "TrainState", "Trainer", "auc_score"]


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0  # the next epoch to run
    step: int = 0
    best_metric: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    should_stop: bool = False


@dataclass
class EpochResult:
    """One epoch's figures: the line written to ``metrics.jsonl``."""

    epoch: int
    train_loss: float
    val_loss: float
    val_auc: float
    lr: float
    is_best: bool
    extra: dict[str, float] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        return {**record.pop("extra"), **record}


class Callback(Protocol):
    """Hooks; each is optional (see :class:`medlens.training.callbacks.CallbackBase`)."""

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, loss: float) -> None: ...
    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...


class Trainer:
    """Fit a classifier; ``fit()`` returns the final :class:`TrainState`."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: nn.Module,
        schedule: LRSchedule,
        train_loader: DataLoader,
        val_loader: DataLoader,
        *,
        task: Task,
        epochs: int,
        callbacks: Sequence[Callback] = (),
        early_stopping_patience: int | None = None,
        unfreeze_epoch: int | None = None,
        l1: float = 0.0,
        channels_last: bool = False,
        autocast_dtype: torch.dtype | None = None,
        device: torch.device | str = "cpu",
        dist: DistContext | None = None,
    ) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.schedule = schedule
        self.train_loader, self.val_loader = train_loader, val_loader
        self.task, self.epochs, self.callbacks = task, epochs, list(callbacks)
        self.patience, self.unfreeze_epoch, self.l1 = early_stopping_patience, unfreeze_epoch, l1
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.autocast_dtype = autocast_dtype
        self.dist = dist or DistContext()
        self.state = TrainState()
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.ddp_model = self._wrap(model)

    # -- the loop -----------------------------------------------------------------------
    def fit(self) -> TrainState:
        self._emit("on_train_start")
        while self.state.epoch < self.epochs and not self.state.should_stop:
            self.prepare_epoch(self.state.epoch)
            train_loss = self.train_epoch()
            val_loss, val_auc = self.validate()
            result = self.end_epoch(train_loss, val_loss, val_auc)
            self._emit("on_epoch_end", result)
        self._emit("on_train_end")
        return self.state

    def prepare_epoch(self, epoch: int) -> None:
        """Shuffle order for this epoch; staged unfreezing of the backbone."""
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        if self.unfreeze_epoch is not None and epoch >= self.unfreeze_epoch:
            from medlens.models.finetune import unfreeze

            unfreeze(self.model)

    def train_epoch(self) -> float:
        self.ddp_model.train()
        total, count = 0.0, 0
        for images, targets in self.train_loader:
            loss = self.train_step(images, targets)
            total, count = total + loss * len(images), count + len(images)
            self._emit("on_batch_end", loss)
        return all_reduce_mean(total / max(count, 1), self.dist)

    def train_step(self, images: torch.Tensor, targets: torch.Tensor) -> float:
        images = images.to(self.device, memory_format=self.memory_format, non_blocking=True)
        targets = prepare_target(targets, self.task).to(self.device, non_blocking=True)
        with self._autocast():
            loss = self.loss_fn(self.ddp_model(images).float(), targets)
        loss = loss + l1_penalty(self.model, self.l1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.after_batch()
        self.state.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def predict_logits(self, loader: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and targets over a loader (whole set, this process)."""
        self.model.eval()
        logits, targets = [], []
        for images, target in loader:
            images = images.to(self.device, memory_format=self.memory_format)
            with self._autocast():
                logits.append(self.model(images).float().cpu())
            targets.append(prepare_target(target, self.task))
        return torch.cat(logits), torch.cat(targets)

    def validate(self) -> tuple[float, float]:
        logits, targets = self.predict_logits(self.val_loader)
        loss = float(self.loss_fn(logits, targets))
        return loss, auc_score(probabilities(logits, self.task).numpy(), targets.numpy(), self.task)

    def end_epoch(self, train_loss: float, val_loss: float, val_auc: float) -> EpochResult:
        """Schedule step, best weights, early stopping; returns the epoch's record."""
        monitored = val_auc if math.isfinite(val_auc) else -val_loss
        self.schedule.after_epoch(monitored)
        is_best = monitored > self.state.best_metric
        if is_best:
            self.state.best_metric, self.state.best_epoch = monitored, self.state.epoch
            self.state.bad_epochs = 0
            self.best_weights = copy.deepcopy(self.model.state_dict())
        else:
            self.state.bad_epochs += 1
        if self.patience is not None and self.state.bad_epochs >= self.patience:
            self.state.should_stop = True
        lr = self.optimizer.param_groups[0]["lr"]
        result = EpochResult(self.state.epoch, train_loss, val_loss, val_auc, lr, is_best)
        self.state.epoch += 1
        return result

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit (``torch.load(weights_only=True)``-safe)."""
        return {
            "model": self.model.state_dict(),
            "best_model": self.best_weights,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "trainer": asdict(self.state),
            "rng": get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prepare_epoch(state["trainer"]["epoch"])  # same trainable set as when saved
        self.model.load_state_dict(state["model"])
        self.best_weights = state["best_model"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.state = TrainState(**state["trainer"])
        set_rng_state(state["rng"])

    def restore_best(self) -> None:
        """Load the best-by-validation weights into the model."""
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)

    # -- helpers --------------------------------------------------------------------------
    def _wrap(self, model: nn.Module) -> nn.Module:
        model.to(self.device, memory_format=self.memory_format)
        if not self.dist.enabled:
            return model
        device_ids = [self.dist.local_rank] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def _autocast(self) -> Any:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self, *args)


def auc_score(probs: np.ndarray, targets: np.ndarray, task: Task) -> float:
    """ROC-AUC (macro one-vs-rest for multi-class/label); NaN when a class is missing."""
    from sklearn.metrics import roc_auc_score

    try:
        if task == "binary":
            return float(roc_auc_score(targets.reshape(-1), probs[:, 1]))
        if task == "multiclass":
            return float(roc_auc_score(targets, probs, multi_class="ovr"))
        return float(roc_auc_score(targets, probs, average="macro"))
    except ValueError:
        return math.nan
