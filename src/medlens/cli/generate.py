"""``medlens generate``: synthetic images of one class from a generation run, with provenance."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def generate(
    run: Path = typer.Argument(..., help="Run directory of a generation run."),
    n: int = typer.Option(..., "-n", min=1, help="Number of images."),
    class_name: str = typer.Option(..., "--class", help="Class to generate (a card class)."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder; images go to OUT/<class>/."),
    seed: int = typer.Option(0, "--seed", help="Seed: same seed, same images."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Diffusion sampler steps."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
) -> None:
    """Write N PNGs marked synthetic, plus OUT/provenance.csv and provenance.json.

    Examples:

        medlens generate runs/gan -n 2000 --class pneumonia -o synthetic/ --seed 0
    """
    from medlens.generation import generate as generate_images

    paths = generate_images(
        run, n, class_name, output, seed=seed, batch_size=batch_size, steps=steps
    )
    console.print(f"{len(paths)} synthetic images in {paths[0].parent}/", soft_wrap=True)
    console.print(f"provenance: {output / 'provenance.csv'}", soft_wrap=True)
