"""The Ray Data engine (``medlens[scale]``): all pending shards through one actor pool.

Ray is imported here only, so medlens works without it. ``address`` joins a running
cluster (``ray.init(address=...)``); without it a local Ray with ``cpus`` CPUs is started.

Every pending shard's items go into one ``map_batches`` over a stable pool of actors
(each loads the model once), with ``preserve_order`` so that rows come back in manifest
order: the driver cuts them into shards as they stream in and holds one shard at a time.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medlens.batch.predict import RayPredictor
from medlens.batch.shards import Shard
from medlens.errors import ConfigError

__all__ = ["ray_tables"]


def ray_tables(
    run_dir: Path,
    shards: list[Shard],
    out: Path,
    batch_size: int,
    address: str | None,
    cpus: int | None,
) -> Iterator[tuple[Shard, Any]]:
    """``(shard, table)`` for each shard in order, from one ``map_batches`` over all of them."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("the ray engine needs Ray Data: pip install 'medlens[scale]'") from exc
    from medlens.batch.runner import shard_table
    from medlens.inference import Predictor

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    actors = max(1, int(ray.available_resources().get("CPU", 1)) if cpus is None else cpus)
    schema_source = Predictor.from_run(run_dir, engine="torch")  # column names and types
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows in manifest order: cut by shard
    items = [
        {"index": s.start + i, "item": p, "shard": s.index}
        for s in shards
        for i, p in enumerate(s.items)
    ]
    dataset = ray.data.from_items(items).map_batches(
        RayPredictor,
        fn_constructor_kwargs={"run_dir": str(run_dir), "out": str(out)},
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=actors,
        num_cpus=1,
    )
    for shard, rows in _by_shard(_rows(dataset), shards):
        yield shard, shard_table(rows, schema_source)


def _by_shard(
    rows: Iterator[dict[str, Any]], shards: list[Shard]
) -> Iterator[tuple[Shard, list[dict[str, Any]]]]:
    """Group rows (in index order) into their shards; a shard missing rows is an error."""
    starts = [s.start for s in shards]
    current: Shard | None = None
    buffer: list[dict[str, Any]] = []
    for row in rows:
        shard = shards[bisect.bisect_right(starts, int(row["index"])) - 1]
        if current is not None and shard is not current:
            yield current, _complete(current, buffer)
            buffer = []
        current = shard
        buffer.append(row)
    if current is not None:
        yield current, _complete(current, buffer)


def _complete(shard: Shard, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(rows) != len(shard.items):
        raise ConfigError(
            f"{shard.name}: Ray returned {len(rows)} of {len(shard.items)} rows "
            "(rows out of order: is preserve_order off?)"
        )
    return rows


def _rows(dataset: Any) -> Iterator[dict[str, Any]]:
    for batch in dataset.iter_batches(batch_format="pandas", batch_size=None):
        for row in batch.to_dict(orient="records"):
            yield {key: _plain(value) for key, value in row.items()}


def _plain(value: Any) -> Any:
    """numpy/pandas scalars and NaN (Ray's missing values) as Python values and None."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
