"""Knowledge distillation: a smaller registry model trained on a teacher run's soft targets.

The student trains with medlens' own loop and recipe (the teacher's config, data split
and preprocessing); only the loss changes, to

    alpha * T^2 * soft(student / T, teacher / T) + (1 - alpha) * hard(student, labels)

where ``soft`` is the KL divergence of the softmax distributions (multiclass) or the
binary cross-entropy against the teacher's sigmoid probabilities (binary, multilabel).
An ordinal teacher's outputs are grade log-probabilities: the student (built with the same
ordinal head and loss, since it trains on the teacher's config) matches its grade
distribution by KL, as multiclass, and its card keeps the ``ordinal`` section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medlens.config import Task
from medlens.errors import ConfigError, ModelError
from medlens.training.callbacks import CallbackBase

__all__ = ["DistillationLoss", "distill_run", "output_task"]


class DistillationLoss(nn.Module):
    """Mixes the task loss with the teacher's soft targets on the same images.

    ``forward(logits, targets)`` keeps the signature of every medlens loss; the images
    come from :meth:`capture`, which :class:`DistillCallback` hooks onto the student's
    forward in training mode. Without captured images (validation) it is the task loss.
    """

    def __init__(
        self, hard: nn.Module, teacher: nn.Module, task: Task, temperature: float, alpha: float
    ) -> None:
        super().__init__()
        if temperature <= 0 or not 0.0 <= alpha <= 1.0:
            raise ConfigError(
                f"need temperature > 0 and alpha in [0, 1], got {temperature}, {alpha}"
            )
        self.hard, self.task = hard, task
        self.temperature, self.alpha = temperature, alpha
        self._teacher = [teacher.eval().requires_grad_(False)]  # a list: not a submodule
        self._inputs: torch.Tensor | None = None

    def capture(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        """Forward pre-hook: keep the batch the student is about to see in training."""
        if module.training:
            self._inputs = args[0]

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        hard = self.hard(logits, targets)
        inputs, self._inputs = self._inputs, None
        if inputs is None or len(inputs) != len(logits) or self.alpha == 0.0:
            return hard
        with torch.no_grad():
            teacher_logits = self._teacher[0](inputs).float()
        soft = soft_target_loss(logits, teacher_logits, self.task, self.temperature)
        return self.alpha * soft + (1.0 - self.alpha) * hard


def soft_target_loss(
    student: torch.Tensor, teacher: torch.Tensor, task: Task, temperature: float
) -> torch.Tensor:
    """Hinton's soft-target loss, scaled by T^2 so its gradients keep their size."""
    t = temperature
    if task == "multiclass":
        soft = F.kl_div(
            F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
            reduction="batchmean", log_target=True,
        )  # fmt: skip
    else:
        soft = F.binary_cross_entropy_with_logits(student / t, torch.sigmoid(teacher / t))
    return soft * t * t


class DistillCallback(CallbackBase):
    """Swaps the trainer's loss for a :class:`DistillationLoss` for the length of training."""

    def __init__(self, teacher: nn.Module, temperature: float, alpha: float) -> None:
        self.teacher, self.temperature, self.alpha = teacher, temperature, alpha
        self._hook: Any = None
        self._original: nn.Module | None = None

    def on_train_start(self, trainer: Any) -> None:
        self.teacher.to(trainer.device)
        self._original = trainer.loss_fn
        loss = DistillationLoss(
            trainer.loss_fn, self.teacher, output_task(trainer.task), self.temperature, self.alpha
        )
        trainer.loss_fn = loss
        self._hook = trainer.model.register_forward_pre_hook(loss.capture)

    def on_train_end(self, trainer: Any) -> None:
        if self._hook is not None:
            self._hook.remove()
        trainer.loss_fn = self._original


def output_task(task: Any) -> Task:
    """How a task's outputs are read: a :class:`~medlens.tasks.Task`'s name (ordinal: per-grade
    log-probabilities, read as multiclass) or the task name itself."""
    name = getattr(task, "name", task)
    return "multiclass" if name == "ordinal" else name


def distill_run(
    teacher_run: str | Path,
    out_dir: str | Path,
    *,
    student: str = "simple_cnn",
    temperature: float = 4.0,
    alpha: float = 0.7,
    epochs: int = 10,
    pretrained: bool = False,
    lr: float | None = None,
    report_split: str = "test",
    console: Any = None,
) -> Path:
    """Train ``student`` on the teacher run's soft targets; write its own run directory.

    The student sees the teacher's training split and preprocessing, and is trained with
    the teacher's recipe (optimiser, schedule, augmentation) for ``epochs``. The new run
    gets ``compression.json`` with the teacher's and the student's size, speed, AUC and
    accuracy on ``report_split``, side by side.
    """
    from medlens.export._data import refuse_padded_slices
    from medlens.export.compare import model_report, write_comparison
    from medlens.export.prune import derived_config
    from medlens.inference import Predictor
    from medlens.models import model_info
    from medlens.tasks.run import train_run

    teacher_run, out_dir = Path(teacher_run), Path(out_dir)
    model_info(student)  # unknown names fail before any work
    teacher = Predictor.from_run(teacher_run, engine="torch")
    refuse_padded_slices(teacher.card.preprocessing or {}, "distillation")
    if teacher.card.family == "segmentation":
        raise ModelError(
            f"{teacher_run}: distillation is for classifiers; a segmentation run cannot be "
            "distilled (prune it, or train a U-Net with fewer segmentation.base_filters)"
        )
    changes: dict[str, Any] = {"name": student, "pretrained": "imagenet" if pretrained else False}
    changes["options"] = {}  # the teacher's model-specific options are not the student's
    config = derived_config(teacher_run, out_dir, teacher.card, epochs=epochs, model=changes)
    if lr is not None:
        config = config.model_copy(
            update={"optimizer": config.optimizer.model_copy(update={"lr": lr})}
        )
    callback = DistillCallback(teacher.model, temperature, alpha)
    train_run(config, callbacks=[callback], console=console)
    settings = {
        "teacher": str(teacher_run),
        "student": student,
        "temperature": temperature,
        "alpha": alpha,
        "epochs": epochs,
        "pretrained": pretrained,
    }
    reports = {
        "teacher": model_report(teacher_run, split=report_split),
        "student": model_report(out_dir, split=report_split),
    }
    write_comparison(out_dir, "distill", settings, reports)
    return out_dir
