"""The training loop: learning, best weights, early stopping, metrics.jsonl, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medlens.errors import ConfigError, WeightsError
from medlens.tasks.run import resolve_precision, train_run
from medlens.training.callbacks import read_metrics


def test_run_directory_is_complete(trained_run: Path) -> None:
    for name in ("config.yaml", "manifest.csv", "fingerprint.json", "metrics.jsonl",
                 "model.safetensors", "model.json", "checkpoints/last.pt"):  # fmt: skip
        assert (trained_run / name).is_file(), name
    assert any((trained_run / "tb").iterdir())
    card = json.loads((trained_run / "model.json").read_text())
    assert card["task"] == "binary" and card["classes"] == ["normal", "pneumonia"]
    assert card["create_model"]["num_classes"] == 1
    assert 0.0 < card["threshold"] < 1.0 and card["temperature"] > 0
    assert card["data_fingerprint"]["manifest_sha256"]
    assert card["preprocessing"]["spatial_size"] == [16, 16]
    native_bf16 = resolve_precision("auto", torch.device("cpu")) is not None
    assert card["training"]["precision"] == ("bf16" if native_bf16 else "fp32")


def test_learns_the_synthetic_task(trained_run: Path) -> None:
    records = read_metrics(trained_run / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert max(r["val_auc"] for r in records) > 0.9
    assert records[-1]["train_loss"] < records[0]["train_loss"]


def test_same_config_and_seed_give_identical_metrics(
    image_folder: Path, tmp_path: Path, make_config
) -> None:
    runs = [train_run(make_config(image_folder, tmp_path / f"r{i}", epochs=2)) for i in range(2)]
    a, b = (read_metrics(run / "metrics.jsonl") for run in runs)
    assert a == b
    assert (runs[0] / "model.safetensors").read_bytes() == (
        runs[1] / "model.safetensors"
    ).read_bytes()


def test_resume_continues_bit_for_bit(image_folder: Path, tmp_path: Path, make_config) -> None:
    """A 4-epoch run killed after epoch 2, then resumed, ends exactly like an unbroken one."""
    full = train_run(make_config(image_folder, tmp_path / "full", epochs=4))
    cut = tmp_path / "cut"
    _train_interrupted(make_config(image_folder, cut, epochs=4), stop_after=2)
    assert not (cut / "model.json").exists()
    assert len(read_metrics(cut / "metrics.jsonl")) == 2
    train_run(resume=cut)
    assert read_metrics(cut / "metrics.jsonl") == read_metrics(full / "metrics.jsonl")
    assert (cut / "model.safetensors").read_bytes() == (full / "model.safetensors").read_bytes()


def _train_interrupted(config, stop_after: int) -> None:
    """Run the real train_run, killed (KeyboardInterrupt) right after an epoch's checkpoint."""
    from medlens.training import callbacks

    original = callbacks.CheckpointCallback.on_epoch_end

    def save_then_die(self, trainer, result):  # noqa: ANN001, ANN202
        original(self, trainer, result)
        if trainer.state.epoch == stop_after:
            raise KeyboardInterrupt

    callbacks.CheckpointCallback.on_epoch_end = save_then_die
    try:
        with pytest.raises(KeyboardInterrupt):
            train_run(config)
    finally:
        callbacks.CheckpointCallback.on_epoch_end = original


def test_resume_after_a_power_cut(image_folder: Path, tmp_path: Path, make_config) -> None:
    """A torn metrics.jsonl line and temporary files left by a kill: resume repairs them."""
    cut = tmp_path / "cut"
    _train_interrupted(make_config(image_folder, cut, epochs=2), stop_after=1)
    with (cut / "metrics.jsonl").open("a") as handle:
        handle.write('{"epoch": 1, "train_lo')  # the second epoch's line, half written
    (cut / "checkpoints" / ".last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    (cut / ".model.safetensors.z3.tmp").write_bytes(b"half the weights")
    train_run(resume=cut)
    assert [r["epoch"] for r in read_metrics(cut / "metrics.jsonl")] == [0, 1]
    assert not list(cut.glob(".*.tmp")) and not list((cut / "checkpoints").glob(".*.tmp"))


def test_resume_without_checkpoint_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no checkpoint"):
        train_run(resume=tmp_path / "missing")


def test_refuses_to_overwrite_a_run(trained_run: Path, image_folder: Path, make_config) -> None:
    with pytest.raises(ConfigError, match="already holds a run"):
        train_run(make_config(image_folder, trained_run))


def test_early_stopping_stops(image_folder: Path, tmp_path: Path, make_config) -> None:
    config = make_config(
        image_folder, tmp_path / "r", epochs=6, early_stopping_patience=1,
        optimizer={"lr": 1e-9},  # nothing improves after the first epoch
    )  # fmt: skip
    run = train_run(config)
    assert len(read_metrics(run / "metrics.jsonl")) == 2


def test_corrupt_checkpoint_is_refused(tmp_path: Path) -> None:
    from medlens.training.checkpoint import load_checkpoint

    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError):
        load_checkpoint(bad)


def test_frozen_backbone_trains_only_the_head(
    image_folder: Path, tmp_path: Path, make_config
) -> None:
    from safetensors.torch import load_file

    from medlens.models import create_model

    model = make_config(image_folder, tmp_path).model.model_dump()
    config = make_config(
        image_folder, tmp_path / "r", epochs=1, model={**model, "freeze": {"backbone": True}}
    )
    torch.manual_seed(config.seed)
    run = train_run(config)
    trained = load_file(run / "model.safetensors")
    torch.manual_seed(config.seed)
    initial = create_model(**json.loads((run / "model.json").read_text())["create_model"])
    assert torch.equal(trained["conv1.0.weight"], initial.state_dict()["conv1.0.weight"])
    assert not torch.equal(trained["classifier.weight"], initial.state_dict()["classifier.weight"])
