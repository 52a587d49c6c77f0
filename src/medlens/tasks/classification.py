"""Classification (binary, multi-class, multi-label, ordinal), 2D or 3D, as a :class:`Task`.

Images are preprocessed once and cached as float16 (:mod:`medlens.training.data`); the
model comes from the registry; validation reports loss and ROC-AUC; after training the
temperature and the decision threshold(s) are fitted on validation and stored in the card.
Input channels and dimensionality follow the data unless the config says otherwise.

An ordinal task (``task: ordinal``) has its classes in grade order (``data.classes``, or
integer class names), a rank-consistent head unless the loss is plain ``ce``, picks its
best weights by validation QWK and stores the grade decision (argmax, median or cut-points
on the expected grade, whichever has the best validation QWK) in the card's ``ordinal`` section.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from medlens.data.manifest import Manifest
from medlens.errors import ConfigError
from medlens.tasks.base import Task, TaskSetup
from medlens.training.outputs import num_outputs, prepare_target, probabilities

if TYPE_CHECKING:
    from medlens.config import TrainConfig
    from medlens.training.distributed import DistContext
    from medlens.training.loop import Trainer

DEFAULT_BATCH_SIZE = 64

__all__ = [
    "ClassificationTask",
    "build_augmentation",
    "choose_threshold",
    "order_classes",
    "resolve_task",
]


class ClassificationTask(Task):
    """Images to class probabilities; best weights by validation AUC."""

    monitor = "val_auc"
    default_model = "simple_cnn"

    def __init__(self, config: TrainConfig, manifest: Manifest) -> None:
        super().__init__(config, manifest)
        self.name = resolve_task(config.task, manifest)
        if self.name == "ordinal":
            self.monitor = "val_qwk"

    def check(self) -> None:
        from medlens.models import model_info

        info = model_info(self.model_name)
        if info.kind != "classifier":
            raise ConfigError(
                f"model {self.model_name!r} is a {info.kind}; a {self.name} task needs a "
                "classifier (see `medlens models`)"
            )
        if self.padded_slices and self.model_name != "slice_seq":
            raise ConfigError(
                f"preprocessing.slices 'pad' keeps each study's slice count, which needs a "
                f"model that masks padded slices (slice_seq); {self.model_name} does not: use "
                "slices 'resample'"
            )
        if self.padded_slices and self.config.adaptation.mode == "probe":
            raise ConfigError(
                "preprocessing.slices 'pad' trains the whole slice_seq model; a probe on "
                "cached embeddings needs slices 'resample'"
            )
        if self.spatial_dims not in info.spatial_dims:
            raise ConfigError(
                f"the images are {self.spatial_dims}D but {self.model_name} is built for "
                f"{' or '.join(f'{d}D' for d in info.spatial_dims)} images "
                "(3D classifiers: `medlens models`)"
            )

    @cached_property
    def spatial_dims(self) -> int:
        """3 for volumes (or ``model.options.spatial_dims: 3``), else 2."""
        configured = self.config.model.options.get("spatial_dims")
        size = self.config.preprocessing.get("spatial_size")
        return int(configured or (len(size) if size else self.data_dims))

    @property
    def padded_slices(self) -> bool:
        """Whether studies keep their own slice count (``preprocessing.slices: pad``)."""
        return self.config.preprocessing.get("slices", "resample") == "pad"

    def setup(
        self, run_dir: Path, device: torch.device, dist: DistContext, *, resume: bool
    ) -> TaskSetup:
        from medlens.models import create_model
        from medlens.models.finetune import freeze_backbone
        from medlens.training.data import make_loader, pad_collate
        from medlens.training.losses import build_loss

        config, manifest = self.config, self.manifest
        create_kwargs = self._create_kwargs()
        pretrained = config.model.pretrained
        model = create_model(
            **create_kwargs, pretrained=str(pretrained) if pretrained else False,
            accept_license=config.model.accept_license,
        )  # fmt: skip
        create_kwargs.update(getattr(model, "create_options", {}))  # e.g. a backbone's arch
        if config.model.freeze.backbone:
            freeze_backbone(model)
        if config.model.grad_checkpointing:
            from medlens.models.checkpointing import enable_grad_checkpointing

            enable_grad_checkpointing(model)
        preprocessing = self._preprocessing(model)
        if config.adaptation.mode == "probe":
            return self._probe_setup(model, preprocessing, create_kwargs, device, dist)
        save = None
        notes = [f"{self.in_chans}-channel {self.spatial_dims}D input, model {self.model_name}"]
        if config.adaptation.mode == "lora":
            model, save, note = self._lora(model)
            notes.append(note)
        augment = build_augmentation(config.augmentation)
        train_set = self._dataset(config.data.train_split, preprocessing, augment)
        val_set = self._dataset(config.data.val_split, preprocessing, None)
        train, val = (
            make_loader(
                dataset,
                batch_size=config.batch_size or DEFAULT_BATCH_SIZE,
                train=is_train,
                seed=config.seed,
                dist=dist,
                num_workers=config.num_workers,
                collate_fn=pad_collate if self.padded_slices else None,
            )  # fmt: skip
            for dataset, is_train in ((train_set, True), (val_set, False))
        )
        counts = _class_counts(train_set.targets, self.name, len(manifest.classes))
        loss = build_loss(config.loss, self.name, counts)  # type: ignore[arg-type]
        return TaskSetup(
            model, train, val, loss.to(device), preprocessing, manifest.classes, create_kwargs,
            grad_clip=config.grad_clip, notes=notes, save_weights=save,
        )  # fmt: skip

    def _lora(self, model: torch.nn.Module) -> tuple[torch.nn.Module, Any, str]:
        """The peft-wrapped model, its adapter writer and a note (:mod:`medlens.models.lora`)."""
        from functools import partial

        from medlens.models.lora import apply_lora, base_identity, lora_settings, save_adapter

        settings = lora_settings(model, self.config.adaptation.lora)
        pretrained = self.config.model.pretrained
        source = "imagenet" if pretrained is True else str(pretrained)
        base = {"pretrained": source, "sha256": base_identity(model)}
        wrapped = apply_lora(model, settings)
        trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
        total = sum(p.numel() for p in wrapped.parameters())
        note = (
            f"LoRA r={settings['r']} on {len(settings['target_modules'])} layers: "
            f"{trainable:,} of {total:,} parameters trained"
        )
        return wrapped, partial(save_adapter, settings=settings, base=base), note

    def _probe_setup(
        self,
        backbone: torch.nn.Module,
        preprocessing: Any,
        create_kwargs: dict[str, Any],
        device: torch.device,
        dist: DistContext,
    ) -> TaskSetup:
        """A head on cached embeddings (:mod:`medlens.tasks.probe`); no augmentation."""
        from medlens.tasks.probe import probe_parts
        from medlens.training.losses import build_loss

        config = self.config
        parts = probe_parts(config, self.manifest, backbone, preprocessing, self.name, dist)
        if config.adaptation.probe.head == "mlp":
            create_kwargs = {**create_kwargs, "head_hidden": config.adaptation.probe.hidden}
        targets = parts["train"].dataset.targets
        counts = _class_counts(targets, self.name, len(self.manifest.classes))
        loss = build_loss(config.loss, self.name, counts)  # type: ignore[arg-type]
        head = config.adaptation.probe.head
        notes = [f"{head} probe on cached {self.model_name} embeddings (no augmentation)"]
        return TaskSetup(
            parts["head"], parts["train"], parts["val"], loss.to(device), preprocessing,
            self.manifest.classes, create_kwargs, grad_clip=config.grad_clip, notes=notes,
            final_model=parts["final_model"],
        )  # fmt: skip

    def _dataset(self, split: str, preprocessing: Any, augment: Any) -> Any:
        """The split preprocessed once: in memory, or LRU-cached past ``data.cache_bytes``."""
        from medlens.training.data import split_dataset

        return split_dataset(
            self.manifest.split(split),
            preprocessing,
            self.name,
            augment=augment,
            seed=self.config.seed,
            max_bytes=self.config.data.cache_bytes,
        )

    def _create_kwargs(self) -> dict[str, Any]:
        from medlens.models import model_info

        options = dict(self.config.model.options)
        if self.spatial_dims == 3 and "spatial_dims" in model_info(self.model_name).options:
            options["spatial_dims"] = 3
        return {
            "name": self.model_name,
            "num_classes": num_outputs(self.name, len(self.manifest.classes)),  # type: ignore[arg-type]
            "in_chans": self.in_chans,
            "image_size": self.config.model.image_size,
            "drop_rate": self.config.model.drop_rate,
            **({"head": self.head} if self.head != "linear" else {}),
            **options,
        }

    @property
    def head(self) -> str:
        """``ordinal`` for the ordinal losses (coral, cumulative_link), else ``linear``."""
        return "ordinal" if self.name == "ordinal" and self.config.loss.name != "ce" else "linear"

    def _preprocessing(self, model: torch.nn.Module) -> Any:
        """The model's :class:`Preprocessing`: config values over the model's defaults."""
        from medlens.transforms.preprocess import preprocessing_from_dict

        cfg = model.default_cfg  # type: ignore[attr-defined]
        defaults = {
            "spatial_size": [self.config.model.image_size] * self.spatial_dims,
            "channels": self.in_chans,
            "mean": list(cfg.mean),
            "std": list(cfg.std),
        }
        return preprocessing_from_dict({**defaults, **self.config.preprocessing})

    def prepare_target(self, target: torch.Tensor) -> torch.Tensor:
        return prepare_target(target, self.name)  # type: ignore[arg-type]

    def validate(self, trainer: Trainer) -> dict[str, float]:
        from medlens.training.loop import auc_score

        logits, targets = trainer.predict_logits(trainer.val_loader, sharded=True)  # type: ignore[arg-type]
        loss = float(trainer.loss_fn(logits, targets))
        probs = probabilities(logits, self.name).numpy()  # type: ignore[arg-type]
        if self.name == "ordinal":
            from medlens.evaluation.ordinal import decide_grades, quadratic_kappa

            y, rule = targets.numpy(), "median" if self.head == "ordinal" else "argmax"
            qwk = quadratic_kappa(y, decide_grades(probs, rule=rule), probs.shape[1])
            return {"val_loss": loss, "val_qwk": qwk, "val_auc": auc_score(probs, y, "multiclass")}
        return {"val_loss": loss, "val_auc": auc_score(probs, targets.numpy(), self.name)}  # type: ignore[arg-type]

    def card_fields(self, trainer: Trainer, setup: TaskSetup) -> dict[str, Any]:
        """Temperature and threshold(s), fitted on the validation split."""
        logits, targets = trainer.predict_logits(trainer.val_loader)  # type: ignore[arg-type]
        temperature = 1.0
        if self.config.temperature_scaling:
            temperature = _temperature(logits, targets, self.name)
        probs = probabilities(logits, self.name, temperature).numpy()  # type: ignore[arg-type]
        if self.name == "ordinal":
            return {"temperature": temperature, "ordinal": self._ordinal_card(probs, targets)}
        decision = choose_threshold(probs, targets.numpy(), self.name, self.config)
        return {**decision, "temperature": temperature}

    def _ordinal_card(self, probs: Any, targets: torch.Tensor) -> dict[str, Any]:
        """The grade decision chosen on validation (argmax, median or cut-points)."""
        from medlens.evaluation.ordinal import select_cut_points

        loss = "coral" if self.config.loss.name == "auto" else self.config.loss.name
        return {"head": self.head, "loss": loss, **select_cut_points(targets.numpy(), probs)}


def resolve_task(config_task: str, manifest: Manifest) -> str:
    """The task: as configured, or from the data (two classes: binary)."""
    found = manifest.task
    if found == "segmentation":
        raise ConfigError("this dataset is a segmentation dataset, not classification")
    if config_task == "ordinal":
        if found != "multiclass" or len(manifest.classes) < 3:
            raise ConfigError(
                f"task ordinal needs one grade per image and at least 3 grades; the data is "
                f"{found} with classes {list(manifest.classes)}"
            )
        return "ordinal"
    if found == "multiclass" and len(manifest.classes) == 2:
        found = "binary"
    if config_task not in ("auto", found) and not (
        config_task == "multiclass" and found == "binary"
    ):
        raise ConfigError(f"config says task {config_task} but the data is {found}")
    return found if config_task == "auto" else config_task


def order_classes(manifest: Manifest, classes: list[str] | None, task: str) -> Manifest:
    """The manifest with its classes in the configured order (``data.classes``).

    The names must be exactly those of the data. An ordinal task without ``data.classes``
    needs integer class names (``0``, ``1``, ``2``...), taken in numeric order: any other
    order would be a guess.
    """
    found = set(manifest.classes)
    if classes is not None:
        if set(classes) != found:
            missing, extra = sorted(found - set(classes)), sorted(set(classes) - found)
            raise ConfigError(
                f"data.classes must name every class of the data once: missing {missing}, "
                f"not in the data {extra}"
            )
        return Manifest(manifest.records, tuple(classes))
    if task != "ordinal":
        return manifest
    try:
        numeric = sorted(manifest.classes, key=int)
    except ValueError:
        raise ConfigError(
            f"task ordinal: give the grade order as data.classes (lowest first); the class "
            f"names {list(manifest.classes)} have no unambiguous order"
        ) from None
    return Manifest(manifest.records, tuple(numeric))


def build_augmentation(section: dict[str, Any] | str) -> Any:
    """The random augmentation of a config section (None when off)."""
    if not section:
        return None
    from medlens.transforms.augment import Augmentation

    augmentation = Augmentation.model_validate(section)  # checked when the config was read
    return augmentation if augmentation.enabled else None


def _class_counts(targets: torch.Tensor, task: str, k: int) -> list[int]:
    if task == "multilabel":
        return targets.sum(0).long().tolist()
    return torch.bincount(targets, minlength=k).tolist()


def _temperature(logits: torch.Tensor, targets: torch.Tensor, task: str) -> float:
    from medlens.evaluation import fit_temperature

    task = "multiclass" if task == "ordinal" else task  # ordinal logits: per-grade, softmax
    y = targets.numpy().reshape(-1) if task != "multilabel" else targets.numpy()
    return fit_temperature(logits.numpy(), y, task=task)


def choose_threshold(probs: Any, y: Any, task: str, config: TrainConfig) -> dict[str, Any]:
    """``threshold`` and ``operating_point`` (as chosen on validation) for the card."""
    from medlens.evaluation import select_threshold, select_thresholds

    if task == "multiclass":
        return {"threshold": None, "operating_point": None}
    options = {
        "method": config.threshold.method,
        "target_sensitivity": config.threshold.target_sensitivity,
        "fixed": config.threshold.value,
    }
    if task == "binary":
        point = select_threshold(y.reshape(-1), probs[:, 1], **options)
        return {"threshold": point.threshold, "operating_point": point.to_dict()}
    points = select_thresholds(y, probs, **options)
    return {
        "threshold": [p.threshold for p in points],
        "operating_point": [p.to_dict() for p in points],
    }
