"""``medlens demo``: train, evaluate and report on the bundled PneumoniaMNIST sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors
from medlens.errors import ConfigError

MARKER = ".medlens-demo"


@handle_errors
def demo(
    output: Path = typer.Option(Path("medlens-demo"), "-o", "--output", help="Folder to write."),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Override the demo's epoch budget (quick smoke runs)."
    ),
) -> None:
    """Train a small CNN on a bundled real chest X-ray sample, evaluate it, write the report.

    Takes about two minutes on two CPU cores. The sample is a subset of PneumoniaMNIST
    (MedMNIST v2, CC BY 4.0; see medlens/data/sample/README.md).

    Examples:

        medlens demo

        medlens demo -o /tmp/demo
    """
    from medlens.pipeline import evaluate_run, train_run

    config = demo_config(output / "run", epochs)
    _clear_previous_demo(output)
    output.mkdir(parents=True, exist_ok=True)
    (output / MARKER).touch()
    console.print("training simple_cnn on the bundled PneumoniaMNIST sample (2400 train images)")
    run_dir = train_run(config, console=console)
    report = evaluate_run(run_dir, split="test") / "report.html"
    console.print(f"report written to [bold]{report}[/]", soft_wrap=True)
    console.print(f"next: medlens predict {run_dir} YOUR_IMAGES/ -o predictions.csv")


def sample_dir() -> Path:
    """The folder of the bundled sample (``pneumoniamnist.npz``, ``demo.yaml``, README)."""
    from importlib.resources import files

    return Path(str(files("medlens.data") / "sample"))


def demo_config(run_dir: Path, epochs: int | None = None):  # noqa: ANN201 (lazy import)
    """The demo's :class:`~medlens.config.TrainConfig`, writing to ``run_dir``."""
    from medlens.config import load_config

    sample = sample_dir()
    overrides = {"data.source": str(sample / "pneumoniamnist.npz"), "output_dir": str(run_dir)}
    if epochs is not None:
        overrides["epochs"] = epochs
    return load_config(sample / "demo.yaml", **overrides)


def _clear_previous_demo(output: Path) -> None:
    """Replace an earlier demo's output; refuse to touch any other non-empty folder."""
    if not output.exists():
        return
    if (output / MARKER).is_file():
        shutil.rmtree(output / "run", ignore_errors=True)
    elif any(output.iterdir()):
        raise ConfigError(f"{output} exists and is not an earlier demo output: choose another -o")
