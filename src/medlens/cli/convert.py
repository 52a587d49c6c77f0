"""``medlens convert``: DICOM / NIfTI / raster in, PNG or NIfTI out."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def convert(
    source: Path = typer.Argument(
        ...,
        help="DICOM file, DICOM series folder, NIfTI, PNG/JPEG/TIFF or .npy.",
        show_default=False,
    ),
    target: Path = typer.Argument(
        ...,
        help="Output file: .png, .nii or .nii.gz (the extension picks the format).",
        show_default=False,
    ),
    window: str | None = typer.Option(
        None,
        "--window",
        "-w",
        help="Intensity window: a preset (lung, bone, brain, soft, mediastinum, liver, abdomen, "
        "subdural, stroke), CENTER,WIDTH (e.g. -600,1500), or auto (the file's own window or "
        "VOI LUT, else the 0.5-99.5 percentiles). PNG default: integers that fit are copied "
        "unchanged, anything else uses auto. NIfTI default: values unchanged.",
    ),
    bits: int | None = typer.Option(None, "--bits", help="PNG bit depth: 8 (default) or 16."),
    slice_index: int | None = typer.Option(
        None,
        "--slice",
        help="For a 3D input written as PNG: the slice (index along the first axis) to write. "
        "Default: the middle slice.",
    ),
    series: str | None = typer.Option(
        None,
        "--series",
        help="For a folder with several series: the Series Instance UID (or its end).",
    ),
    label: bool = typer.Option(False, "--label", help="Treat the input as a label map (integers)."),
) -> None:
    """Convert a medical image to PNG (8/16-bit, one 2D image) or NIfTI (2D/3D volume).

    A 3D input written as PNG gives ONE slice: the middle one, or the one set by --slice.

    Examples:

        medlens convert chest.dcm chest.png --window auto

        medlens convert ct_series/ ct.nii.gz

        medlens convert ct_series/ slice.png --window lung --slice 10 --bits 16
    """
    from medlens.io import convert_image

    out = convert_image(
        source,
        target,
        window=window,
        bits=bits,
        slice_index=slice_index,
        series_uid=series,
        kind="label" if label else None,
    )
    console.print(f"wrote {out}")
