"""``medlens data``: build a dataset's manifest and fingerprint, or show an existing one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def data(
    source: str = typer.Argument(
        ...,
        help="A folder per class, a CSV, a MedMNIST .npz (or medmnist:NAME to download), "
        "a Decathlon folder; or, without -o, a built dataset folder or manifest.csv to show.",
        show_default=False,
    ),
    out_dir: Path | None = typer.Option(
        None, "--out", "-o", help="Write manifest.csv and fingerprint.json here."
    ),
    val_fraction: float = typer.Option(0.1, help="Validation share, unless the source has one."),
    test_fraction: float = typer.Option(0.0, help="Test share, unless the source has one."),
    seed: int = typer.Option(0, help="Seed of the split and of the fingerprint's sample."),
    patient_regex: str | None = typer.Option(
        None, help="Regex whose group 'patient' (or 1) is the patient ID in file names."
    ),
    overlap: str = typer.Option(
        "exclude",
        help="Training images of patients also in the official val/test: exclude, keep, error.",
    ),
    no_grouping: bool = typer.Option(
        False, "--no-grouping", help="Split images, not patients (leaks; for tests only)."
    ),
    sample_size: int = typer.Option(200, help="Images read for sizes and intensity statistics."),
    as_json: bool = typer.Option(False, "--json", help="Print the fingerprint as JSON."),
) -> None:
    """Build a dataset (manifest.csv + fingerprint.json) or show one.

    Splits are stratified by class, grouped by patient and seeded; an official split
    (MedMNIST, train/ and test/ folders) is kept and only validation is carved from train.

    Examples:

        medlens data chest_xray/ -o data/chest --val-fraction 0.1 --seed 0

        medlens data medmnist:pneumoniamnist -o data/pneumoniamnist

        medlens data data/chest
    """
    from medlens.data import load_fingerprint, load_manifest, prepare_dataset
    from medlens.data.fingerprint import compute_fingerprint
    from medlens.errors import ConfigError

    if overlap not in ("exclude", "keep", "error"):
        raise ConfigError(f"--overlap must be exclude, keep or error, not {overlap!r}")
    if out_dir is not None:
        options: dict[str, Any] = {"patient_regex": patient_regex} if patient_regex else {}
        _, fingerprint = prepare_dataset(
            source,
            out_dir,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
            group_by_patient=not no_grouping,
            overlap=overlap,
            sample_size=sample_size,
            **options,
        )
        where = f"wrote {out_dir / 'manifest.csv'} and {out_dir / 'fingerprint.json'}"
    else:
        path = Path(source)
        folder = path if path.is_dir() else path.parent
        if (folder / "fingerprint.json").is_file():
            fingerprint = load_fingerprint(folder)
        else:
            fingerprint = compute_fingerprint(load_manifest(path), sample_size=sample_size)
        where = f"dataset {path}"
    if as_json:
        typer.echo(json.dumps(fingerprint, indent=2))
    else:
        _print_summary(fingerprint, where)


def _print_summary(fingerprint: dict[str, Any], where: str) -> None:
    from rich.table import Table

    counts: dict[str, dict[str, int]] = fingerprint["counts"]
    classes = sorted({name for row in counts.values() for name in row})
    table = Table(title=f"{fingerprint['task']} dataset: {fingerprint['num_images']} images")
    for column in ("split", *classes, "images", "patients"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, row in counts.items():
        cells = [str(row.get(name, 0)) for name in classes]
        patients = str(fingerprint.get("patients", {}).get(split, ""))
        table.add_row(split, *cells, str(sum(row.values())), patients)
    console.print(table)
    shapes, spacing = fingerprint.get("shapes", {}), fingerprint.get("spacing", {})
    intensity = fingerprint.get("intensity", {})
    sample = fingerprint.get("sample", {})
    console.print(f"sampled images: {sample.get('size', 0)} (seed {sample.get('seed', 0)})")
    if spacing:
        channels = fingerprint.get("channels", 1)
        kind = "3-channel (colour)" if channels == 3 else "1-channel (grey)"
        console.print(f"input: {kind} {len(spacing['median'])}D images (what `train` will use)")
    if shapes:
        console.print(f"size: min {shapes['min']}  median {shapes['median']}  max {shapes['max']}")
    if spacing:
        console.print(f"spacing (mm): median {spacing['median']}")
    if intensity:
        console.print(
            f"intensity: mean {intensity['mean']:g}  std {intensity['std']:g}  "
            f"p0.5 {intensity['p0.5']:g}  p99.5 {intensity['p99.5']:g}"
        )
    leaks = fingerprint.get("patients_in_several_splits", 0)
    style = "bold red" if leaks else "green"
    console.print(f"[{style}]patients in more than one split: {leaks}[/]")
    console.print(f"manifest sha256: {fingerprint['manifest_sha256'][:16]}…  ({where})")
