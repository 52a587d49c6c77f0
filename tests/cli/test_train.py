"""``medlens train``: flags, config file, resume, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medlens.cli import app

runner = CliRunner()


def make_folder(root: Path, per_class: int = 16, size: int = 16) -> Path:
    """Two classes of synthetic grey PNGs; 'sick' ones carry a bright square."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(("healthy", "sick")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.normal(80, 20, (size, size))
            pixels[4:10, 4:10] += 120 * label
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("cli_train") / "images")


FLAGS = ["--model", "simple_cnn", "--image-size", "16", "--epochs", "2", "--batch-size", "8"]


def test_train_with_flags_writes_a_run(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["train", "--data", str(folder), *FLAGS, "-o", str(out), "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert f"run written to {out}" in " ".join(result.output.split())
    card = json.loads((out / "model.json").read_text())
    assert card["classes"] == ["healthy", "sick"] and card["training"]["seed"] == 3
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_train_with_config_and_override(folder: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"data: {{source: {folder}}}\nmodel: {{name: simple_cnn, image_size: 16}}\n"
        f"epochs: 3\nbatch_size: 8\noutput_dir: {tmp_path / 'ignored'}\n"
    )
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config), "--epochs", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    assert not (tmp_path / "ignored").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train"], "give a config file or --data"),
        (["train", "--resume", "nowhere"], "no checkpoint"),
        (["train", "--resume", "nowhere", "--epochs", "2"], "give no config or flags"),
        (["train", "--data", "x", "--pretrained", "--weights", "w.pt"], "not both"),
        (["train", "--data", "missing_folder"], "not found"),
        (["train", "--data", "x", "--model", "resnet_999"], "unknown model"),
    ],
)
def test_errors_are_one_line_messages(args: list[str], message: str, folder: Path) -> None:
    args = [str(folder) if a == "x" else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
