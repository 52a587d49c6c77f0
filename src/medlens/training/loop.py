"""The training loop: a few named steps, with every part passed in.

:class:`Trainer` owns no policy beyond the loop itself: the model, optimiser, loss, schedule
and callbacks (progress bar, logs, checkpoints) are built by a task (see
:mod:`medlens.tasks`) and handed over. The task also says how targets reach the loss and
how to validate; best weights are kept by the task's monitored figure (``val_auc``,
``val_dice``), early stopping counts validations without improvement. Under torchrun each
process trains on its shard (``DistributedSampler``) and the loss is all-reduced; a
classifier's validation is split over the processes (each item predicted once, never the
``DistributedSampler`` padding) and gathered, so all ranks see the figures of one process
and take the same decisions (segmentation validates the whole set in every process).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from medlens.config import Task
from medlens.training.distributed import (
    DistContext,
    all_reduce_mean,
    gather_shards,
    shard_loader,
)
from medlens.training.ema import ModelEma
from medlens.training.optim import LRSchedule, l1_penalty
from medlens.training.seed import get_rng_state, set_rng_state

__all__ = ["Callback", "EpochResult", "LoopTask", "StepFn", "TrainState", "Trainer", "auc_score"]


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0  # the next epoch to run
    step: int = 0
    best_metric: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    should_stop: bool = False
    skipped_steps: int = 0  # fp16: steps the grad scaler skipped (inf/NaN gradients)


@dataclass
class EpochResult:
    """One epoch's figures: the line written to ``metrics.jsonl``.

    ``metrics`` holds the validation figures of this epoch (``val_loss``, ``val_auc`` or
    ``val_dice``...); it is empty on epochs without validation.
    """

    epoch: int
    train_loss: float
    lr: float
    is_best: bool
    metrics: dict[str, float] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        return {"epoch": self.epoch, "train_loss": self.train_loss, **record.pop("metrics"),
                "lr": self.lr, "is_best": self.is_best}  # fmt: skip


class LoopTask(Protocol):
    """What the loop needs from a task (see :class:`medlens.tasks.Task`)."""

    monitor: str

    def prepare_target(self, target: torch.Tensor) -> torch.Tensor: ...
    def validate(self, trainer: Trainer) -> dict[str, float]: ...


#: A task's own optimisation step (GANs: critic then generator): ``(trainer, images,
#: targets) -> loss``; it computes, back-propagates and steps the optimiser itself.
StepFn = Callable[["Trainer", torch.Tensor, torch.Tensor], float]


class Callback(Protocol):
    """Hooks; each is optional (see :class:`medlens.training.callbacks.CallbackBase`)."""

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, loss: float) -> None: ...
    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...


class Trainer:
    """Fit a model for a task; ``fit()`` returns the final :class:`TrainState`."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: nn.Module,
        schedule: LRSchedule,
        train_loader: DataLoader,
        val_loader: Iterable | None,
        *,
        task: LoopTask,
        epochs: int,
        callbacks: Sequence[Callback] = (),
        early_stopping_patience: int | None = None,
        unfreeze_epoch: int | None = None,
        l1: float = 0.0,
        grad_clip: float | None = None,
        channels_last: bool = False,
        autocast_dtype: torch.dtype | None = None,
        ema_decay: float | None = None,
        grad_scaler: torch.amp.GradScaler | None = None,
        device: torch.device | str = "cpu",
        dist: DistContext | None = None,
        step_fn: StepFn | None = None,
    ) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.step_fn = step_fn
        self.schedule = schedule
        self.train_loader, self.val_loader = train_loader, val_loader
        self.task, self.epochs, self.callbacks = task, epochs, list(callbacks)
        self.patience, self.unfreeze_epoch, self.l1 = early_stopping_patience, unfreeze_epoch, l1
        self.grad_clip = grad_clip
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.autocast_dtype = autocast_dtype
        # fp16: scale the loss, unscale before clipping, skip steps with inf/NaN gradients
        self.scaler = grad_scaler or torch.amp.GradScaler(self.device.type, enabled=False)
        self.dist = dist or DistContext()
        self.state = TrainState()
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.ddp_model = self._wrap(model)
        # validated, kept as best and saved in place of the raw weights when configured
        self.ema = ModelEma(model, ema_decay) if ema_decay is not None else None

    @property
    def eval_model(self) -> nn.Module:
        """The model to validate and keep: the weight average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    # -- the loop -----------------------------------------------------------------------
    def fit(self) -> TrainState:
        self._emit("on_train_start")
        while self.state.epoch < self.epochs and not self.state.should_stop:
            self.prepare_epoch(self.state.epoch)
            train_loss = self.train_epoch()
            result = self.end_epoch(train_loss, self.task.validate(self))
            self._emit("on_epoch_end", result)
        self._emit("on_train_end")
        return self.state

    def prepare_epoch(self, epoch: int) -> None:
        """Shuffle order (and random patches) for this epoch; staged unfreezing."""
        for part in (getattr(self.train_loader, "sampler", None), self.train_loader.dataset):
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)
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

    def train_step(self, images: Any, targets: torch.Tensor) -> float:
        images = images.to(self.device, memory_format=self.memory_format, non_blocking=True)
        targets = self.task.prepare_target(targets).to(self.device, non_blocking=True)
        if self.step_fn is not None:  # the task's own step (adversarial, two-stage)
            loss_value = self.step_fn(self, images, targets)
            self.schedule.after_batch()
            self.state.step += 1
            return loss_value
        with self._autocast():
            loss = self.loss_fn(forward(self.ddp_model, images).float(), targets)
        loss = loss + l1_penalty(self.model, self.l1)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if self._step_optimizer():
            if self.ema is not None:
                self.ema.update(self.model)
            self.schedule.after_batch()
        else:  # a skipped fp16 step still advances the schedule, as planned
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", "Detected call of `lr_scheduler.step", UserWarning
                )
                self.schedule.after_batch()
        self.state.step += 1
        return float(loss.detach())

    def _step_optimizer(self) -> bool:
        """Step (the scaler skips it when a gradient is inf/NaN), update the scale; return
        whether the optimiser stepped."""
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        skipped = self.scaler.is_enabled() and self.scaler.get_scale() < scale
        self.state.skipped_steps += int(skipped)
        return not skipped

    @torch.no_grad()
    def predict_logits(
        self, loader: Iterable, *, sharded: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and targets of :attr:`eval_model` over a loader: the whole set, in order.

        ``sharded`` (call it in every process): under DDP each process predicts its share
        and the shares are gathered; every item counts once, as in one process.
        """
        if sharded and self.dist.enabled and isinstance(loader, DataLoader):
            logits, targets = self.predict_logits(shard_loader(loader, self.dist))
            n = len(loader.dataset)  # type: ignore[arg-type]
            return gather_shards(logits, n, self.dist), gather_shards(targets, n, self.dist)
        model = self.eval_model.eval()
        logits, targets = [], []
        for images, target in loader:
            images = images.to(self.device, memory_format=self.memory_format)
            with self._autocast():
                logits.append(forward(model, images).float().cpu())
            targets.append(self.task.prepare_target(target))
        return torch.cat(logits), torch.cat(targets)

    def end_epoch(self, train_loss: float, metrics: dict[str, float]) -> EpochResult:
        """Schedule step, best weights, early stopping; returns the epoch's record.

        ``metrics`` are this epoch's validation figures; without them (no validation this
        epoch) nothing is compared and the patience is not spent.
        """
        monitored = _monitored(metrics, self.task.monitor)
        self.schedule.after_epoch(monitored)
        is_best = monitored is not None and monitored > self.state.best_metric
        if is_best:
            self.state.best_metric, self.state.best_epoch = monitored, self.state.epoch
            self.state.bad_epochs = 0
            self.best_weights = copy.deepcopy(self.eval_model.state_dict())
        elif monitored is not None:
            self.state.bad_epochs += 1
        if self.patience is not None and self.state.bad_epochs >= self.patience:
            self.state.should_stop = True
        lr = max(group["lr"] for group in self.optimizer.param_groups)  # LLRD: the head's
        result = EpochResult(self.state.epoch, train_loss, lr, is_best, dict(metrics))
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
            "scaler": self.scaler.state_dict(),
            "trainer": asdict(self.state),
            "rng": get_rng_state(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prepare_epoch(state["trainer"]["epoch"])  # same trainable set as when saved
        self.model.load_state_dict(state["model"])
        self.best_weights = state["best_model"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.state = TrainState(**state["trainer"])
        set_rng_state(state["rng"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])

    def restore_best(self) -> None:
        """Load the best-by-validation weights (else the final average) into the model."""
        weights = self.best_weights
        if weights is None and self.ema is not None:
            weights = self.ema.module.state_dict()
        if weights is not None:
            self.model.load_state_dict(weights)
            if self.ema is not None:  # what is validated from now on is what is saved
                self.ema.module.load_state_dict(weights)

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


def forward(model: nn.Module, images: Any) -> torch.Tensor:
    """``model(images)``; a :class:`~medlens.training.data.PaddedStudies` batch passes its
    mask of real slices as ``slice_mask``."""
    from medlens.training.data import PaddedStudies

    if isinstance(images, PaddedStudies):
        return model(images.volumes, slice_mask=images.mask)
    return model(images)


def _monitored(metrics: dict[str, float], monitor: str) -> float | None:
    """The figure to maximise: the monitored metric, else minus the validation loss."""
    value = metrics.get(monitor, math.nan)
    if math.isfinite(value):
        return value
    loss = metrics.get("val_loss", math.nan)
    return -loss if math.isfinite(loss) else None


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
