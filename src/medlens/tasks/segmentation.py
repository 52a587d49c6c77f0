"""Segmentation, 2D and 3D, as a :class:`Task` on the shared trainer.

The parts that make it segmentation stay in :mod:`medlens.segmentation`: the
self-configuring plan (``plan.json``), the cases and the patch sampler with foreground
oversampling, sliding-window inference. This task wires them into the trainer: a U-Net from
the registry, Dice + cross-entropy, gradient clipping, validation by sliding windows every
``segmentation.val_every`` epochs (mean foreground Dice, ``val_dice``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from medlens.errors import ConfigError, DatasetError
from medlens.segmentation.plan import SegmentationOptions, SegPlan
from medlens.tasks.base import Task, TaskSetup

if TYPE_CHECKING:
    from medlens.config import TrainConfig
    from medlens.data.manifest import Manifest
    from medlens.segmentation.data import Case
    from medlens.training.distributed import DistContext
    from medlens.training.loop import Trainer

__all__ = ["DEFAULT_AUGMENTATION", "DEFAULT_GRAD_CLIP", "SegmentationTask", "validation_dice"]

#: Used when the config has no ``augmentation``: nnU-Net-like, milder (short CPU schedules).
DEFAULT_AUGMENTATION: dict[str, Any] = {
    "rotation": 15, "zoom": (0.85, 1.15), "brightness": 0.1, "contrast": 0.15,
    "gamma": 0.2, "noise": 0.05, "p": 0.2,
}  # fmt: skip
DEFAULT_GRAD_CLIP = 12.0  # nnU-Net's gradient-norm clip


class SegmentationTask(Task):
    """Images to label maps; best weights by validation Dice."""

    name = "segmentation"
    monitor = "val_dice"
    default_model = "dynunet"

    def __init__(self, config: TrainConfig, manifest: Manifest) -> None:
        super().__init__(config, manifest)
        self.options = config.segmentation or SegmentationOptions()
        self.plan: SegPlan | None = None
        self.values: list[int] = []
        self.val_cases: list[Case] = []

    def check(self) -> None:
        from medlens.models import model_info

        if self.manifest.task != "segmentation":
            raise ConfigError("task segmentation needs image/label pairs (a label_path per row)")
        info = model_info(self.model_name)
        if info.kind != "segmenter":
            raise ConfigError(
                f"model {self.model_name!r} is a {info.kind}; segmentation needs a segmenter: "
                f"{', '.join(_segmenters())} (see `medlens models`)"
            )
        if not len(self.manifest.split(self.config.data.train_split)):
            raise DatasetError(f"no training cases in split {self.config.data.train_split!r}")
        self.values = self._label_values()
        names = self.options.class_names
        if names is not None and len(names) != len(self.values):
            raise ConfigError(
                f"segmentation.class_names has {len(names)} names, the labels hold "
                f"{len(self.values)} values {self.values} (background included)"
            )

    def _label_values(self) -> list[int]:
        from medlens.segmentation.data import label_values

        train = self.manifest.split(self.config.data.train_split)
        return label_values([r.label_path for r in train])

    @property
    def classes(self) -> tuple[str, ...]:
        names = self.options.class_names
        return tuple(names or ["background", *(f"label_{v}" for v in self.values[1:])])

    def device(self, dist: DistContext) -> torch.device:
        choice = self.options.device
        if choice == "cuda" and not torch.cuda.is_available():
            raise ConfigError("segmentation.device is cuda, but no CUDA device is available")
        if choice == "cpu":
            return torch.device("cpu")
        return super().device(dist)

    def start_run_dir(self, run_dir: Path, fingerprint: dict[str, Any]) -> None:
        from medlens.segmentation.plan import write_plan

        write_plan(self._make_plan(fingerprint), run_dir / "plan.json")

    def _make_plan(self, fingerprint: dict[str, Any]) -> SegPlan:
        from medlens.segmentation.plan import make_plan

        device = "cuda" if self.options.device != "cpu" and torch.cuda.is_available() else "cpu"
        return make_plan(
            fingerprint,
            num_classes=len(self.values),
            device=device,
            base_filters=self.options.base_filters,
            max_filters=self.options.max_filters,
            overrides=self.options.plan,
        )

    @property
    def spatial_dims(self) -> int:
        """The plan's, or before planning the first training image's (2 or 3)."""
        return self.plan.spatial_dims if self.plan is not None else self.data_dims

    def setup(
        self, run_dir: Path, device: torch.device, dist: DistContext, *, resume: bool
    ) -> TaskSetup:
        from monai.losses import DiceCELoss

        from medlens.models import create_model
        from medlens.segmentation.data import load_cases
        from medlens.segmentation.plan import read_plan
        from medlens.transforms.preprocess import preprocessing_from_dict

        config = self.config
        self.plan = plan = read_plan(run_dir / "plan.json")  # written by rank 0 at the start
        preprocessing = preprocessing_from_dict(
            {**plan.preprocessing(), "channels": self.in_chans, **config.preprocessing},
            source="preprocessing",
        )
        create_kwargs = {
            "name": self.model_name,
            "num_classes": plan.num_classes,
            "in_chans": preprocessing.channels,  # the data's unless configured
            **plan.model_kwargs(),
            **config.model.options,
        }
        model = create_model(**create_kwargs)
        train = self.manifest.split(config.data.train_split)
        val = self.manifest.split(config.data.val_split)
        train_cases = load_cases(list(train), preprocessing, self.values, plan.patch_size)
        self.val_cases = load_cases(list(val), preprocessing, self.values)
        loss = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
        batch = self.batch_size
        notes = [
            f"plan: {plan.spatial_dims}D, patch {plan.patch_size}, batch {batch}, "
            f"{preprocessing.channels}-channel input, {device}"
        ]
        return TaskSetup(
            model, self._loader(train_cases, dist), None, loss, preprocessing, self.classes,
            create_kwargs, grad_clip=config.grad_clip or DEFAULT_GRAD_CLIP, notes=notes,
        )  # fmt: skip

    @property
    def batch_size(self) -> int:
        """The plan's batch size, unless the config sets ``batch_size`` itself."""
        return self.config.batch_size or self.plan.batch_size  # type: ignore[union-attr]

    def _loader(self, cases: list[Case], dist: DistContext) -> torch.utils.data.DataLoader:
        from medlens.segmentation.data import PatchDataset
        from medlens.tasks.classification import build_augmentation
        from medlens.training.data import make_loader

        plan = self.plan
        section: Any = self.config.augmentation
        if not section:
            flips = {"flip": (0, 1, 2)} if plan.spatial_dims == 3 else {}  # type: ignore[union-attr]
            section = {**DEFAULT_AUGMENTATION, **flips}
        dataset = PatchDataset(
            cases,
            plan.patch_size,  # type: ignore[union-attr]
            samples_per_epoch=self.options.iterations_per_epoch * self.batch_size,
            foreground=self.options.foreground_oversample,
            augmentation=build_augmentation(section),
            seed=self.config.seed,
        )
        return make_loader(
            dataset, batch_size=self.batch_size, train=True, seed=self.config.seed, dist=dist,
            num_workers=self.config.num_workers,
        )  # fmt: skip

    def prepare_target(self, target: torch.Tensor) -> torch.Tensor:
        return target.long()

    def validate(self, trainer: Trainer) -> dict[str, float]:
        epoch = trainer.state.epoch + 1
        due = epoch % self.options.val_every == 0 or epoch == trainer.epochs
        if not self.val_cases or not due:
            return {}
        dice = validation_dice(
            trainer.eval_model,
            self.val_cases,
            self.plan,
            overlap=self.options.overlap,  # type: ignore[arg-type]
        )
        return {"val_dice": dice}

    def card_fields(self, trainer: Trainer, setup: TaskSetup) -> dict[str, Any]:
        section = {"plan": self.plan, "label_values": self.values, "overlap": self.options.overlap}
        return {"threshold": None, "temperature": 1.0, "segmentation": section}


def validation_dice(
    model: nn.Module, cases: list[Case], plan: SegPlan, *, overlap: float = 0.5
) -> float:
    """Mean foreground Dice over ``cases`` (sliding windows, preprocessed grid)."""
    from medlens.segmentation.sliding_window import sliding_window_logits

    scores = []
    for case in cases:
        logits = sliding_window_logits(
            model, case.image, plan.patch_size, batch_size=plan.batch_size, overlap=overlap
        )
        predicted, truth = logits.argmax(0), case.label[0]
        for k in range(1, plan.num_classes):
            p, t = predicted == k, truth == k
            denominator = int(p.sum() + t.sum())
            scores.append(1.0 if denominator == 0 else 2.0 * int((p & t).sum()) / denominator)
    return float(sum(scores) / len(scores)) if scores else 0.0


def _segmenters() -> list[str]:
    from medlens.models import list_models

    return list_models(kind="segmenter")
