"""bf16 autocast for 3D models: declined where bf16 conv3d weight gradients are wrong."""

from __future__ import annotations

import warnings

import pytest
import torch

from medlens.errors import ConfigError
from medlens.tasks import run
from medlens.training.precision import bf16_conv3d_sound


def test_the_probe_passes_without_onednn() -> None:
    # the reference kernel is right; oneDNN's (torch 2.14, CPU) is the one found wrong at 2³
    with warnings.catch_warnings():  # torch warns about Intel-GPU TF32 when flags change
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            assert bf16_conv3d_sound.__wrapped__("cpu") is True
    assert isinstance(bf16_conv3d_sound("cpu"), bool)


def test_3d_models_train_in_fp32_where_the_kernel_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(run, "_has_native_bf16", lambda device: True)
    monkeypatch.setattr(run, "_bf16_conv3d_sound", lambda device: False)
    assert run.resolve_precision("auto", cpu, spatial_dims=3) is None
    assert run.resolve_precision("auto", cpu, spatial_dims=2) is torch.bfloat16
    with pytest.raises(ConfigError, match="wrong bf16 conv3d weight gradients"):
        run.resolve_precision("bf16", cpu, spatial_dims=3)
    monkeypatch.setattr(run, "_bf16_conv3d_sound", lambda device: True)
    assert run.resolve_precision("auto", cpu, spatial_dims=3) is torch.bfloat16


def test_the_card_says_why_bf16_was_declined(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    monkeypatch.setattr(run, "_has_native_bf16", lambda device: True)
    config = SimpleNamespace(precision="auto")
    trainer = SimpleNamespace(autocast_dtype=None, device=torch.device("cpu"))
    volume, image = SimpleNamespace(spatial_dims=3), SimpleNamespace(spatial_dims=2)
    note = run._precision_note(config, volume, trainer)  # type: ignore[arg-type]
    assert "declined" in note["precision_note"]
    assert run._precision_note(config, image, trainer) == {}  # type: ignore[arg-type]
