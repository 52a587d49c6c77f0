"""Training: a readable loop with its parts passed in, callbacks, checkpoints, data loaders.

Most users call :func:`medlens.tasks.train_run` (or ``medlens train``), where a task builds
these parts; they are here for those who assemble their own loop.
"""

from __future__ import annotations

from medlens.training.callbacks import (
    CallbackBase,
    CheckpointCallback,
    JsonlLogger,
    ProgressCallback,
    TensorBoardLogger,
    read_metrics,
)
from medlens.training.checkpoint import load_checkpoint, save_checkpoint
from medlens.training.distributed import DistContext, init_distributed
from medlens.training.loop import EpochResult, Trainer, TrainState
from medlens.training.losses import FocalLoss, build_loss
from medlens.training.optim import LRSchedule, build_optimizer
from medlens.training.seed import seed_everything

__all__ = [
    "CallbackBase",
    "CheckpointCallback",
    "DistContext",
    "EpochResult",
    "FocalLoss",
    "JsonlLogger",
    "LRSchedule",
    "ProgressCallback",
    "TensorBoardLogger",
    "TrainState",
    "Trainer",
    "build_loss",
    "build_optimizer",
    "init_distributed",
    "load_checkpoint",
    "read_metrics",
    "save_checkpoint",
    "seed_everything",
]
