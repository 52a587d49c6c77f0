"""``medlens distill``: train a smaller student on a teacher run's soft targets."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def distill(
    teacher: Path = typer.Argument(..., help="The teacher's run directory (model.json)."),
    student: str = typer.Option(
        "simple_cnn", "--student", help="Student model name (see `medlens models`)."
    ),
    temperature: float = typer.Option(4.0, "--temperature", min=0.01, help="Softening T."),
    alpha: float = typer.Option(
        0.7, "--alpha", min=0.0, max=1.0, help="Weight of the soft-target loss."
    ),
    epochs: int = typer.Option(10, "--epochs", min=1),
    pretrained: bool = typer.Option(False, "--pretrained", help="Student from ImageNet weights."),
    lr: float | None = typer.Option(None, "--lr", min=0.0, help="Default: the teacher's."),
    output: Path = typer.Option(..., "-o", "--output", help="New run directory to create."),
) -> None:
    """Distill a teacher run into a student and report both side by side.

    Examples:

        medlens distill runs/densenet --student resnet18 -o runs/resnet18-student

        medlens distill runs/resnet18 --student simple_cnn --temperature 2 --alpha 0.5 -o runs/s
    """
    from medlens.cli.prune import print_comparison
    from medlens.export.distill import distill_run

    out = distill_run(
        teacher,
        output,
        student=student,
        temperature=temperature,
        alpha=alpha,
        epochs=epochs,
        pretrained=pretrained,
        lr=lr,
        console=console,
    )
    print_comparison(out / "compression.json")
    console.print(f"student run written to [bold]{out}[/]")
