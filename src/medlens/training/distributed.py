"""Distributed data parallel helpers: torchrun environment, rank-0 writing, all-reduce.

Nothing here starts processes: launch with ``torchrun --nproc-per-node N -m medlens train
...``. With ``WORLD_SIZE`` unset or 1 every helper is a no-op, so the same loop runs alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "all_reduce_mean", "barrier", "init_distributed", "shutdown_distributed"]


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
