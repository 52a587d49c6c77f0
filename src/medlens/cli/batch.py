"""``medlens batch``: predict a manifest of images, sharded and resumable, into Parquet."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def batch(
    run: Path = typer.Argument(..., help="Run directory written by medlens train."),
    manifest: Path = typer.Argument(
        ..., help="CSV (column 'path'), Parquet or text list of image files or folders."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for shard-*.parquet."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Items per shard."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per forward pass."),
    workers: int = typer.Option(0, "--workers", help="DataLoader workers (local engine)."),
    engine: str = typer.Option("local", "--engine", help="local or ray (medlens[scale])."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address."),
    cpus: int | None = typer.Option(None, "--cpus", help="CPUs (actors) for a local Ray."),
) -> None:
    """Predict every item of MANIFEST; one Parquet file and done-marker per shard.

    A rerun skips shards that are already done (same inputs, same model), so an
    interrupted batch resumes where it stopped. An unreadable item is logged (index and
    error type only) and recorded in the 'error' column; the rest carry on. Under
    torchrun each rank takes its own shards.

    Examples:

        medlens batch runs/demo images.csv -o out/ --shard-size 5000 --workers 2

        torchrun --nproc-per-node 2 -m medlens batch runs/demo images.csv -o out/
    """
    from medlens.batch import run_batch

    summary = run_batch(
        run, manifest, output, shard_size=shard_size, batch_size=batch_size,
        workers=workers, engine=engine, address=address, cpus=cpus,
    )  # fmt: skip
    console.print(
        f"{summary.written} shard(s) written, {summary.skipped} already done "
        f"({summary.rows} rows, {summary.errors} skipped items) in [bold]{summary.output}[/]",
        soft_wrap=True,
    )
