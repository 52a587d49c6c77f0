"""The latent diffusion sampler: predicted clean latents are bounded."""

from __future__ import annotations

import pytest
import torch

from medlens.generation.sample import _denoise, sampler_clip

pytest.importorskip("monai")


class _Overshooting(torch.nn.Module):
    """A 'U-Net' whose noise prediction is far off: unclipped DDIM diverges from it."""

    def forward(self, latents: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return -3.0 * latents


@pytest.mark.parametrize("name", ["ddim", "ddpm"])
def test_clip_bounds_the_denoised_latents(name: str) -> None:
    latents = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(4, dtype=torch.long)
    sampler = {"name": name, "steps": 20, "timesteps": 100, "eta": 0.0}
    free = _denoise(_Overshooting(), latents, labels, {**sampler, "clip": None}, None, 0)
    bounded = _denoise(_Overshooting(), latents, labels, {**sampler, "clip": 2.0}, None, 0)
    assert free.abs().max() > 10  # diverged
    assert bounded.abs().max() <= 2.0 + 1e-4


def test_runs_without_the_setting_get_the_default_clip() -> None:
    assert sampler_clip({"name": "ddim", "steps": 50, "timesteps": 1000}) == 4.0
    assert sampler_clip({"name": "ddim", "clip": None}) is None
