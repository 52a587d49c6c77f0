"""Batch inference at scale: a manifest in, one Parquet file per shard out, resumable.

>>> run_batch("runs/demo", "manifest.csv", "out/")                    # doctest: +SKIP

The manifest lists files or folders (:mod:`.manifest`); items are cut into fixed shards
(:mod:`.shards`); each shard is predicted with the run's
:meth:`~medlens.inference.Predictor.from_run` predictor, written atomically as
``shard-NNNNN.parquet`` and then marked done. A rerun skips shards whose marker matches
(same inputs, same model card), so it resumes after a crash and gives identical output.
Engines: ``local`` (a torch DataLoader), ``ray`` (Ray Data, ``medlens[scale]``); under
``torchrun`` each rank takes the shards ``i % WORLD_SIZE == RANK``.
"""

from __future__ import annotations

from medlens.batch.manifest import read_manifest
from medlens.batch.runner import BatchSummary, run_batch
from medlens.batch.shards import Shard, plan_shards

__all__ = ["BatchSummary", "Shard", "plan_shards", "read_manifest", "run_batch"]
