"""``medlens prune``: prune a trained run, fine-tune it briefly, write a new run."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors

COLUMNS = ("model", "architecture", "non-zero params", "zipped MB", "ms/image", "AUC", "accuracy")


@handle_errors
def prune(
    run: Path = typer.Argument(..., help="A trained run directory (model.json)."),
    sparsity: float = typer.Option(
        0.5, "--sparsity", min=0.0, max=0.99, help="Fraction of weights (or channels) to zero."
    ),
    structured: bool = typer.Option(
        False, "--structured", help="Zero whole conv channels (L2 norm) instead of weights."
    ),
    finetune_epochs: int = typer.Option(1, "--finetune-epochs", min=1),
    lr_factor: float = typer.Option(
        0.1, "--lr-factor", min=0.0, help="Fine-tune learning rate / the run's."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="New run directory to create."),
) -> None:
    """Prune a run (global L1 or structured channels), fine-tune, report what it cost.

    Examples:

        medlens prune runs/pneumonia --sparsity 0.5 -o runs/pneumonia-pruned

        medlens prune runs/pneumonia --sparsity 0.3 --structured --finetune-epochs 2 -o runs/p30
    """
    from medlens.export.prune import prune_run

    out = prune_run(
        run,
        output,
        amount=sparsity,
        structured=structured,
        finetune_epochs=finetune_epochs,
        lr_factor=lr_factor,
        console=console,
    )
    print_comparison(out / "compression.json")
    console.print(f"pruned run written to [bold]{out}[/]")


def print_comparison(path: Path) -> None:
    """The before/after table of a ``compression.json``."""
    import json

    from rich.table import Table

    reports = json.loads(path.read_text())["reports"]
    first = next(iter(reports.values()))
    segmentation = first.get("dice") is not None
    kind = "volumes" if segmentation else "images"
    table = Table(title=f"on the {first['split']} split ({first['images']} {kind})")
    columns = (*COLUMNS[:-2], "mean Dice") if segmentation else COLUMNS
    for column in columns:
        table.add_column(column)
    for name, r in reports.items():
        figures = [_num(r["dice"])] if segmentation else [_num(r["auc"]), _num(r["accuracy"])]
        table.add_row(
            name,
            r["architecture"],
            f"{r['nonzero_parameters']:,} / {r['parameters']:,}",
            f"{r['weights_zip_bytes'] / 1e6:.2f}",
            "n/a" if r["ms_per_image"] is None else f"{r['ms_per_image']:.1f}",
            *figures,
        )
    console.print(table)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
