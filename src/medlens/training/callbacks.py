"""Callbacks that watch the loop: progress bar, metrics.jsonl, TensorBoard, checkpoints.

Build them only in the main process (rank 0): they write files and draw on the terminal.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medlens.errors import ConfigError
from medlens.training.checkpoint import atomic_write_text, save_checkpoint

if TYPE_CHECKING:
    from medlens.training.loop import EpochResult, Trainer

__all__ = [
    "CallbackBase",
    "CheckpointCallback",
    "JsonlLogger",
    "ProgressCallback",
    "TensorBoardLogger",
    "read_metrics",
]


class CallbackBase:
    """No-op hooks to override."""

    def on_train_start(self, trainer: Trainer) -> None:
        pass

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        pass

    def on_train_end(self, trainer: Trainer) -> None:
        pass


class CheckpointCallback(CallbackBase):
    """Write ``last.pt`` atomically at the end of every epoch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        save_checkpoint(self.path, trainer.state_dict())


class JsonlLogger(CallbackBase):
    """One JSON line per epoch; on resume, lines past the checkpoint are dropped first."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_train_start(self, trainer: Trainer) -> None:
        kept = [r for r in read_metrics(self.path) if r["epoch"] < trainer.state.epoch]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(_finite(result.to_record())) + "\n")
            handle.flush()
            os.fsync(handle.fileno())  # an epoch reported is an epoch on disk


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (empty if it does not exist).

    A torn last line (a power cut during an append) is ignored; a broken line before the
    last one is a :class:`~medlens.errors.ConfigError`.
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            if number == len(lines):
                break
            raise ConfigError(f"{path}: line {number} is not JSON") from None
    return records


def _finite(record: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: write ``null`` instead."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()
    }


class TensorBoardLogger(CallbackBase):
    """Scalars for TensorBoard: batch loss and learning rate, epoch losses and AUC."""

    def __init__(self, log_dir: str | Path, every_n_steps: int = 10) -> None:
        self.log_dir, self.every = Path(log_dir), every_n_steps
        self.writer: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir), purge_step=trainer.state.step or None)

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        if trainer.state.step % self.every == 0:
            self.writer.add_scalar("train/batch_loss", loss, trainer.state.step)
            lr = trainer.optimizer.param_groups[0]["lr"]
            self.writer.add_scalar("train/lr", lr, trainer.state.step)

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        for name, value in {"train_loss": result.train_loss, **result.metrics}.items():
            if math.isfinite(value):
                self.writer.add_scalar(f"epoch/{name}", value, result.epoch)

    def on_train_end(self, trainer: Trainer) -> None:
        self.writer.close()


class ProgressCallback(CallbackBase):
    """A Rich progress bar: epoch, step, loss, the monitored validation figure and ETA."""

    def __init__(self, steps_per_epoch: int, console: Any = None) -> None:
        self.steps_per_epoch, self.console = steps_per_epoch, console
        self.progress: Any = None
        self.task_id: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[monitor]} {task.fields[value]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        total = trainer.epochs * self.steps_per_epoch
        done = trainer.state.epoch * self.steps_per_epoch
        self.task_id = self.progress.add_task(
            "train", total=total, completed=done, epoch=self._epoch(trainer), loss="-",
            monitor=trainer.task.monitor.replace("_", " "), value="-",
        )  # fmt: skip

    def _epoch(self, trainer: Trainer) -> str:
        return f"{trainer.state.epoch + 1}/{trainer.epochs}"

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        self.progress.update(
            self.task_id, advance=1, loss=f"{loss:.4f}", epoch=self._epoch(trainer)
        )

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        value = result.metrics.get(trainer.task.monitor)
        if value is not None:
            self.progress.update(self.task_id, value=f"{value:.4f}")

    def on_train_end(self, trainer: Trainer) -> None:
        self.progress.stop()
