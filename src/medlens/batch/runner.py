"""Run a batch: plan shards, skip finished ones, predict the rest, write Parquet + marker."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medlens.batch.manifest import read_manifest
from medlens.batch.predict import (
    ItemDataset,
    classify,
    collate_loaded,
    loader_options,
    predict_batch,
    uncollate_loaded,
)
from medlens.batch.shards import Shard, plan_shards
from medlens.errors import ConfigError

__all__ = ["BatchSummary", "run_batch"]

log = logging.getLogger("medlens.batch")
ENGINES = ("local", "ray")
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class BatchSummary:
    """What a call did: shards planned, skipped (already done) and written, rows, errors."""

    output: Path
    shards: int
    skipped: int
    written: int
    rows: int
    errors: int


def run_batch(
    run_dir: str | Path,
    manifest: str | Path,
    output: str | Path,
    *,
    shard_size: int = 1000,
    batch_size: int = 64,
    workers: int = 0,
    engine: str = "local",
    address: str | None = None,
    cpus: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    on_shard: Callable[[Shard, int], None] | None = None,
) -> BatchSummary:
    """Predict every manifest item with the run's model; one Parquet file per shard.

    Shards ``i`` with ``i % world_size == rank`` are this process's (default: ``RANK`` and
    ``WORLD_SIZE`` from torchrun, else all). A shard whose done-marker matches its inputs
    and the model card is skipped. ``on_shard(shard, rows)`` is called after each written
    shard (progress). Rows: ``index``, ``item``, ``label``, per-class ``p_<class>``
    (classification) or ``mask_path`` + ``volume_mm3_<class>`` (segmentation),
    ``error_type`` and ``error`` (set when the item was skipped).
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown batch engine {engine!r}; choose one of {', '.join(ENGINES)}")
    run_dir, out = Path(run_dir), Path(output)
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    card_sha256 = hashlib.sha256((run_dir / "model.json").read_bytes()).hexdigest()
    shards = plan_shards(read_manifest(manifest), shard_size)
    mine = [s for s in shards if s.index % world_size == rank]
    todo = [s for s in mine if not s.is_done(out, s.inputs_sha256(card_sha256, _options()))]
    out.mkdir(parents=True, exist_ok=True)
    rows = errors = 0
    for shard, table in _tables(run_dir, todo, out, engine, batch_size, workers, address, cpus):
        errors += _write_shard(shard, table, out, card_sha256)
        rows += table.num_rows
        if on_shard is not None:
            on_shard(shard, table.num_rows)
    return BatchSummary(out, len(mine), len(mine) - len(todo), len(todo), rows, errors)


def _options() -> dict[str, Any]:
    """Options that change a shard's output (hashed into its marker)."""
    return {"format": _FORMAT_VERSION}


def _tables(
    run_dir: Path, shards: list[Shard], out: Path, engine: str, batch_size: int, workers: int,
    address: str | None, cpus: int | None,
) -> Iterator[tuple[Shard, Any]]:  # fmt: skip
    if not shards:
        return
    if engine == "ray":
        from medlens.batch.ray_engine import ray_tables

        yield from ray_tables(run_dir, shards, out, batch_size, address, cpus)
        return
    from medlens.inference import Predictor

    predictor = Predictor.from_run(run_dir, batch_size=batch_size)
    for shard in shards:
        rows = _local_rows(predictor, shard, out, batch_size, workers)
        yield shard, shard_table(rows, predictor)


def _local_rows(
    predictor: Any, shard: Shard, out: Path, batch_size: int, workers: int
) -> Iterator[dict[str, Any]]:
    """A shard's rows, its items read (and preprocessed) by DataLoader workers."""
    from torch.utils.data import DataLoader

    indexed = [(shard.start + i, item) for i, item in enumerate(shard.items)]
    mask_dir = out / "masks" / shard.name
    if predictor.family == "segmentation":  # whole volumes: one at a time, in this process
        for pair in indexed:
            yield from predict_batch(predictor, [pair], mask_dir)
        return
    preprocessing, wants_2d = loader_options(predictor)
    loader = DataLoader(
        ItemDataset(indexed, preprocessing, wants_2d),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_loaded,
    )
    for collated in loader:
        yield from classify(predictor, uncollate_loaded(collated))


def shard_table(rows: Any, predictor: Any) -> Any:
    """The rows of one shard as a pyarrow table with a fixed schema (sorted by index)."""
    import pyarrow as pa

    schema = pa.schema(_fields(predictor))
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for row in rows:
        for name in schema.names:
            columns[name].append(row[name])
    table = pa.table(columns, schema=schema)
    return table.sort_by("index")


def _fields(predictor: Any) -> list[tuple[str, Any]]:
    import pyarrow as pa

    if predictor.family == "segmentation":
        per_class = [("mask_path", pa.string())]
        per_class += [(f"volume_mm3_{n}", pa.float64()) for n in predictor.classes[1:]]
    else:
        per_class = [(f"p_{name}", pa.float64()) for name in predictor.classes]
    head = [("index", pa.int64()), ("item", pa.string()), ("label", pa.string())]
    return head + per_class + [("error_type", pa.string()), ("error", pa.string())]


def _write_shard(shard: Shard, table: Any, out: Path, card_sha256: str) -> int:
    """Parquet then marker, each atomically; the number of skipped (error) rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from medlens.training.checkpoint import atomic_write_bytes, atomic_write_text

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    data = sink.getvalue().to_pybytes()
    atomic_write_bytes(shard.output(out), data)
    errors = table.num_rows - table.column("error_type").null_count
    if errors:
        log.warning("%s: %d of %d items skipped", shard.name, errors, table.num_rows)
    marker = {
        "shard": shard.index,
        "start": shard.start,
        "rows": table.num_rows,
        "errors": errors,
        "inputs_sha256": shard.inputs_sha256(card_sha256, _options()),
        "card_sha256": card_sha256,
        "parquet_sha256": hashlib.sha256(data).hexdigest(),
    }
    atomic_write_text(shard.marker(out), json.dumps(marker, indent=2) + "\n")
    return errors
