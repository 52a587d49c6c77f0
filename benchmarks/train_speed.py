"""Training speed: ``medlens`` Trainer vs a bare PyTorch loop, and the fraction of fp32 peak.

Both loops train the same model (fresh copies of the same initial weights) on the same
in-memory tensors with the same batch size, loss and optimiser; the medlens side uses its
loaders (sampler, cached dataset), schedule, progress bar, metrics and TensorBoard
callbacks, exactly as ``medlens train`` does. Epochs alternate between the two, and the
median images/s is reported. The peak is measured with a large fp32 matmul on the same
number of threads; the FLOPs of one training step are counted by ``FlopCounterMode``.

    flock /tmp/medlens-heavy.lock python benchmarks/train_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from medlens.config import LossConfig, OptimizerConfig, ScheduleConfig
from medlens.models import create_model
from medlens.training.callbacks import JsonlLogger, ProgressCallback, TensorBoardLogger
from medlens.training.data import CachedDataset, make_loader
from medlens.training.distributed import DistContext
from medlens.training.loop import Trainer
from medlens.training.losses import build_loss
from medlens.training.optim import LRSchedule, build_optimizer


def bare_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer) -> None:
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for x, y in loader:
        loss = loss_fn(model(x), y.float().reshape(-1, 1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of an n x n fp32 matmul (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def step_flops(model: nn.Module, batch: torch.Tensor) -> int:
    """FLOPs of forward + backward of one batch."""
    model = copy.deepcopy(model)
    with FlopCounterMode(display=False) as counter:
        model(batch).sum().backward()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="simple_cnn")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = args.image_size
    x = torch.randn(args.images, 1, size, size)
    y = (x.mean((1, 2, 3)) > 0).long()
    options = {"batch_norm": True} if args.model == "simple_cnn" else {}
    initial = create_model(args.model, num_classes=1, in_chans=1, image_size=size, **options)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format

    bare_model = copy.deepcopy(initial).to(memory_format=fmt)
    bare_opt = torch.optim.AdamW(bare_model.parameters(), lr=1e-3)
    bare_loader = DataLoader(
        TensorDataset(x.to(memory_format=fmt), y), batch_size=args.batch_size, shuffle=True,
        drop_last=True,
    )  # fmt: skip

    model = copy.deepcopy(initial)
    optimizer = build_optimizer(model, OptimizerConfig(lr=1e-3, weight_decay=0.0))
    dist = DistContext()
    dataset = CachedDataset(x.half(), y)
    loaders = [make_loader(dataset, batch_size=args.batch_size, train=t, seed=0, dist=dist)
               for t in (True, False)]  # fmt: skip
    steps = len(loaders[0])
    schedule = LRSchedule(optimizer, ScheduleConfig(), epochs=100, steps_per_epoch=steps)
    tmp = Path(tempfile.mkdtemp(prefix="medlens-speed-"))
    callbacks = [JsonlLogger(tmp / "metrics.jsonl"), TensorBoardLogger(tmp / "tb"),
                 ProgressCallback(steps)]  # fmt: skip
    trainer = Trainer(
        model, optimizer, build_loss(LossConfig(), "binary"), schedule, *loaders,
        task="binary", epochs=100, callbacks=callbacks, channels_last=args.channels_last,
    )  # fmt: skip
    for cb in callbacks:
        cb.on_train_start(trainer)

    images = steps * args.batch_size
    medlens_rates, bare_rates = [], []
    for round_ in range(args.rounds + 1):  # round 0 warms up both
        start = time.perf_counter()
        trainer.prepare_epoch(round_)
        trainer.train_epoch()
        medlens_rate = images / (time.perf_counter() - start)
        start = time.perf_counter()
        bare_epoch(bare_model, bare_loader, bare_opt)
        bare_rate = images / (time.perf_counter() - start)
        if round_:
            medlens_rates.append(medlens_rate)
            bare_rates.append(bare_rate)
    for cb in callbacks:
        cb.on_train_end(trainer)

    m, b = statistics.median(medlens_rates), statistics.median(bare_rates)
    peak = matmul_peak()
    flops = step_flops(initial, x[: args.batch_size])
    achieved = flops * (m / args.batch_size) / 1e9
    print(
        f"model {args.model} {size}px batch {args.batch_size}, {args.threads} thread(s), "
        f"channels_last={args.channels_last}, {images} images per epoch, {args.rounds} rounds"
    )
    listed = {name: ", ".join(f"{r:.1f}" for r in rates)
              for name, rates in (("m", medlens_rates), ("b", bare_rates))}  # fmt: skip
    print(f"medlens Trainer: {m:.1f} images/s (rounds: {listed['m']})")
    print(f"bare PyTorch loop: {b:.1f} images/s (rounds: {listed['b']})")
    print(f"ratio medlens / bare: {m / b:.3f}")
    print(f"fp32 matmul peak ({args.threads} thread(s)): {peak:.1f} GFLOP/s")
    print(f"training step: {flops / 1e9:.3f} GFLOP per batch -> {achieved:.1f} GFLOP/s, "
          f"{achieved / peak:.1%} of peak")  # fmt: skip


if __name__ == "__main__":
    main()
