"""Two CPU processes with torchrun and gloo: one run directory, written by rank 0 only."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from medlens.training.callbacks import read_metrics
from medlens.training.distributed import DistContext, all_reduce_mean, init_distributed

SCRIPT = """
import sys
from medlens.config import parse_config
from medlens.tasks.run import train_run
config = {{"data": {{"source": {data!r}, "val_fraction": 0.25}}, "model": {model!r},
          "epochs": 2, "batch_size": 8, "num_threads": 1, "output_dir": {out!r}}}
train_run(parse_config(config))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_single_process_helpers_are_no_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = init_distributed()
    assert ctx == DistContext() and ctx.is_main and not ctx.enabled
    assert all_reduce_mean(0.25, ctx) == 0.25


@pytest.mark.slow
def test_two_process_gloo_training(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    model = {"name": "simple_cnn", "image_size": 16, "options": {"widths": [4, 8, 8]}}
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(data=str(image_folder), model=model, out=str(out)))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(script),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    records = read_metrics(out / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [0, 1]  # one writer, no duplicate lines
    card = json.loads((out / "model.json").read_text())
    assert card["task"] == "binary" and (out / "checkpoints" / "last.pt").is_file()
