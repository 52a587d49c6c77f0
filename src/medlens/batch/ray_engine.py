"""The Ray Data engine (``medlens[scale]``): shards predicted by a pool of actors.

Ray is imported here only, so medlens works without it. ``address`` joins a running
cluster (``ray.init(address=...)``); without it a local Ray with ``cpus`` CPUs is started.
"""

from __future__ import annotations

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
    """``(shard, table)`` for each shard, predicted by ``map_batches`` over Ray actors."""
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
    for shard in shards:
        items = [{"index": shard.start + i, "item": p} for i, p in enumerate(shard.items)]
        dataset = ray.data.from_items(items).map_batches(
            RayPredictor,
            fn_constructor_kwargs={
                "run_dir": str(run_dir),
                "mask_dir": str(out / "masks" / shard.name),
            },
            batch_size=batch_size,
            batch_format="numpy",
            concurrency=actors,
            num_cpus=1,
        )
        yield shard, shard_table(_rows(dataset), schema_source)


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
