"""Losses, optimisers, schedules, checkpoints, seeding: the parts the loop is given."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medlens.config import LossConfig, OptimizerConfig, ScheduleConfig
from medlens.errors import ConfigError, WeightsError
from medlens.training.checkpoint import (
    atomic_write_bytes,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from medlens.training.losses import FocalLoss, build_loss, class_weights_from_counts
from medlens.training.optim import LRSchedule, build_optimizer, l1_penalty
from medlens.training.outputs import probabilities
from medlens.training.seed import get_rng_state, seed_everything, set_rng_state


def test_bce_and_ce_match_torch() -> None:
    logits, y = torch.randn(6, 1), torch.tensor([0, 1, 1, 0, 1, 0.0]).reshape(-1, 1)
    bce = build_loss(LossConfig(), "binary")
    assert torch.allclose(bce(logits, y), F.binary_cross_entropy_with_logits(logits, y))
    logits3, y3 = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    ce = build_loss(LossConfig(label_smoothing=0.1), "multiclass")
    assert torch.allclose(ce(logits3, y3), F.cross_entropy(logits3, y3, label_smoothing=0.1))


def test_focal_with_gamma_zero_is_cross_entropy_and_down_weights_easy_cases() -> None:
    logits, y = torch.tensor([[4.0], [-0.1]]), torch.tensor([[1.0], [1.0]])
    plain = FocalLoss(0.0, multiclass=False)(logits, y)
    assert torch.allclose(plain, F.binary_cross_entropy_with_logits(logits, y))
    easy, hard = (FocalLoss(2.0, multiclass=False)(logits[i : i + 1], y[:1]) for i in (0, 1))
    ratio_easy = easy / F.binary_cross_entropy_with_logits(logits[:1], y[:1])
    assert ratio_easy < 0.001 and hard > 0.1
    logits3, y3 = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    assert torch.allclose(
        FocalLoss(0.0, multiclass=True)(logits3, y3), F.cross_entropy(logits3, y3)
    )


def test_balanced_class_weights() -> None:
    assert class_weights_from_counts([30, 10]) == pytest.approx([40 / 60, 40 / 20])
    loss = build_loss(LossConfig(class_weights="balanced"), "binary", class_counts=[30, 10])
    logits, y = torch.zeros(2, 1), torch.tensor([[0.0], [1.0]])
    per = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    expected = (per * torch.tensor([[2 / 3], [2.0]])).mean()
    assert torch.allclose(loss(logits, y), expected)
    with pytest.raises(ConfigError, match="3 values for 2 classes"):
        build_loss(LossConfig(class_weights=[1, 2, 3]), "binary", class_counts=[3, 4])


def test_probabilities_per_task() -> None:
    assert probabilities(torch.tensor([[0.0]]), "binary").tolist() == [[0.5, 0.5]]
    two = probabilities(torch.tensor([[2.0]]), "binary", temperature=2.0)
    assert two[0, 1].item() == pytest.approx(1 / (1 + math.exp(-1)))
    assert probabilities(torch.zeros(1, 4), "multiclass").sum().item() == pytest.approx(1.0)


def _lrs(config: ScheduleConfig, epochs: int = 4, steps: int = 5) -> list[float]:
    opt = build_optimizer(nn.Linear(2, 1), OptimizerConfig(lr=1.0, name="sgd"))
    schedule = LRSchedule(opt, config, epochs=epochs, steps_per_epoch=steps)
    out = []
    for _ in range(epochs * steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.after_batch()
    return out


def test_warmup_then_cosine_and_step() -> None:
    cosine = _lrs(ScheduleConfig(name="cosine", warmup_epochs=1, min_lr_ratio=0.0))
    assert cosine[:5] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])
    assert cosine[5] == pytest.approx(1.0) and cosine[-1] < 0.02
    assert all(a >= b for a, b in zip(cosine[5:], cosine[6:], strict=False))
    step = _lrs(ScheduleConfig(name="step", step_epochs=2, gamma=0.1))
    assert step[9] == 1.0 and step[10] == pytest.approx(0.1)


def test_plateau_lowers_lr_after_patience() -> None:
    opt = build_optimizer(nn.Linear(2, 1), OptimizerConfig(lr=1.0))
    schedule = LRSchedule(opt, ScheduleConfig(name="plateau", plateau_patience=1, gamma=0.5),
                          epochs=5, steps_per_epoch=1)  # fmt: skip
    for metric in (0.8, 0.8, 0.8):
        opt.step()
        schedule.after_batch()
        schedule.after_epoch(metric)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)


def test_no_weight_decay_on_biases_and_l1() -> None:
    model = nn.Linear(3, 2)
    opt = build_optimizer(model, OptimizerConfig(weight_decay=0.1))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert l1_penalty(model, 0.0) == 0.0
    assert torch.allclose(l1_penalty(model, 2.0), 2.0 * model.weight.abs().sum())


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    seed_everything(3)
    save_checkpoint(tmp_path / "c.pt", {"rng": get_rng_state()})
    expected = (np.random.rand(), torch.rand(2).tolist(), random.random())
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert (np.random.rand(), torch.rand(2).tolist(), random.random()) == expected


def test_checkpoint_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"f": os.getcwd}, path)  # a function reference: not weights_only-safe
    with pytest.raises(WeightsError):
        load_checkpoint(path)
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_atomic_write_leaves_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    assert target.stat().st_mode & 0o077  # not the 0600 of a bare temp file

    def no_space(fd: int) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="no space"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_weights_hash_is_checked(tmp_path: Path) -> None:
    model = nn.Linear(2, 2)
    sha = save_weights(model, tmp_path / "m.safetensors")
    other = nn.Linear(2, 2)
    load_weights(other, tmp_path / "m.safetensors", sha256=sha)
    assert torch.equal(other.weight, model.weight)
    with pytest.raises(WeightsError, match="sha256"):
        load_weights(other, tmp_path / "m.safetensors", sha256="0" * 64)
    with pytest.raises(WeightsError, match="do not fit"):
        load_weights(nn.Linear(3, 2), tmp_path / "m.safetensors")


def test_a_renamed_pickle_with_the_right_hash_is_a_weights_error(tmp_path: Path) -> None:
    """A pickle saved as model.safetensors (its hash recorded): a WeightsError, no traceback."""
    import hashlib

    path = tmp_path / "model.safetensors"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(WeightsError, match="not a safetensors file"):
        load_weights(nn.Linear(2, 2), path, sha256=sha)


def test_precision_bf16_only_where_native(monkeypatch: pytest.MonkeyPatch) -> None:
    from medlens.tasks import run

    cpu = torch.device("cpu")
    monkeypatch.setattr(run, "_has_native_bf16", lambda device: False)
    assert run.resolve_precision("auto", cpu) is None
    assert run.resolve_precision("fp32", cpu) is None
    with pytest.raises(ConfigError, match="no native bf16"):
        run.resolve_precision("bf16", cpu)
    monkeypatch.setattr(run, "_has_native_bf16", lambda device: True)
    assert run.resolve_precision("auto", cpu) is torch.bfloat16
    assert run.resolve_precision("fp32", cpu) is None


def test_repair_run_dir_cuts_a_torn_tail_and_removes_temporary_files(tmp_path: Path) -> None:
    from medlens.training.callbacks import read_metrics
    from medlens.training.checkpoint import repair_run_dir

    (tmp_path / "checkpoints").mkdir()
    whole = '{"epoch": 0, "val_auc": 0.5}\n{"epoch": 1, "val_auc": 0.6}\n'
    (tmp_path / "metrics.jsonl").write_text(whole + '{"epoch": 2, "val_')
    assert [r["epoch"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [0, 1]  # ignored
    stale = [tmp_path / "checkpoints" / ".last.pt.abc.tmp", tmp_path / ".model.safetensors.d.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"kept")
    repair_run_dir(tmp_path)
    assert (tmp_path / "metrics.jsonl").read_text() == whole
    assert not any(path.exists() for path in stale)
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == b"kept"
    repair_run_dir(tmp_path)  # idempotent
    assert (tmp_path / "metrics.jsonl").read_text() == whole


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ('{"epoch": 0}\n{"epoch": 1}', '{"epoch": 0}\n'),  # complete JSON, no newline
        ('{"epoch": 0}\n{"ep\n', '{"epoch": 0}\n'),  # torn, then a newline
        ('{"ep', ""),
        ('{"epoch": 0}\n', '{"epoch": 0}\n'),
        ("", ""),
    ],
)
def test_repair_run_dir_keeps_whole_lines_only(tmp_path: Path, text: str, kept: str) -> None:
    from medlens.training.checkpoint import repair_run_dir

    (tmp_path / "metrics.jsonl").write_text(text)
    repair_run_dir(tmp_path)
    assert (tmp_path / "metrics.jsonl").read_text() == kept


def test_a_broken_line_before_the_last_is_a_clear_error(tmp_path: Path) -> None:
    from medlens.errors import ConfigError
    from medlens.training.callbacks import read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n{"ep\n{"epoch": 2}\n')
    with pytest.raises(ConfigError, match="line 2 is not JSON"):
        read_metrics(tmp_path / "metrics.jsonl")
