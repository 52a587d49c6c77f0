"""``train_run``: from a :class:`~medlens.config.TrainConfig` to a finished run directory.

The same steps for every task: build the manifest, let the task check the config against
the data (nothing is written before this), start the run directory (rank 0), let the task
build its parts, fit with the one :class:`~medlens.training.loop.Trainer`, write the weights
and the one model card (rank 0).

Run directory::

    config.yaml          the resolved config (what ``--resume`` reads back)
    manifest.csv         the images and splits used (evaluate's default test data)
    fingerprint.json     the data fingerprint
    plan.json            segmentation only: the self-configured plan
    checkpoints/last.pt  written atomically every epoch (``--resume``)
    metrics.jsonl        one line per epoch
    tb/                  TensorBoard scalars
    model.safetensors    the weights of the best validation epoch
    model.json           the model card (:class:`~medlens.card.ModelCard`)
    tracking.json        with ``tracking:`` set: the MLflow run id (:mod:`medlens.tracking`)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from medlens.config import TrainConfig, dump_config, load_config
from medlens.errors import ConfigError
from medlens.tasks.base import Task, TaskSetup
from medlens.training.checkpoint import (
    atomic_write_text,
    load_checkpoint,
    repair_run_dir,
    save_weights,
)
from medlens.training.distributed import (
    DistContext,
    barrier,
    init_distributed,
    shutdown_distributed,
)
from medlens.training.loop import Trainer
from medlens.training.seed import seed_everything

__all__ = [
    "CHECKPOINT",
    "build_manifest",
    "make_grad_scaler",
    "make_task",
    "resolve_precision",
    "train_run",
]

CHECKPOINT = Path("checkpoints") / "last.pt"


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
    task = make_task(config, build_manifest(config))
    task.check()
    tracker = _tracker(config, run_dir, dist)  # MLflow missing: refused before writing
    channels_last = _channels_last(config, task)
    if dist.is_main and resume is None:
        _start_run_dir(run_dir, config, task)
    elif dist.is_main:  # a torn metrics line, a kill's temporary files: rank 0 repairs
        repair_run_dir(run_dir)
    barrier(dist)
    device = task.device(dist)
    setup = task.setup(run_dir, device, dist, resume=resume is not None)
    _say(console, dist, "; ".join(setup.notes))
    trainer = _trainer(
        config, task, setup, run_dir, dist, device, console,
        [*callbacks, *([tracker] if tracker else [])], channels_last,
    )  # fmt: skip
    if resume is not None:
        trainer.load_state_dict(load_checkpoint(run_dir / CHECKPOINT))
    try:
        trainer.fit()
        trainer.restore_best()
        if dist.is_main:
            _finish(run_dir, config, task, setup, trainer)
    except BaseException:
        if tracker is not None:
            tracker.fail()
        raise
    if tracker is not None:
        tracker.finish()
    shutdown_distributed(dist)
    return run_dir


def _tracker(config: TrainConfig, run_dir: Path, dist: DistContext) -> Any:
    """The MLflow callback when ``tracking`` is set, in the main process only."""
    if config.tracking is None or not dist.is_main:
        return None
    from medlens.tracking import TrackingCallback

    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError(
            "tracking.backend mlflow needs MLflow: pip install 'medlens[track]'"
        ) from None
    return TrackingCallback(run_dir, config.tracking)


def make_task(config: TrainConfig, manifest: Any) -> Task:
    """The task that this config and data ask for."""
    from medlens.tasks.classification import ClassificationTask
    from medlens.tasks.segmentation import SegmentationTask

    if config.task == "generation":
        from medlens.tasks.generation import GenerationTask

        return GenerationTask(config, manifest)
    if config.is_segmentation or (config.task == "auto" and manifest.task == "segmentation"):
        return SegmentationTask(config, manifest)
    return ClassificationTask(config, manifest)


def _resume_config(run_dir: Path) -> TrainConfig:
    if not (run_dir / CHECKPOINT).is_file():
        raise ConfigError(f"cannot resume: no checkpoint at {run_dir / CHECKPOINT}")
    config = load_config(run_dir / "config.yaml")
    return config.model_copy(update={"output_dir": run_dir})


def _start_run_dir(run_dir: Path, config: TrainConfig, task: Task) -> None:
    from medlens.data import compute_fingerprint, save_fingerprint

    if (run_dir / CHECKPOINT).exists() or (run_dir / "model.json").exists():
        raise ConfigError(f"{run_dir} already holds a run: use --resume, or another output dir")
    fingerprint = compute_fingerprint(task.manifest, seed=config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(config))
    task.manifest.write(run_dir / "manifest.csv")
    save_fingerprint(fingerprint, run_dir / "fingerprint.json")
    task.start_run_dir(run_dir, fingerprint)


def build_manifest(config: TrainConfig) -> Any:
    """The dataset manifest with every row assigned to a split (seeded, patient-grouped)."""
    from medlens.data import assign_splits, load_manifest, open_source
    from medlens.data.splits import subsample_split
    from medlens.tasks.classification import order_classes

    data = config.data
    manifest = load_manifest(data.manifest) if data.manifest else open_source(data.source)
    if not config.is_segmentation:
        manifest = order_classes(manifest, data.classes, config.task)
    manifest = assign_splits(
        manifest,
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        seed=config.seed,
        group_by_patient=data.group_by_patient,
    )
    manifest = subsample_split(
        manifest,
        data.train_fraction,
        split=data.train_split,
        seed=config.seed,
        group_by_patient=data.group_by_patient,
    )
    if data.augment_with is None:
        return manifest
    from medlens.generation.augment import add_synthetic

    return add_synthetic(
        manifest,
        data.augment_with,
        data.synthetic_fraction,
        split=data.train_split,
        seed=config.seed,
        out_dir=Path(config.output_dir) / "synthetic",
    )


def _trainer(
    config: TrainConfig,
    task: Task,
    setup: TaskSetup,
    run_dir: Path,
    dist: DistContext,
    device: torch.device,
    console: Any,
    extra_callbacks: Sequence[Any],
    channels_last: bool,
) -> Trainer:
    from medlens.training.callbacks import (
        CheckpointCallback,
        JsonlLogger,
        ProgressCallback,
        TensorBoardLogger,
    )
    from medlens.training.optim import LRSchedule, build_optimizer

    optimizer = setup.optimizer or build_optimizer(setup.model, config.optimizer)
    dtype = resolve_precision(config.precision, device, spatial_dims=task.spatial_dims)
    steps = len(setup.train_loader)
    schedule = LRSchedule(optimizer, config.schedule, epochs=config.epochs, steps_per_epoch=steps)
    callbacks = list(extra_callbacks)
    if dist.is_main:
        callbacks += [  # metrics before the checkpoint: resume drops lines past it
            JsonlLogger(run_dir / "metrics.jsonl"),
            CheckpointCallback(run_dir / CHECKPOINT),
            TensorBoardLogger(run_dir / "tb"),
            ProgressCallback(steps, console=console),
        ]
    return Trainer(
        setup.model,
        optimizer,
        setup.loss_fn,
        schedule,
        setup.train_loader,
        setup.val_loader,
        task=task,
        epochs=config.epochs,
        callbacks=callbacks,
        early_stopping_patience=config.early_stopping_patience,
        unfreeze_epoch=config.model.freeze.unfreeze_epoch,
        l1=config.optimizer.l1,
        grad_clip=setup.grad_clip,
        channels_last=channels_last,
        autocast_dtype=dtype,
        grad_scaler=make_grad_scaler(dtype, device),
        ema_decay=config.ema_decay,
        device=device,
        dist=dist,
        step_fn=setup.step_fn,
    )


def _channels_last(config: TrainConfig, task: Task) -> bool:
    """As configured; by default on for 2D models and off for 3D (PyTorch has no 3D form).

    A probe trains on embedding vectors, which have no memory format."""
    if config.adaptation.mode == "probe":
        return False
    if config.channels_last is None:
        return task.spatial_dims == 2
    if config.channels_last and task.spatial_dims == 3:
        raise ConfigError("channels_last is for 2D models; set it to false (or leave it out)")
    return config.channels_last


def resolve_precision(
    precision: str, device: torch.device, *, spatial_dims: int = 2
) -> torch.dtype | None:
    """The autocast dtype: bf16 only where the hardware computes it natively, and for 3D
    models only where this PyTorch's bf16 conv3d gradients are right
    (:func:`medlens.training.precision.bf16_conv3d_sound`); fp16 (with gradient scaling, see
    :func:`make_grad_scaler`) on CUDA only."""
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("precision fp16 needs a CUDA GPU; on this machine use bf16 or fp32")
        return torch.float16
    native = _has_native_bf16(device)
    if precision == "bf16" and not native:
        raise ConfigError("precision bf16 asked, but this hardware has no native bf16")
    if precision == "fp32" or not (precision == "bf16" or native):
        return None
    if spatial_dims == 3 and not _bf16_conv3d_sound(device):
        if precision == "bf16":
            raise ConfigError(
                "precision bf16: this PyTorch computes wrong bf16 conv3d weight gradients on "
                f"{device.type} (training would diverge to NaN); use precision auto or fp32"
            )
        return None
    return torch.bfloat16


def _bf16_conv3d_sound(device: torch.device) -> bool:
    from medlens.training.precision import bf16_conv3d_sound

    return bf16_conv3d_sound(device.type)


def make_grad_scaler(dtype: torch.dtype | None, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler, enabled for fp16 autocast only (bf16 and fp32 need none)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def _has_native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _finish(
    run_dir: Path, config: TrainConfig, task: Task, setup: TaskSetup, trainer: Trainer
) -> None:
    """Write the weights, then the model card with the task's own fields."""
    from medlens.card import write_card
    from medlens.data import load_fingerprint

    fields = task.card_fields(trainer, setup)
    model = setup.final_model(setup.model) if setup.final_model else setup.model
    if setup.save_weights is not None:  # LoRA: only the adapter (+ head)
        saved = setup.save_weights(model, run_dir)
    else:
        saved = {"sha256": save_weights(model, run_dir / "model.safetensors")}
    state = trainer.state
    best = state.best_metric if state.best_epoch >= 0 else None
    write_card(
        run_dir,
        {
            "task": task.name,
            "architecture": setup.create_kwargs["name"],
            "create_model": setup.create_kwargs,
            "preprocessing": setup.preprocessing.model_dump(mode="json"),
            "classes": list(setup.classes),
            **fields,
            "data_fingerprint": load_fingerprint(run_dir / "fingerprint.json"),
            "synthetic_data": _synthetic_summary(config, task),
            **saved,
            "training": {
                "best_epoch": state.best_epoch,
                "epochs_run": state.epoch,
                "seed": config.seed,
                "monitor": task.monitor,
                "best": best,
                f"best_{task.monitor}": best,
                "precision": _precision_name(trainer.autocast_dtype),
                "ema_decay": config.ema_decay,
                **_precision_note(config, task, trainer),
            },
        },
    )


