"""``medlens predict``: label image files or folders with a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def predict(
    run: Path = typer.Argument(..., help="Run directory written by medlens train."),
    inputs: list[str] = typer.Argument(
        ...,
        help="Image files or folders (DICOM, NIfTI, PNG/JPEG, ...), or DICOMweb studies "
        "(dicomweb://HOST:PORT/PATH?StudyInstanceUID=...[&SeriesInstanceUID=...]).",
        show_default=False,
    ),
    output: Path = typer.Option(Path("predictions.csv"), "-o", "--output", help="CSV to write."),
    store: list[str] = typer.Option(
        [],
        "--store",
        help="Send the DICOM results (SR, SEG, SC) to dicomweb[s]://HOST:PORT/PATH (STOW-RS) "
        "or dimse://AET@HOST:PORT (C-STORE); repeatable.",
    ),
    heatmap: bool = typer.Option(
        False, "--heatmap", help="DICOM studies: also a Grad-CAM Secondary Capture."
    ),
    chunked: bool = typer.Option(
        False, "--chunked", help="STOW with chunked transfer encoding (default: one body)."
    ),
) -> None:
    """Predict every image in INPUTS; write one CSV row per image.

    The preprocessing, temperature and decision threshold stored with the model are used.
    Folders are searched recursively; a 3D volume (NIfTI, DICOM series) given to a 2D
    model is reduced to its middle slice.

    Examples:

        medlens predict runs/pneumonia xrays/ -o predictions.csv

        medlens predict runs/ct "dicomweb://127.0.0.1:8042/dicom-web?StudyInstanceUID=1.2.3"
        --store dicomweb://127.0.0.1:8042/dicom-web

    DICOMweb studies, and DICOM series folders given with --store or --heatmap, are
    predicted per series and their results written as DICOM (sr.dcm, seg.dcm, sc.dcm) in
    the CSV's folder without .csv, one sub-folder per series. Credentials come from
    MEDLENS_DICOMWEB_TOKEN(_FILE) or MEDLENS_DICOMWEB_BASIC(_FILE).
    """
    import csv

    from medlens.hospital.predict import is_dicomweb

    if store or heatmap or any(is_dicomweb(item) for item in inputs):
        from medlens.hospital import predict_studies

        path = predict_studies(run, inputs, output, stores=store, heatmap=heatmap, chunked=chunked)
        with path.open(newline="") as handle:
            stored = sum(int(row["stored"]) for row in csv.DictReader(handle))
        console.print(
            f"{len(inputs)} stud(ies) predicted; DICOM results beside [bold]{path}[/], "
            f"{stored} object(s) stored",
            soft_wrap=True,
        )
        return
    from medlens.pipeline import predict_files

    path = predict_files(run, [Path(item) for item in inputs], output)
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
