"""The rows an evaluation reads: the run's own manifest, or other data, one split of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medlens.errors import DatasetError


def evaluation_records(
    run_dir: Path, data: str | Path | None, split: str
) -> tuple[list[Any], tuple[str, ...]]:
    """Rows of ``split`` (all rows of data without splits) and the data's classes.

    ``data``: a manifest (CSV, or a folder holding ``manifest.csv``) or any dataset source;
    default: the run's own ``manifest.csv``.
    """
    from medlens.data import load_manifest, open_source

    if data is None:
        manifest = load_manifest(run_dir / "manifest.csv")
    else:
        data = Path(data)
        is_manifest = data.suffix == ".csv" or (data / "manifest.csv").is_file()
        manifest = load_manifest(data) if is_manifest else open_source(data)
    has_splits = any(r.split for r in manifest)
    records = list(manifest.split(split)) if has_splits else list(manifest)
    if not records:
        raise DatasetError(f"no cases in split {split!r} of {data or run_dir / 'manifest.csv'}")
    return records, manifest.classes
