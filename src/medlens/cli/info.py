"""``medlens info``: what each file or DICOM folder is, as a table (or JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import console, err_console, handle_errors

COLUMNS = (
    ("format", "format"),
    ("modality", "modality"),
    ("shape", "size"),
    ("dtype", "dtype"),
    ("spacing", "spacing (mm)"),
    ("orientation", "orientation"),
    ("photometric", "photometric"),
    ("transfer_syntax", "transfer syntax"),
    ("frames", "frames"),
    ("range", "range"),
)


@handle_errors
def info(
    paths: list[Path] = typer.Argument(
        ..., help="Image files or DICOM folders.", show_default=False
    ),
    show_phi: bool = typer.Option(
        False, "--show-phi", help="Also show patient-identifying DICOM tags and full series UIDs."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show what each image file or DICOM folder is, without patient data.

    Shows format, modality, size, dtype, spacing, orientation, photometric, transfer syntax.

    Also frames and value range, and for a DICOM folder the series it holds.

    Patient-identifying tags are shown only with --show-phi.

    Examples:

        medlens info scan.dcm chest.png brain.nii.gz

        medlens info ct_series/ --json
    """
    from medlens.errors import MedlensError
    from medlens.io import describe

    results: list[dict[str, Any]] = []
    for path in paths:
        try:
            results.append(describe(path, show_phi=show_phi))
        except MedlensError as exc:
            results.append({"path": str(path), "error": str(exc)})
    if as_json:
        console.print_json(json.dumps(results, default=str))
    else:
        _print_tables(results)
    if any("error" in result for result in results):
        raise typer.Exit(code=1)


def _print_tables(results: list[dict[str, Any]]) -> None:
    """One two-column table (field, value) per file: readable in any terminal width."""
    from rich.table import Table

    for result in results:
        if "error" in result:
            err_console.print(f"[bold red]error:[/] {result['error']}")
            continue
        table = Table(title=result["path"], show_header=False, title_justify="left")
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key, title in COLUMNS:
            if key in result:
                table.add_row(title, _cell(result[key], " .. " if key == "range" else "x"))
        console.print(table)
        _print_extras(result)


def _print_extras(result: dict[str, Any]) -> None:
    from rich.table import Table

    if result.get("series"):
        table = Table(title="series in this folder", title_justify="left")
        for title in ("series UID", "modality", "files", "size"):
            table.add_column(title)
        for s in result["series"]:
            table.add_row(s["uid"] or "(none)", s["modality"], str(s["files"]), _cell(s["size"]))
        console.print(table)
    if result.get("arrays"):
        for key, spec in result["arrays"].items():
            console.print(f"  {key}: {_cell(spec['shape'])} {spec['dtype']}")
    if result.get("phi"):
        console.print(f"[yellow]patient data (--show-phi) in {result['path']}:[/yellow]")
        for key, value in result["phi"].items():
            console.print(f"  {key}: {value}")


def _cell(value: Any, sep: str = "x") -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return sep.join(_number(v) for v in value) if value else "-"
    return _number(value)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