def _synthetic_summary(config: TrainConfig, task: Task) -> dict[str, Any] | None:
    """What ``data.augment_with`` mixed into training, for the card (None: nothing)."""
    if config.data.augment_with is None:
        return None
    from medlens.generation.augment import synthetic_summary

    return synthetic_summary(task.manifest, config.data, Path(config.output_dir))


def _precision_note(config: TrainConfig, task: Task, trainer: Trainer) -> dict[str, str]:
    """A card note when ``precision: auto`` declined bf16 for a 3D model (see
    :mod:`medlens.training.precision`)."""
    from medlens.training.precision import BF16_CONV3D_NOTE

    declined = (
        config.precision == "auto"
        and trainer.autocast_dtype is None
        and task.spatial_dims == 3
        and _has_native_bf16(trainer.device)
    )
    return {"precision_note": BF16_CONV3D_NOTE} if declined else {}


def _precision_name(dtype: torch.dtype | None) -> str:
    """What the training steps computed in: ``fp32``, or the autocast dtype (``bf16``)."""
    names = {torch.bfloat16: "bf16", torch.float16: "fp16"}
    return "fp32" if dtype is None else names.get(dtype, str(dtype))


def _say(console: Any, dist: DistContext, text: str) -> None:
    if console is not None and dist.is_main and text:
        console.print(text)
