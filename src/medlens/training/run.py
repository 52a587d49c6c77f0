"""``train_run``: from a :class:`~medlens.config.TrainConfig` to a finished run directory.

Run directory::

    config.yaml          the resolved config (what ``--resume`` reads back)
    manifest.csv         the images and splits used (evaluate's default test data)
    checkpoints/last.pt  written atomically every epoch (``--resume``)
    metrics.jsonl        one line per epoch
    tb/                  TensorBoard scalars
    model.safetensors    best-by-validation-AUC weights
    model.json           the model card (see :mod:`medlens.training.card`)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medlens.config import TrainConfig, dump_config, load_config
from medlens.errors import ConfigError
from medlens.training.callbacks import (
    CheckpointCallback,
    JsonlLogger,
    ProgressCallback,
    TensorBoardLogger,
)
from medlens.training.card import write_card
from medlens.training.checkpoint import atomic_write_text, load_checkpoint, save_weights
from medlens.training.data import CachedDataset, make_loader, preprocess_split
from medlens.training.distributed import DistContext, init_distributed, shutdown_distributed
from medlens.training.loop import Trainer
from medlens.training.losses import build_loss
from medlens.training.optim import LRSchedule, build_optimizer
from medlens.training.outputs import num_outputs, probabilities
from medlens.training.seed import seed_everything

__all__ = ["build_manifest", "resolve_precision", "resolve_task", "train_run"]

CHECKPOINT = Path("checkpoints") / "last.pt"


@dataclass
class _Parts:
    trainer: Trainer
    model: nn.Module
    preprocessing: Any
    classes: tuple[str, ...]
    task: str
    create_kwargs: dict[str, Any]


def train_run(
    config: TrainConfig | None = None,
    *,
    resume: str | Path | None = None,
    console: Any = None,
    callbacks: Sequence[Any] = (),
) -> Path:
    """Train as ``config`` says, or continue the run directory ``resume``; return its path.

    ``callbacks`` run first, in every process (e.g. pruning masks, a distillation loss).
    """
    if resume is not None:
        config = _resume_config(Path(resume))
    elif config is None:
        raise ConfigError("train_run needs a config, or a run directory to resume")
    run_dir = Path(config.output_dir)
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    dist = init_distributed()
    # each rank its own augmentation stream; DDP copies rank 0's initial weights to all
    seed_everything(config.seed + dist.rank, deterministic=config.deterministic)
    manifest = build_manifest(config)
    if dist.is_main and resume is None:
        _start_run_dir(run_dir, config, manifest)
    if manifest.task == "segmentation" or config.task == "segmentation":
        from medlens.segmentation.train import train_segmentation

        return train_segmentation(
            config, manifest, run_dir, resume=resume is not None, console=console
        )
    parts = _build(config, manifest, run_dir, dist, console, callbacks)
    if resume is not None:
        parts.trainer.load_state_dict(load_checkpoint(run_dir / CHECKPOINT))
    parts.trainer.fit()
    parts.trainer.restore_best()
    if dist.is_main:
        _finish(run_dir, config, manifest, parts)
    shutdown_distributed(dist)
    return run_dir


def _resume_config(run_dir: Path) -> TrainConfig:
    if not (run_dir / CHECKPOINT).is_file():
        raise ConfigError(f"cannot resume: no checkpoint at {run_dir / CHECKPOINT}")
    from medlens.training.checkpoint import repair_run_dir

    repair_run_dir(run_dir)
    config = load_config(run_dir / "config.yaml")
    return config.model_copy(update={"output_dir": run_dir})


def _start_run_dir(run_dir: Path, config: TrainConfig, manifest: Any) -> None:
    from medlens.data import compute_fingerprint, save_fingerprint

    if (run_dir / CHECKPOINT).exists() or (run_dir / "model.json").exists():
        raise ConfigError(f"{run_dir} already holds a run: use --resume, or another output dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(config))
    manifest.write(run_dir / "manifest.csv")
    save_fingerprint(compute_fingerprint(manifest, seed=config.seed), run_dir / "fingerprint.json")


def build_manifest(config: TrainConfig) -> Any:
    """The dataset manifest with every row assigned to a split (seeded, patient-grouped)."""
    from medlens.data import assign_splits, load_manifest, open_source

    data = config.data
    manifest = load_manifest(data.manifest) if data.manifest else open_source(data.source)
    return assign_splits(
        manifest,
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        seed=config.seed,
        group_by_patient=data.group_by_patient,
    )


def resolve_task(config_task: str, manifest: Any) -> str:
    """The task: as configured, or from the data (two classes: binary)."""
    found = manifest.task
    if found == "segmentation":
        raise ConfigError("this dataset is a segmentation dataset, not classification")
    if found == "multiclass" and len(manifest.classes) == 2:
        found = "binary"
    if config_task not in ("auto", found) and not (
        config_task == "multiclass" and found == "binary"
    ):
        raise ConfigError(f"config says task {config_task} but the data is {found}")
    return found if config_task == "auto" else config_task


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 only where the hardware computes it natively."""
    native = _has_native_bf16(device)
    if precision == "bf16" and not native:
        raise ConfigError("precision bf16 asked, but this hardware has no native bf16")
    return torch.bfloat16 if precision == "bf16" or (precision == "auto" and native) else None


