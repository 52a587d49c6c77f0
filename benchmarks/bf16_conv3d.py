"""Why the 3D ResNet's loss became NaN under CPU bf16 autocast: the conv3d weight gradient.

Part 1 trains the VesselMNIST3D configuration's network (``resnet18_3d``, widths x0.25, 28³
inputs, AdamW lr 0.002, batch 32, the first 256 training volumes) for ``--steps`` steps under
``torch.autocast("cpu", torch.bfloat16)`` (the loss in float32, as the trainer does) and
prints, per step, the loss, the gradient norm and the parameters whose gradient is not finite.
Part 2 compares the bf16 conv3d gradients (3³ kernel, padding 1) with float32 at several input
sizes, with and without oneDNN. Part 3 prints what ``precision: auto`` resolves to for 2D and
3D models here.

    OMP_NUM_THREADS=1 flock /tmp/medlens-laneG.lock python benchmarks/bf16_conv3d.py \\
        --data ../shared/datasets/medmnist3d/vesselmnist3d.npz
"""

from __future__ import annotations

import argparse
import platform
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from medlens.models import create_model
from medlens.tasks.run import resolve_precision


def train_steps(data: str, steps: int) -> None:
    torch.manual_seed(0)
    arrays = np.load(data)
    x = torch.from_numpy(arrays["train_images"][:256]).float().div(255).sub(0.5).div(0.5)
    x, y = x.unsqueeze(1), torch.from_numpy(arrays["train_labels"][:256, 0]).long()
    model = create_model(
        "resnet18_3d", num_classes=2, in_chans=1, image_size=28, drop_rate=0.2, widen_factor=0.25
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.002, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 8.0]))
    for step in range(steps):
        index = torch.arange(step * 32, step * 32 + 32) % 256
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x[index])
        loss = loss_fn(logits.float(), y[index])
        optimizer.zero_grad()
        loss.backward()
        bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
        print(f"step {step:2d}  loss {loss.item():8.4f}  grad norm {norm.item():10.3g}  "
              f"non-finite grads: {bad[:3] or '-'}")  # fmt: skip
        if bad or not torch.isfinite(loss):
            return
        optimizer.step()


def relative_errors(channels: int, size: int, batch: int = 8) -> tuple[float, float, float]:
    """Max relative error of bf16 vs float32: output, input gradient, weight gradient."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, channels, size, size, size, generator=g) * 2 - 1
    w = torch.randn(channels, channels, 3, 3, 3, generator=g) * 0.05
    grad = torch.randn(batch, channels, size, size, size, generator=g)

    def run(dtype: torch.dtype) -> list[torch.Tensor]:
        xi, wi = x.to(dtype).requires_grad_(), w.to(dtype).requires_grad_()
        out = F.conv3d(xi, wi, None, 1, 1)
        gx, gw = torch.autograd.grad(out, (xi, wi), grad.to(dtype))
        return [t.float() for t in (out, gx, gw)]

    ref, low = run(torch.float32), run(torch.bfloat16)
    return tuple(float((b - a).abs().max() / a.abs().max()) for a, b in zip(ref, low, strict=True))


def kernel_table() -> None:
    print("\nchannels  input  oneDNN  rel err: output  grad_input  grad_weight")
    for onednn in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with torch.backends.mkldnn.flags(enabled=onednn):
                for channels in (8, 16, 128):
                    for size in (1, 2, 3, 4):
                        out, gx, gw = relative_errors(channels, size)
                        print(f"{channels:8d}  {size}³     {str(onednn):6s}  "
                              f"{out:15.4f}  {gx:10.4f}  {gw:11.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/datasets/medmnist3d/vesselmnist3d.npz")
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"threads {torch.get_num_threads()}")  # fmt: skip
    train_steps(args.data, args.steps)
    kernel_table()
    cpu = torch.device("cpu")
    for dims in (2, 3):
        dtype = resolve_precision("auto", cpu, spatial_dims=dims)
        print(f"\nprecision auto, {dims}D model: {dtype}")


if __name__ == "__main__":
    main()
