"""The weight average: its arithmetic, and a run that validates, keeps and resumes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.training.test_loop import _train_interrupted
from torch import nn

from medlens.tasks.run import train_run
from medlens.training.callbacks import read_metrics
from medlens.training.ema import ModelEma


def test_average_warms_up_then_follows_slowly() -> None:
    model = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    ema = ModelEma(model, decay=0.9)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(5.0)
    ema.update(model)  # warm-up decay min(0.9, 2/11): mostly the new weights
    expected = start + 1.0 * (1 - 2 / 11)
    assert torch.allclose(ema.module[0].weight, expected)
    assert ema.module[1].running_mean.item() == 5.0  # statistics copied, not averaged
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_decay_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="decay"):
        ModelEma(nn.Linear(1, 1), decay=1.0)


@pytest.mark.slow
def test_a_run_with_ema_keeps_and_resumes_the_average(
    image_folder: Path, tmp_path: Path, make_config
) -> None:
    config = make_config(image_folder, tmp_path / "full", epochs=3).model_copy(
        update={"ema_decay": 0.9}
    )
    full = train_run(config)
    card = json.loads((full / "model.json").read_text())
    assert card["training"]["ema_decay"] == 0.9
    plain = train_run(make_config(image_folder, tmp_path / "plain", epochs=3))
    assert read_metrics(full / "metrics.jsonl") != read_metrics(plain / "metrics.jsonl")
    cut = tmp_path / "cut"
    _train_interrupted(config.model_copy(update={"output_dir": cut}), stop_after=2)
    train_run(resume=cut)
    assert read_metrics(cut / "metrics.jsonl") == read_metrics(full / "metrics.jsonl")
    assert (cut / "model.safetensors").read_bytes() == (full / "model.safetensors").read_bytes()
