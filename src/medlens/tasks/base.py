"""The :class:`Task` interface: what one kind of learning problem adds to the shared parts.

A task is built from a validated config and the dataset manifest. :meth:`Task.check` refuses
what cannot work (a classifier for segmentation, a 2D-only model for volumes) before a run
directory exists; :meth:`Task.setup` builds the model, loaders and loss for the one
:class:`~medlens.training.loop.Trainer`; :meth:`Task.prepare_target` and
:meth:`Task.validate` are the loop's two task-specific steps; :meth:`Task.card_fields` gives
the task's section of the one :class:`~medlens.card.ModelCard`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from medlens.config import TrainConfig
    from medlens.data.manifest import Manifest
    from medlens.training.distributed import DistContext
    from medlens.training.loop import Trainer
    from medlens.transforms.preprocess import Preprocessing

__all__ = ["Task", "TaskSetup"]


@dataclass
class TaskSetup:
    """The parts a task builds for the trainer, and what the card needs of them."""

    model: nn.Module
    train_loader: torch.utils.data.DataLoader
    val_loader: Iterable | None
    loss_fn: nn.Module
    preprocessing: Preprocessing
    classes: tuple[str, ...]
    create_kwargs: dict[str, Any]
    grad_clip: float | None = None
    notes: list[str] = field(default_factory=list)  # choices worth telling the user
    #: the model to save, built from the trained one (a probe: backbone + trained head)
    final_model: Callable[[nn.Module], nn.Module] | None = None
    #: the task's own optimiser (GANs: per-part learning rates and betas); None: from config
    optimizer: torch.optim.Optimizer | None = None
    #: the task's own training step (see :data:`medlens.training.loop.StepFn`)
    step_fn: Callable[..., float] | None = None
    #: writes the weights into the run directory and returns the card fields (``sha256``,
    #: a LoRA run's ``adapter`` section); None: the whole model as ``model.safetensors``
    save_weights: Callable[[nn.Module, Path], dict[str, Any]] | None = None


class Task(ABC):
    """One learning problem over the shared trainer, run directory, card and predictor."""

    #: the card's ``task`` value (binary, multiclass, multilabel, segmentation)
    name: str
    #: the validation figure that picks the best weights (higher is better)
    monitor: str

    def __init__(self, config: TrainConfig, manifest: Manifest) -> None:
        self.config, self.manifest = config, manifest

    @property
    def model_name(self) -> str:
        """The configured model, or this task's default."""
        return self.config.model.name or self.default_model

    default_model: str = "simple_cnn"

    @abstractmethod
    def check(self) -> None:
        """Raise :class:`~medlens.errors.ConfigError` for what cannot work; writes nothing."""

    def start_run_dir(self, run_dir: Path, fingerprint: dict[str, Any]) -> None:  # noqa: B027
        """Write task files into a new run directory (rank 0 only); nothing by default."""

    def device(self, dist: DistContext) -> torch.device:
        """Where to train: this process's GPU under torchrun, else the CPU."""
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank)
        return torch.device("cpu")

    @property
    def spatial_dims(self) -> int:
        return 2

    @cached_property
    def in_chans(self) -> int:
        """As configured (``model.in_chans``, ``preprocessing.channels``, the number of
        ``preprocessing.windows``), else as the data:
        3 when the training images are colour, 1 otherwise (grey saved as RGB is grey)."""
        from medlens.data import infer_channels

        preprocessing = self.config.preprocessing
        windows = len(preprocessing.get("windows") or ())
        chosen = self.config.model.in_chans or preprocessing.get("channels") or windows
        return int(chosen or infer_channels(self._training_rows()))

    @cached_property
    def data_dims(self) -> int:
        """2 or 3: the dimensionality of the first training image (read once)."""
        from medlens.data import load_record_image

        return load_record_image(self._training_rows().records[0].path).ndim

    def _training_rows(self) -> Manifest:
        train = self.manifest.split(self.config.data.train_split)
        return train if len(train) else self.manifest

    @abstractmethod
    def setup(
        self, run_dir: Path, device: torch.device, dist: DistContext, *, resume: bool
    ) -> TaskSetup:
        """Model, loaders and loss for this run."""

    @abstractmethod
    def prepare_target(self, target: torch.Tensor) -> torch.Tensor:
        """A batch's targets as the loss wants them."""

    @abstractmethod
    def validate(self, trainer: Trainer) -> dict[str, float]:
        """This epoch's validation figures (empty when this epoch does not validate)."""

    @abstractmethod
    def card_fields(self, trainer: Trainer, setup: TaskSetup) -> dict[str, Any]:
        """The task's fields of the model card (thresholds, temperature, plan...)."""
