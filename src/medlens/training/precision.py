"""Whether bf16 autocast is safe for a model here, checked rather than assumed.

Found while investigating NaN losses of the 3D ResNet under CPU bf16 autocast (torch 2.14,
oneDNN): the bf16 **weight gradient** of ``conv3d`` is wrong (about 100 % relative error, at
times NaN) when the input is 2³ voxels with 16 or more channels, the size a 28³ MedMNIST
volume reaches in a ResNet's last stage. The forward pass and the input gradient are right,
and so is the weight gradient at 1³, 3³ and 4³ or without oneDNN. The loss is computed in
float32 already (``Trainer.train_step``) and BatchNorm statistics stay finite: the NaN comes
from that one kernel and spreads through AdamW. :func:`bf16_conv3d_sound` runs that case
once (a few ms) and compares it with float32, so 3D models train in bf16 only where the
kernel is right and regain it once PyTorch fixes it.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F

__all__ = ["BF16_CONV3D_NOTE", "bf16_conv3d_sound"]

BF16_CONV3D_NOTE = (
    "bf16 autocast declined for this 3D model: this PyTorch computes wrong conv3d weight "
    "gradients in bf16 on this device (medlens.training.precision); trained in fp32"
)


@cache
def bf16_conv3d_sound(device_type: str = "cpu", *, tolerance: float = 0.05) -> bool:
    """Whether bf16 ``conv3d`` weight gradients match float32 on a 16-channel 2³ input."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 16, 2, 2, 2, generator=generator).to(device_type)
    grad = torch.randn(4, 16, 2, 2, 2, generator=generator).to(device_type)
    weight = (torch.randn(16, 16, 3, 3, 3, generator=generator) * 0.1).to(device_type)
    reference = _weight_grad(x, weight, grad)
    with torch.autocast(device_type, enabled=False):
        low = _weight_grad(x.bfloat16(), weight.bfloat16(), grad.bfloat16()).float()
    error = (low - reference).abs().max() / reference.abs().max().clamp_min(1e-12)
    return bool(torch.isfinite(low).all() and error < tolerance)


def _weight_grad(x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    weight = weight.detach().requires_grad_()
    with torch.enable_grad():
        out = F.conv3d(x, weight, None, 1, 1)
        return torch.autograd.grad(out, weight, grad)[0]
