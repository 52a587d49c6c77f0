"""Distributed data parallel helpers: torchrun environment, rank-0 writing, all-reduce.

Nothing here starts processes: launch with ``torchrun --nproc-per-node N -m medlens train
...``. With ``WORLD_SIZE`` unset or 1 every helper is a no-op, so the same loop runs alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

__all__ = [
    "DistContext",
    "all_reduce_mean",
    "barrier",
    "gather_shards",
    "init_distributed",
    "shard_indices",
    "shard_loader",
    "shutdown_distributed",
]


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes files, logs and progress bars."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistContext:
    """Join the process group that torchrun describes (gloo on CPU, NCCL on GPUs)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def all_reduce_mean(value: float, ctx: DistContext) -> float:
    """The mean of a scalar over all processes."""
    if not ctx.enabled:
        return value
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"  # NCCL reduces GPU tensors only
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / ctx.world_size


def barrier(ctx: DistContext) -> None:
    """Wait until every process got here (e.g. rank 0 wrote the run directory)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()


def shutdown_distributed(ctx: DistContext) -> None:
    """Wait for every process (rank 0 writes the results last), then leave the group."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# -- evaluation over shards: every item exactly once (no DistributedSampler padding) ---------
def shard_indices(n: int, ctx: DistContext) -> list[int]:
    """This process's items of ``n``: ``rank, rank + world_size, ...`` (never padded).

    ``DistributedSampler`` pads the last round with repeated items so that every process
    gets the same count; metrics over its output would count those items twice.
    """
    return list(range(ctx.rank, n, ctx.world_size))


def shard_loader(loader: DataLoader, ctx: DistContext) -> DataLoader:
    """A loader over this process's :func:`shard_indices` of ``loader``'s dataset, in order."""
    dataset = loader.dataset
    return DataLoader(
        Subset(dataset, shard_indices(len(dataset), ctx)),  # type: ignore[arg-type]
        batch_size=loader.batch_size or 1,  # a loader built with a batch_sampler has none
        shuffle=False,
        collate_fn=loader.collate_fn,
    )


def gather_shards(local: torch.Tensor, n: int, ctx: DistContext) -> torch.Tensor:
    """The ``n`` rows of all processes' :func:`shard_indices` outputs, in dataset order."""
    if not ctx.enabled:
        return local
    rows = -(-n // ctx.world_size)  # each process's count, rounded up: pad to gather
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    padded = torch.zeros((rows, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: len(local)] = local.to(device)
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    out = torch.empty((n, *local.shape[1:]), dtype=local.dtype)
    for rank, part in enumerate(parts):
        count = len(range(rank, n, ctx.world_size))
        out[rank :: ctx.world_size] = part[:count].cpu()  # the padding rows are dropped
    return out
