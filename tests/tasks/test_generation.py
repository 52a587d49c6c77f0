"""The generation task: DCGAN, WGAN-GP and latent diffusion on 16 px images, 1-2 epochs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from medlens.card import read_card
from medlens.config import parse_config
from medlens.errors import ConfigError, ModelError
from medlens.generation import generate, is_synthetic
from medlens.tasks.run import train_run

pytest.importorskip("monai")


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory: pytest.TempPathFactory, image_folder: Path, make_gen_config) -> Path:
    root = tmp_path_factory.mktemp("gan")
    return train_run(make_gen_config(image_folder, root / "run", "dcgan", epochs=1))


class _StopInEpoch:
    """Raise in the first batch of ``epoch``: the checkpoint of the epoch before is on disk."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_batch_end(self, trainer: Any, loss: float) -> None:
        if trainer.state.epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dcgan", "wgan_gp", "ldm"])
def test_method_trains_resumes_bit_for_bit_and_samples(
    method: str, tmp_path: Path, image_folder: Path, make_gen_config
) -> None:
    gen_config = make_gen_config
    if method == "ldm":
        pytest.importorskip("einops")
    whole = train_run(gen_config(image_folder, tmp_path / "whole", method))
    with pytest.raises(KeyboardInterrupt):
        train_run(gen_config(image_folder, tmp_path / "cut", method), callbacks=[_StopInEpoch(1)])
    resumed = train_run(resume=tmp_path / "cut")
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    card = read_card(whole)
    assert card.task == "generation" and card.family == "generation"
    assert card.generation.method == method and card.generation.image_size == 16
    assert card.classes == ["normal", "pneumonia"]
    assert card.generation.sampler["name"] == ("ddim" if method == "ldm" else "noise")
    if method == "ldm":
        assert float(a["scale_factor"]) > 0  # fitted when the diffusion stage began
        assert card.generation.sampler["clip"] == 4.0
    paths = generate(whole, 2, "normal", tmp_path / "out", seed=3)
    assert len(paths) == 2 and all(is_synthetic(p) for p in paths)


@pytest.mark.slow
def test_generate_is_deterministic_and_records_provenance(gan_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    first = generate(gan_run, 3, "pneumonia", tmp_path / "a", seed=7, batch_size=2)
    again = generate(gan_run, 2, "pneumonia", tmp_path / "b", seed=7)
    other = generate(gan_run, 3, "pneumonia", tmp_path / "c", seed=8)
    assert [p.read_bytes() for p in first[:2]] == [p.read_bytes() for p in again]
    assert first[0].read_bytes() != other[0].read_bytes()
    with Image.open(first[0]) as image:
        assert image.info["medlens:synthetic"] == "true"
        record = json.loads(image.info["medlens:provenance"])
    assert record["seed"] == 7 and record["class"] == "pneumonia" and record["index"] == 0
    generate(gan_run, 1, "normal", tmp_path / "a", seed=7)  # a second class merges in
    with open(tmp_path / "a" / "provenance.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    card = read_card(gan_run)
    assert len(rows) == 4 and {r["class"] for r in rows} == {"normal", "pneumonia"}
    assert all(r["weights_sha256"] == card.sha256 and r["synthetic"] == "true" for r in rows)
    assert all(r["run"] == str(gan_run.resolve()) for r in rows)
    summary = json.loads((tmp_path / "a" / "provenance.json").read_text())
    assert summary["synthetic"] and len(summary["requests"]) == 2


@pytest.mark.slow
def test_generation_run_is_evaluated_on_its_samples_not_predicted(gan_run: Path) -> None:
    from medlens.inference import Predictor
    from medlens.pipeline import evaluate_run, predict_files
    from medlens.pipeline.generation import evaluate_generation_run

    seen = {}
    with pytest.MonkeyPatch.context() as patch:  # evaluate_run dispatches on the card
        patch.setattr(
            "medlens.pipeline.generation.evaluate_generation_run",
            lambda run, **kw: seen.setdefault("run", run),
        )
        assert evaluate_run(gan_run) == gan_run
    out = evaluate_generation_run(gan_run, n_per_class=4, features=_Flat())
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"fid", "kid", "precision", "recall"} <= set(metrics["overall"])
    assert (out / "report.html").is_file() and (out / "samples" / "provenance.csv").is_file()
    assert list((gan_run / "eval" / "feature-cache").glob("*.npy"))  # reused next time
    assert len(list((out / "samples" / "normal").glob("*.png"))) == 4
    with pytest.raises(ModelError, match="medlens generate"):
        predict_files(gan_run, [gan_run])
    with pytest.raises(ModelError, match="no predictor"):
        Predictor.from_run(gan_run)
    with pytest.raises(ConfigError, match="not one of"):
        generate(gan_run, 1, "fracture", gan_run / "x")


class _Flat:
    """Raw pixels as features: enough to exercise the wiring, no network weights."""

    name = "flat16"

    def __call__(self, images: Any) -> Any:
        return images.reshape(len(images), -1)


@pytest.mark.slow
def test_cli_generate(gan_run: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from medlens.cli import app

    args = ["generate", str(gan_run), "-n", "2", "--class", "normal", "-o", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "normal").glob("*.png"))) == 2
    assert (tmp_path / "provenance.csv").is_file()


def test_generation_section_is_checked(tmp_path: Path) -> None:
    base = {"data": {"source": str(tmp_path)}, "output_dir": str(tmp_path / "r")}
    with pytest.raises(ConfigError, match="needs task generation"):
        parse_config({**base, "task": "binary", "generation": {"method": "dcgan"}})
    with pytest.raises(ConfigError, match="ldm needs epochs"):
        parse_config({**base, "task": "generation", "generation": {"method": "ldm"}, "epochs": 1})
    with pytest.raises(ConfigError, match="augment_with"):
        parse_config({**base, "task": "generation", "data": {**base["data"],
                      "augment_with": str(tmp_path), "synthetic_fraction": 0.5}})  # fmt: skip


def test_a_classifier_is_refused_for_generation(
    tmp_path: Path, image_folder: Path, make_gen_config
) -> None:
    config = make_gen_config(image_folder, tmp_path / "r", "dcgan", model={"name": "simple_cnn"})
    with pytest.raises(ConfigError, match="generator"):
        train_run(config)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_cli_train_generation(tmp_path: Path, image_folder: Path, make_gen_config) -> None:
    from typer.testing import CliRunner

    from medlens.cli import app
    from medlens.config import dump_config

    config = make_gen_config(image_folder, tmp_path / "run", "wgan_gp", epochs=1)
    (tmp_path / "gan.yaml").write_text(dump_config(config))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "gan.yaml")])
    assert result.exit_code == 0, result.output
    assert "last weights kept" in result.output and "medlens generate" in result.output
