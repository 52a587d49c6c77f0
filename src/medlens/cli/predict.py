"""``medlens predict``: label image files or folders with a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def predict(
    run: Path = typer.Argument(..., help="Run directory written by medlens train."),
    inputs: list[Path] = typer.Argument(
        ..., help="Image files or folders (DICOM, NIfTI, PNG/JPEG, ...).", show_default=False
    ),
    output: Path = typer.Option(Path("predictions.csv"), "-o", "--output", help="CSV to write."),
) -> None:
    """Predict every image in INPUTS; write one CSV row per image.

    The preprocessing, temperature and decision threshold stored with the model are used.
    Folders are searched recursively; a 3D volume (NIfTI, DICOM series) given to a 2D
    model is reduced to its middle slice.

    Examples:

        medlens predict runs/pneumonia xrays/ -o predictions.csv
    """
    import csv

    from medlens.pipeline import predict_files

    path = predict_files(run, inputs, output)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and "label_map" in rows[0]:  # a segmentation run: one label map per input
        folder = Path(rows[0]["label_map"]).parent
        console.print(f"{len(rows)} label map(s) written to [bold]{folder}[/]; listed in {path}")
        return
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["predicted_label"]] = counts.get(row["predicted_label"], 0) + 1
    summary = ", ".join(f"{label or '(none)'}: {n}" for label, n in sorted(counts.items()))
    console.print(
        f"{len(rows)} image(s) predicted ({summary}); written to [bold]{path}[/]", soft_wrap=True
    )
