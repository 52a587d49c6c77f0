"""``medlens similar``: the nearest training cases of an image."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def similar(
    run: Path = typer.Argument(..., help="Run directory written by medlens train."),
    image: Path = typer.Argument(..., help="An image file (DICOM, NIfTI, PNG/JPEG, ...)."),
    k: int = typer.Option(5, "-k", min=1, help="How many neighbours."),
    thumbnails: Path = typer.Option(
        None, help="Also write each neighbour's thumbnail as PNG into this folder."
    ),
) -> None:
    """List the K most similar training cases (label, cosine similarity).

    The index of the run's training embeddings is built on the first call and stored in
    RUN/similar/. Only case numbers and labels are shown, never file names or patient IDs.

    Examples:

        medlens similar runs/pneumonia xray.png -k 5
    """
    from medlens.io import read_image
    from medlens.similar import SimilarIndex
    from medlens.training.checkpoint import atomic_write_bytes

    index = SimilarIndex.build(run)
    cases = index.search(read_image(image), k)
    console.print(f"{len(cases)} nearest of {len(index.labels)} training cases ({index.backend}):")
    for case in cases:
        console.print(
            f"{case.rank:3d}. case {case.case:6d}  {case.label:20s} {case.similarity:.4f}"
        )
        if thumbnails is not None:
            atomic_write_bytes(thumbnails / f"{case.rank}.png", index.thumbnail_png(case.case))
