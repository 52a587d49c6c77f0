"""Validation under DDP counts every item once: no DistributedSampler padding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from medlens.training.distributed import DistContext, gather_shards, shard_indices
from medlens.training.loop import Trainer, auc_score

N = 7  # odd: two processes cannot split it evenly


class _Task:
    monitor = "val_auc"

    def prepare_target(self, target: torch.Tensor) -> torch.Tensor:
        return target


def _parts() -> tuple[nn.Module, DataLoader]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    x = torch.randn(N, 3, 4)
    y = torch.tensor([0, 1, 0, 1, 1, 0, 1])
    return model, DataLoader(TensorDataset(x, y), batch_size=3)


def _figures(trainer: Trainer, loader: DataLoader) -> dict[str, object]:
    seen: list[int] = []
    hook = trainer.model.register_forward_hook(lambda _m, args, _o: seen.append(len(args[0])))
    logits, targets = trainer.predict_logits(loader, sharded=True)
    hook.remove()
    probs = torch.softmax(logits, 1).numpy()
    return {
        "predicted_here": sum(seen),
        "rows": len(logits),
        "logits": logits.tolist(),
        "targets": targets.tolist(),
        "loss": float(nn.functional.cross_entropy(logits, targets)),
        "auc": auc_score(probs, targets.numpy(), "binary"),
    }


def _trainer(model: nn.Module, loader: DataLoader, ctx: DistContext) -> Trainer:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return Trainer(model, optimizer, nn.CrossEntropyLoss(), None, loader, loader,  # type: ignore[arg-type]
                   task=_Task(), epochs=1, dist=ctx)  # fmt: skip


def _worker(rank: int, world_size: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world_size)  # fmt: skip
    try:
        ctx = DistContext(rank=rank, world_size=world_size)
        model, loader = _parts()
        figures = _figures(_trainer(model, loader, ctx), loader)
        Path(out, f"rank{rank}.json").write_text(json.dumps(figures))
    finally:
        dist.destroy_process_group()


def test_shard_indices_cover_every_item_once() -> None:
    shards = [shard_indices(N, DistContext(rank=r, world_size=2)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(N))
    padded = [list(DistributedSampler(range(N), num_replicas=2, rank=r, shuffle=False))
              for r in range(2)]  # fmt: skip
    assert len(padded[0]) + len(padded[1]) == N + 1  # what a DistributedSampler would count
    alone = torch.arange(5.0)
    assert torch.equal(gather_shards(alone, 5, DistContext()), alone)


@pytest.mark.slow
def test_two_gloo_processes_give_the_one_process_metrics(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    model, loader = _parts()
    single = _figures(_trainer(model, loader, DistContext()), loader)
    for rank in range(2):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["rows"] == single["rows"] == N
        assert got["predicted_here"] == len(range(rank, N, 2))  # its share, not the whole set
        assert got["targets"] == single["targets"]
        np.testing.assert_allclose(got["logits"], single["logits"], rtol=0, atol=1e-6)
        assert got["loss"] == pytest.approx(single["loss"], abs=1e-7)
        assert got["auc"] == pytest.approx(single["auc"], abs=1e-12)