def _has_native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _build(
    config: TrainConfig,
    manifest: Any,
    run_dir: Path,
    dist: DistContext,
    console: Any,
    extra_callbacks: Sequence[Any] = (),
) -> _Parts:
    from medlens.models import create_model
    from medlens.models.finetune import freeze_backbone

    task = resolve_task(config.task, manifest)
    classes = manifest.classes
    create_kwargs = {
        "name": config.model.name,
        "num_classes": num_outputs(task, len(classes)),  # type: ignore[arg-type]
        "in_chans": config.model.in_chans,
        "image_size": config.model.image_size,
        "drop_rate": config.model.drop_rate,
        **config.model.options,
    }
    pretrained = config.model.pretrained
    model = create_model(**create_kwargs, pretrained=str(pretrained) if pretrained else False)
    if config.model.freeze.backbone:
        freeze_backbone(model)
    preprocessing = build_preprocessing(config, model)
    train_x, train_y = preprocess_split(
        manifest.split(config.data.train_split), preprocessing, task
    )
    val_x, val_y = preprocess_split(manifest.split(config.data.val_split), preprocessing, task)
    augment = build_augmentation(config)
    loaders = [
        make_loader(
            CachedDataset(x, y, augment if train else None),
            batch_size=config.batch_size,
            train=train,
            seed=config.seed,
            dist=dist,
            num_workers=config.num_workers,
        )
        for x, y, train in ((train_x, train_y, True), (val_x, val_y, False))
    ]
    device = (
        torch.device("cuda", dist.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    )
    optimizer = build_optimizer(model, config.optimizer)
    steps = len(loaders[0])
    schedule = LRSchedule(optimizer, config.schedule, epochs=config.epochs, steps_per_epoch=steps)
    callbacks = list(extra_callbacks)
    if dist.is_main:
        callbacks += [  # metrics before the checkpoint: resume drops lines past it
            JsonlLogger(run_dir / "metrics.jsonl"),
            CheckpointCallback(run_dir / CHECKPOINT),
            TensorBoardLogger(run_dir / "tb"),
            ProgressCallback(steps, console=console),
        ]
    trainer = Trainer(
        model,
        optimizer,
        build_loss(config.loss, task, _class_counts(train_y, task, len(classes))).to(device),  # type: ignore[arg-type]
        schedule,
        *loaders,
        task=task,  # type: ignore[arg-type]
        epochs=config.epochs,
        callbacks=callbacks,
        early_stopping_patience=config.early_stopping_patience,
        unfreeze_epoch=config.model.freeze.unfreeze_epoch,
        l1=config.optimizer.l1,
        channels_last=config.channels_last,
        autocast_dtype=resolve_precision(config.precision, device),
        device=device,
        dist=dist,
    )
    return _Parts(trainer, model, preprocessing, classes, task, create_kwargs)


def _class_counts(targets: torch.Tensor, task: str, k: int) -> list[int]:
    if task == "multilabel":
        return targets.sum(0).long().tolist()
    return torch.bincount(targets, minlength=k).tolist()


def build_preprocessing(config: TrainConfig, model: nn.Module) -> Any:
    """The model's :class:`Preprocessing`: config values over the model's defaults."""
    from medlens.transforms.preprocess import preprocessing_from_dict

    cfg = model.default_cfg  # type: ignore[attr-defined]
    defaults = {
        "spatial_size": [config.model.image_size] * 2,
        "channels": config.model.in_chans,
        "mean": list(cfg.mean),
        "std": list(cfg.std),
    }
    return preprocessing_from_dict({**defaults, **config.preprocessing})


def build_augmentation(config: TrainConfig) -> Any:
    """The random augmentation applied to training tensors (None when not configured)."""
    if not config.augmentation:
        return None
    from pydantic import ValidationError

    from medlens.transforms.augment import Augmentation

    try:
        augmentation = Augmentation.model_validate(config.augmentation)
    except ValidationError as exc:
        raise ConfigError(f"augmentation: {exc.errors()[0]['msg']}") from None
    return augmentation if augmentation.enabled else None


def _finish(run_dir: Path, config: TrainConfig, manifest: Any, parts: _Parts) -> None:
    """Calibrate on validation, then write the weights and the model card."""
    from medlens.data import load_fingerprint

    logits, targets = parts.trainer.predict_logits(parts.trainer.val_loader)
    temperature = _temperature(logits, targets, parts.task) if config.temperature_scaling else 1.0
    probs = probabilities(logits, parts.task, temperature).numpy()  # type: ignore[arg-type]
    decision = choose_threshold(probs, targets.numpy(), parts.task, config)
    sha256 = save_weights(parts.model, run_dir / "model.safetensors")
    state = parts.trainer.state
    write_card(
        run_dir,
        {
            "architecture": config.model.name,
            "create_model": parts.create_kwargs,
            "preprocessing": parts.preprocessing.model_dump(mode="json"),
            "classes": list(parts.classes),
            "task": parts.task,
            **decision,
            "temperature": temperature,
            "data_fingerprint": load_fingerprint(run_dir / "fingerprint.json"),
            "sha256": sha256,
            "training": {
                "best_epoch": state.best_epoch,
                "best_val_auc": state.best_metric,
                "epochs_run": state.epoch,
                "seed": config.seed,
                "precision": _precision_name(parts.trainer.autocast_dtype),
            },
        },
    )


def _precision_name(dtype: torch.dtype | None) -> str:
    """What the training steps computed in: ``fp32``, or the autocast dtype (``bf16``)."""
    return "fp32" if dtype is None else {torch.bfloat16: "bf16"}.get(dtype, str(dtype))


def _temperature(logits: torch.Tensor, targets: torch.Tensor, task: str) -> float:
    from medlens.evaluation import fit_temperature

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
