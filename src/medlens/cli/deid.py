"""``medlens deid``: de-identify a DICOM file or folder tree (PS3.15 Basic Profile)."""

from __future__ import annotations

from collections import Counter
from enum import Enum
from pathlib import Path

import typer

from medlens.cli._common import console, err_console, handle_errors


class Dates(str, Enum):
    remove = "remove"
    shift = "shift"


@handle_errors
def deid(
    src: Path = typer.Argument(..., help="A DICOM file or a folder of DICOM files (read only)."),
    out: Path = typer.Argument(..., help="Output folder (created); gets deid_report.csv."),
    key_file: Path | None = typer.Option(
        None,
        "--key-file",
        help="Secret key (hex), created with mode 0600 if absent, never inside OUT. Without "
        "it a random key is used and UIDs/pseudonyms match no other run.",
    ),
    dates: Dates = typer.Option(
        Dates.remove, "--dates", help="remove (Basic Profile) or shift by a per-patient offset."
    ),
    keep_private_safe: bool = typer.Option(
        False, "--keep-private-safe", help="Keep the documented safe private attributes."
    ),
    uid_root: str = typer.Option("2.25", "--uid-root", help="Root of the replacement UIDs."),
    redact: list[str] = typer.Option(
        [],
        "--redact",
        help="x0,y0,x1,y1 pixel box to blank in images at risk of burned-in text, instead of "
        "quarantining them (repeatable).",
    ),
    keep_names: bool = typer.Option(
        False,
        "--keep-names",
        help="Mirror input file and folder names (default: name outputs by de-identified UIDs).",
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Where to write the report (default OUT/deid_report.csv)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes to use."),
) -> None:
    """De-identify DICOM files to the PS3.15 Basic Application Level Confidentiality Profile.

    Images at risk of burned-in text go to OUT/quarantine unless --redact is given.
    Exit code 1 if any file failed.

    Examples:

        medlens deid incoming/ deidentified/ --key-file ~/.medlens/site.key --dates shift
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from medlens.errors import ConfigError
    from medlens.privacy import Deidentifier, DeidOptions, parse_region

    if not src.exists():
        raise ConfigError(f"input {src} does not exist")

    options = DeidOptions(
        dates=dates.value,
        keep_private_safe=keep_private_safe,
        uid_root=uid_root,
        redact=tuple(parse_region(r) for r in redact),
    )
    if key_file is None:
        deidentifier = Deidentifier(None, options)
        err_console.print(
            "[yellow]warning:[/] no --key-file: a random key is used for this run; "
            "UIDs and pseudonyms will not match those of any other run."
        )
    else:
        deidentifier = Deidentifier.from_key_file(key_file, options, out=out)
    columns = (TextColumn("de-identifying"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("deid", total=None)
        results = deidentifier.deidentify_tree(
            src,
            out,
            keep_names=keep_names,
            report=report,
            progress=lambda done, total, _r: bar.update(task, completed=done, total=total),
            workers=workers,
        )
    counts = Counter(r.status for r in results)
    summary = ", ".join(
        f"{counts[s]} {s}" for s in ("done", "redacted", "quarantined", "skipped", "failed")
    )
    console.print(f"{len(results)} files: {summary}")
    console.print(f"report: {report or out / 'deid_report.csv'}")
    if report is None and (withheld := sum(r.identifying_input for r in results)):
        console.print(
            f"{withheld} input paths hold identifiers and are withheld from the report; "
            "use --report PATH outside OUT to list them."
        )
    if counts["failed"]:
        raise typer.Exit(code=1)
