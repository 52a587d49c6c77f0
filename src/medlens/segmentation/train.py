"""``train_segmentation``: the segmentation branch of :func:`medlens.training.run.train_run`.

``train_run`` writes ``config.yaml``, ``manifest.csv`` and ``fingerprint.json`` and hands over
here when the manifest has label maps. This module plans (``plan.json``), loads the cases,
trains a U-Net on patches with Dice + cross-entropy, validates with sliding windows every
``val_every`` epochs (mean foreground Dice), and writes ``metrics.jsonl``,
``checkpoints/last.pt`` (every epoch, atomically), ``model.safetensors`` (best validation
Dice) and ``model.json``.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medlens.config import TrainConfig
from medlens.errors import ConfigError, DatasetError
from medlens.segmentation.data import Case, PatchDataset, label_values, load_cases
from medlens.segmentation.inference import sliding_window_logits
from medlens.segmentation.plan import SegmentationOptions, SegPlan, make_plan, write_plan

__all__ = ["DEFAULT_AUGMENTATION", "train_segmentation"]

CHECKPOINT = Path("checkpoints") / "last.pt"
#: Used when the config has no ``augmentation``: nnU-Net-like, milder (short CPU schedules).
DEFAULT_AUGMENTATION: dict[str, Any] = {
    "rotation": 15, "zoom": (0.85, 1.15), "brightness": 0.1, "contrast": 0.15,
    "gamma": 0.2, "noise": 0.05, "p": 0.2,
}  # fmt: skip


@dataclass
class _State:
    epoch: int = 0
    best_dice: float = -1.0
    best_epoch: int = 0
    best_weights: dict[str, torch.Tensor] | None = None


def train_segmentation(
    config: TrainConfig,
    manifest: Any,
    run_dir: str | Path,
    *,
    resume: bool = False,
    console: Any = None,
) -> Path:
    """Train a segmenter as ``config`` says on ``manifest``; return the run directory."""
    from medlens.data import load_fingerprint
    from medlens.models.unet import create_segmentation_model
    from medlens.transforms.preprocess import preprocessing_from_dict

    run_dir = Path(run_dir)
    if manifest.task != "segmentation":
        raise ConfigError("task segmentation needs image/label pairs (a label_path per row)")
    options = SegmentationOptions.parse(config.segmentation)
    device = _device(options.device)
    train, val = manifest.split(config.data.train_split), manifest.split(config.data.val_split)
    if not len(train):
        raise DatasetError(f"no training cases in split {config.data.train_split!r}")
    values = label_values([r.label_path for r in train])
    classes = _class_names(options.class_names, values)
    fingerprint = load_fingerprint(run_dir / "fingerprint.json")
    plan = _plan(run_dir, fingerprint, len(values), device, options, resume)
    preprocessing = preprocessing_from_dict(
        {**plan.preprocessing(), **config.preprocessing}, source="preprocessing"
    )
    create_kwargs = {
        "name": config.model.name if config.model.name != "simple_cnn" else "dynunet",
        "num_classes": plan.num_classes,
        "in_chans": preprocessing.channels,
        **plan.model_kwargs(),
        **config.model.options,
    }
    model = create_segmentation_model(**create_kwargs).to(device)
    train_cases = load_cases(list(train), preprocessing, values, plan.patch_size)
    val_cases = load_cases(list(val), preprocessing, values)
    _say(console, f"plan: patch {plan.patch_size}, batch {plan.batch_size}, {device}")
    state = _fit(model, config, options, plan, train_cases, val_cases, run_dir, resume, console)
    if state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    _finish(run_dir, config, model, preprocessing, plan, classes, values, create_kwargs, state)
    return run_dir


def _device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("segmentation.device is cuda, but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


def _class_names(names: list[str] | None, values: list[int]) -> list[str]:
    if names is None:
        return ["background", *(f"label_{v}" for v in values[1:])]
    if len(names) != len(values):
        raise ConfigError(
            f"segmentation.class_names has {len(names)} names, the labels hold "
            f"{len(values)} values {values} (background included)"
        )
    return list(names)


def _plan(
    run_dir: Path,
    fingerprint: dict[str, Any],
    num_classes: int,
    device: torch.device,
    options: SegmentationOptions,
    resume: bool,
) -> SegPlan:
    from medlens.segmentation.plan import read_plan

    if resume:
        return read_plan(run_dir / "plan.json")
    plan = make_plan(
        fingerprint,
        num_classes=num_classes,
        device=device.type,
        base_filters=options.base_filters,
        max_filters=options.max_filters,
        overrides=options.plan,
    )
    write_plan(plan, run_dir / "plan.json")
    return plan


def _fit(
    model: nn.Module,
    config: TrainConfig,
    options: SegmentationOptions,
    plan: SegPlan,
    train_cases: list[Case],
    val_cases: list[Case],
    run_dir: Path,
    resume: bool,
    console: Any,
) -> _State:
    from monai.losses import DiceCELoss

    from medlens.training.checkpoint import load_checkpoint, save_checkpoint
    from medlens.training.optim import LRSchedule, build_optimizer

    loader = _loader(config, options, plan, train_cases)
    optimizer = build_optimizer(model, config.optimizer)
    steps = len(loader)
    schedule = LRSchedule(optimizer, config.schedule, epochs=config.epochs, steps_per_epoch=steps)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    state = _State()
    if resume:
        state = _restore(load_checkpoint(run_dir / CHECKPOINT), model, optimizer, schedule)
    device = next(model.parameters()).device
    while state.epoch < config.epochs:
        started = time.perf_counter()
        loader.dataset.set_epoch(state.epoch)
        train_loss = _train_epoch(model, loader, loss_fn, optimizer, schedule, device)
        state.epoch += 1
        record: dict[str, Any] = {"epoch": state.epoch, "train_loss": train_loss}
        if val_cases and (state.epoch % options.val_every == 0 or state.epoch == config.epochs):
            dice = validation_dice(model, val_cases, plan, overlap=options.overlap)
            record["val_dice"] = dice
            if dice > state.best_dice:
                state.best_dice, state.best_epoch = dice, state.epoch
                state.best_weights = copy.deepcopy(model.state_dict())
        record |= {"lr": optimizer.param_groups[0]["lr"], "time": time.perf_counter() - started}
        _log(run_dir / "metrics.jsonl", record)
        save_checkpoint(run_dir / CHECKPOINT, _snapshot(state, model, optimizer, schedule))
        _say(console, " ".join(f"{k} {v:.4g}" for k, v in record.items()))
    return state


def _loader(
    config: TrainConfig, options: SegmentationOptions, plan: SegPlan, cases: list[Case]
) -> torch.utils.data.DataLoader:
    from medlens.training.run import build_augmentation

    augment_config = config.augmentation if config.augmentation else DEFAULT_AUGMENTATION
    if not config.augmentation and plan.spatial_dims == 3:
        augment_config = {**DEFAULT_AUGMENTATION, "flip": (0, 1, 2)}
    augmentation = build_augmentation(config.model_copy(update={"augmentation": augment_config}))
    dataset = PatchDataset(
        cases,
        plan.patch_size,
        samples_per_epoch=options.iterations_per_epoch * plan.batch_size,
        foreground=options.foreground_oversample,
        augmentation=augmentation,
        seed=config.seed,
    )
    return torch.utils.data.DataLoader(
        dataset, batch_size=plan.batch_size, shuffle=False, num_workers=config.num_workers
    )


def _train_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    device: torch.device,
) -> float:
    model.train()
    total, count = 0.0, 0
    for image, label in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(image.to(device)), label.to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 12.0)
        optimizer.step()
        schedule.after_batch()
        total, count = total + float(loss.detach()), count + 1
    return total / max(1, count)


def validation_dice(
    model: nn.Module, cases: list[Case], plan: SegPlan, *, overlap: float = 0.5
) -> float:
    """Mean foreground Dice over ``cases`` (sliding windows, preprocessed grid)."""
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


def _snapshot(state: _State, model: nn.Module, optimizer: Any, schedule: Any) -> dict[str, Any]:
    from medlens.training.seed import get_rng_state

    return {
        "epoch": state.epoch,
        "best_dice": state.best_dice,
        "best_epoch": state.best_epoch,
        "best_weights": state.best_weights,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "rng": get_rng_state(),
    }


def _restore(checkpoint: dict[str, Any], model: nn.Module, optimizer: Any, schedule: Any) -> _State:
    from medlens.training.seed import set_rng_state

    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    schedule.load_state_dict(checkpoint["schedule"])
    set_rng_state(checkpoint["rng"])
    return _State(
        checkpoint["epoch"],
        checkpoint["best_dice"],
        checkpoint["best_epoch"],
        checkpoint["best_weights"],
    )


def _log(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _say(console: Any, text: str) -> None:
    if console is not None:
        console.print(text)


def _finish(
    run_dir: Path,
    config: TrainConfig,
    model: nn.Module,
    preprocessing: Any,
    plan: SegPlan,
    classes: list[str],
    values: list[int],
    create_kwargs: dict[str, Any],
    state: _State,
) -> None:
    from medlens.data import load_fingerprint
    from medlens.training.card import write_card
    from medlens.training.checkpoint import save_weights

    sha256 = save_weights(model, run_dir / "model.safetensors")
    write_card(
        run_dir,
        {
            "architecture": create_kwargs["name"],
            "create_model": create_kwargs,
            "preprocessing": preprocessing.model_dump(mode="json"),
            "classes": classes,
            "label_values": values,
            "task": "segmentation",
            "threshold": None,
            "temperature": 1.0,
            "plan": plan.model_dump(mode="json"),
            "inference": {"overlap": 0.5, "mode": "gaussian"},
            "data_fingerprint": load_fingerprint(run_dir / "fingerprint.json"),
            "sha256": sha256,
            "training": {
                "best_epoch": state.best_epoch,
                "best_val_dice": state.best_dice if state.best_dice >= 0 else None,
                "epochs_run": state.epoch,
                "seed": config.seed,
            },
        },
    )
