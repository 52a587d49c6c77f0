"""``medlens train``: train a model for any task from a YAML config or a few flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import console, handle_errors
from medlens.errors import ConfigError


@handle_errors
def train(
    config: Path | None = typer.Argument(
        None, help="YAML config (see configs/).", show_default=False
    ),
    data: str | None = typer.Option(
        None, "--data", help="Class folders, MedMNIST .npz, CSV or manifest.csv."
    ),
    model: str | None = typer.Option(None, "--model", help="Model name (medlens models)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1),
    image_size: int | None = typer.Option(None, "--image-size", min=8),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1),
    lr: float | None = typer.Option(None, "--lr", min=0.0),
    pretrained: bool = typer.Option(False, "--pretrained", help="Start from ImageNet weights."),
    weights: Path | None = typer.Option(None, "--weights", help="Start from a local weight file."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Run directory to create."),
    seed: int | None = typer.Option(None, "--seed"),
    resume: Path | None = typer.Option(
        None, "--resume", help="Continue this run from its last checkpoint."
    ),
    augment_with: Path | None = typer.Option(
        None, "--augment-with", help="Generation run or folder of synthetic images (training only)."
    ),
    synthetic_fraction: float | None = typer.Option(
        None, "--synthetic-fraction", min=0.0, help="Synthetic images per real one, per class."
    ),
    track: str | None = typer.Option(
        None, "--track", help="Log the run to an experiment tracker: mlflow (medlens[track])."
    ),
    track_uri: str | None = typer.Option(
        None, "--track-uri", help="MLflow tracking URI (default: sqlite:///./mlruns.db)."
    ),
    accept_license: list[str] = typer.Option(
        [], "--accept-license", help="Accept this licence for gated/non-commercial weights."
    ),
) -> None:
    """Train a classifier or segmenter; write a run directory (weights, model.json, metrics).

    The task follows the data (class folders: classification; images with label maps:
    segmentation) unless the config sets ``task``. Input channels follow the data too.

    Examples:

        medlens train configs/pneumoniamnist.yaml -o runs/pneumonia

        medlens train --data chest_xray/ --model efficientnet_lite0 --pretrained --image-size 128

        medlens train --resume runs/pneumonia

        medlens train configs/pneumoniamnist.yaml --augment-with runs/gan --synthetic-fraction 0.5

        medlens train configs/pneumoniamnist.yaml --track mlflow   # ./mlruns.db
    """
    from medlens.tasks import train_run

    flags = _overrides(
        data=data, model=model, epochs=epochs, image_size=image_size, batch_size=batch_size,
        lr=lr, pretrained=pretrained, weights=weights, output=output, seed=seed,
        augment_with=augment_with, synthetic_fraction=synthetic_fraction,
        track=track, track_uri=track_uri,
    )  # fmt: skip
    if accept_license:
        flags["model.accept_license"] = list(accept_license)
    if resume is not None:
        if config is not None or flags:
            raise ConfigError("--resume continues a run as it was: give no config or flags")
        run_dir = train_run(None, resume=resume, console=console)  # type: ignore[arg-type]
    else:
        run_dir = train_run(build_config(config, flags), console=console)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 alone reports
        return
    _summary(run_dir)
    console.print(f"run written to [bold]{run_dir}[/]", soft_wrap=True)
    console.print(f"next: medlens evaluate {run_dir}")


def _overrides(**values: Any) -> dict[str, Any]:
    """Flags given on the command line, as dotted config keys."""
    keys = {
        "data": "data.source", "model": "model.name", "epochs": "epochs",
        "image_size": "model.image_size", "batch_size": "batch_size", "lr": "optimizer.lr",
        "output": "output_dir", "seed": "seed", "augment_with": "data.augment_with",
        "synthetic_fraction": "data.synthetic_fraction",
        "track": "tracking.backend", "track_uri": "tracking.uri",
    }  # fmt: skip
    out = {keys[k]: str(v) if isinstance(v, Path) else v for k, v in values.items() if k in keys}
    out = {k: v for k, v in out.items() if v is not None}
    if "tracking.uri" in out and "tracking.backend" not in out:
        raise ConfigError("--track-uri needs --track mlflow")
    if values["pretrained"] and values["weights"] is not None:
        raise ConfigError("give --pretrained (ImageNet) or --weights PATH, not both")
    if values["pretrained"]:
        out["model.pretrained"] = "imagenet"
    elif values["weights"] is not None:
        out["model.pretrained"] = str(values["weights"])
    return out


def build_config(config: Path | None, flags: dict[str, Any]) -> Any:
    """A config file with flags on top, or flags alone (``--data`` is then required)."""
    from medlens.config import load_config, parse_config, set_dotted

    if config is not None:
        if "data.source" in flags:
            flags = {"data.manifest": None, **flags}
        return load_config(config, **flags)
    if "data.source" not in flags:
        raise ConfigError("give a config file or --data")
    data: dict[str, Any] = {}
    for key, value in flags.items():
        set_dotted(data, key, value)
    return parse_config(data, source="command-line flags")


def _summary(run_dir: Path) -> None:
    """Best epoch and its monitored validation figure; the decision rule of a classifier."""
    from medlens.card import read_card

    card = read_card(run_dir)
    training = card.training
    if training is None:
        return
    if card.generation is not None:  # no validation figure: the last weights are kept
        console.print(f"{card.generation.method}: {training.epochs_run} epochs, last weights kept")
        console.print(f"sample: medlens generate {run_dir} -n 100 --class {card.classes[0]} -o OUT")
        return
    best = "no validation" if training.best is None else f"{training.best:.4f}"
    line = f"best epoch {training.best_epoch + 1}/{training.epochs_run}: {training.monitor} {best}"
    if card.family == "classification":
        threshold = card.threshold
        rule = f"threshold {threshold:.3f}, " if isinstance(threshold, float) else ""
        line += f"; {rule}temperature {card.temperature:.2f}"
    console.print(line)
