"""Segmentation on the shared trainer: resume, torchrun, the CLI, and refusals before writing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medlens.card import read_card
from medlens.config import parse_config
from medlens.errors import ConfigError
from medlens.tasks import train_run
from medlens.training.callbacks import read_metrics

pytest.importorskip("monai")


def _config(manifest: Path, out: Path, **changes) -> dict:
    config = {
        "data": {"manifest": str(manifest)},
        "epochs": 2,
        "optimizer": {"lr": 0.003},
        "num_threads": 1,
        "output_dir": str(out),
        "segmentation": {
            "iterations_per_epoch": 3,
            "plan": {"batch_size": 4, "patch_size": [32, 32]},
            "base_filters": 4,
        },
    }
    return {**config, **changes}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, disk_dataset) -> Path:
    return disk_dataset(tmp_path_factory.mktemp("disks"), n=16)


@pytest.mark.slow
def test_resume_continues_bit_for_bit(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after epoch 1's checkpoint, then resumed: the same run as an unbroken one."""
    from medlens.training import callbacks

    full = train_run(parse_config(_config(manifest, tmp_path / "full")))
    original = callbacks.CheckpointCallback.on_epoch_end

    def save_then_die(self, trainer, result):  # noqa: ANN001, ANN202
        original(self, trainer, result)
        raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.CheckpointCallback, "on_epoch_end", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(parse_config(_config(manifest, tmp_path / "cut")))
    monkeypatch.setattr(callbacks.CheckpointCallback, "on_epoch_end", original)
    resumed = train_run(resume=tmp_path / "cut")
    assert read_metrics(resumed / "metrics.jsonl") == read_metrics(full / "metrics.jsonl")
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    card = read_card(resumed)
    assert card.training.monitor == "val_dice" and card.segmentation.plan.patch_size == (32, 32)


def test_card_and_metrics_say_dice(manifest: Path, tmp_path: Path) -> None:
    run = train_run(parse_config(_config(manifest, tmp_path / "run", epochs=1)))
    (record,) = read_metrics(run / "metrics.jsonl")
    assert set(record) >= {"epoch", "train_loss", "val_dice", "lr", "is_best"}
    card = json.loads((run / "model.json").read_text())
    assert card["task"] == "segmentation" and card["architecture"] == "dynunet"
    assert card["training"]["best_val_dice"] == card["training"]["best"] == record["val_dice"]
    assert card["segmentation"]["label_values"] == [0, 255]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": {"name": "simple_cnn"}}, "is a classifier; segmentation needs a segmenter"),
        ({"task": "binary"}, "segmentation: this section needs task segmentation"),
        ({"loss": {"name": "focal"}}, "Dice \\+ cross-entropy"),
        ({"augmentation": {"rotaton": 10}}, "augmentation"),
        ({"preprocessing": {"spacing": "fine"}}, "preprocessing"),
        ({"segmentation": {"val_evry": 2}}, "val_evry"),
    ],
)
def test_config_errors_come_before_the_run_directory(
    manifest: Path, tmp_path: Path, changes: dict, message: str
) -> None:
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        train_run(parse_config(_config(manifest, out, **changes)))
    assert not out.exists()


def test_cli_train_a_segmentation_run_exits_zero(manifest: Path, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from medlens.cli import app

    config = tmp_path / "seg.yaml"
    config.write_text(yaml.safe_dump(_config(manifest, tmp_path / "cli", epochs=1)))
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code == 0, result.output
    assert "val_dice" in result.output and "plan: 2D, patch (32, 32)" in result.output
    assert (tmp_path / "cli" / "model.json").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_match_one(manifest: Path, tmp_path: Path) -> None:
    """The README's `torchrun -m medlens train`: the global batch split over 2 gloo
    processes takes the same steps as one process, so the same figures; rank 0 writes."""
    import yaml

    one = train_run(parse_config(_config(manifest, tmp_path / "one")))
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump(_config(manifest, tmp_path / "two")))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        "-m", "medlens", "train", str(config),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run written to") == 1  # rank 0 alone reports
    two = tmp_path / "two"
    single, double = read_metrics(one / "metrics.jsonl"), read_metrics(two / "metrics.jsonl")
    assert [r["epoch"] for r in double] == [0, 1]  # rank 0 alone writes
    for a, b in zip(single, double, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=0.02)
        assert b["val_dice"] == pytest.approx(a["val_dice"], abs=0.05)
    plans = [json.loads((run / "plan.json").read_text()) for run in (one, two)]
    assert plans[0] == plans[1]
    assert read_card(two).task == "segmentation"
