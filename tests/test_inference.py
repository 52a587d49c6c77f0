"""``Predictor``: a run directory back to labelled predictions, exactly as trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medlens.errors import ConfigError, ModelError, WeightsError
from medlens.inference import Prediction, Predictor
from medlens.io import Image


def _image(bright: bool, rng: np.random.Generator) -> Image:
    pixels = rng.normal(80, 20, (16, 16))
    pixels[4:10, 4:10] += 120 * bright
    return Image(np.clip(pixels, 0, 255).astype(np.uint8), spacing=(1.0, 1.0))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image as PILImage

    from medlens.config import parse_config
    from medlens.tasks.run import train_run

    root = tmp_path_factory.mktemp("inference")
    rng = np.random.default_rng(0)
    for label, name in enumerate(("clear", "opacity")):
        (root / "data" / name).mkdir(parents=True)
        for i in range(20):
            PILImage.fromarray(_image(bool(label), rng).array).save(
                root / "data" / name / f"{i}.png"
            )
    config = {
        "data": {"source": str(root / "data"), "val_fraction": 0.3},
        "model": {"name": "simple_cnn", "image_size": 16},
        "epochs": 4, "batch_size": 8, "num_threads": 1, "output_dir": str(root / "run"),
    }  # fmt: skip
    return train_run(parse_config(config))


def test_round_trip_matches_the_trained_model(run: Path) -> None:
    from safetensors.torch import load_file

    from medlens.models import create_model
    from medlens.transforms.preprocess import Preprocessing

    predictor = Predictor.from_run(run)
    card = json.loads((run / "model.json").read_text())
    images = [_image(bright, np.random.default_rng(5)) for bright in (False, True)]
    predictions = predictor.predict(images)
    assert [p.label for p in predictions] == ["clear", "opacity"]
    assert all(isinstance(p, Prediction) and p.engine == "torch" for p in predictions)
    assert predictions[0].threshold == card["threshold"]
    # the same numbers by hand: model + weights + preprocessing + temperature from the card
    model = create_model(**card["create_model"]).eval()
    model.load_state_dict(load_file(run / "model.safetensors"))
    batch = torch.stack([Preprocessing.model_validate(card["preprocessing"])(i) for i in images])
    with torch.no_grad():
        p = torch.sigmoid(model(batch)[:, 0] / card["temperature"])
    got = [pred.probabilities["opacity"] for pred in predictions]
    assert got == pytest.approx(p.tolist(), abs=1e-6)
    assert predictions[1].to_dict()["p_opacity"] == got[1]


def test_torch_engine_runs_2d_networks_channels_last() -> None:
    from medlens.inference import to_channels_last

    conv2d = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(400, 2)
    )
    x = torch.randn(2, 1, 12, 12)
    before = conv2d(x)
    to_channels_last(conv2d)
    assert conv2d[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(conv2d(x), before, atol=1e-6)
    conv3d = to_channels_last(torch.nn.Conv3d(1, 4, 3))  # 5-D weights: left as they are
    assert conv3d.weight.is_contiguous()


def test_decide_per_task(run: Path) -> None:
    predictor = Predictor.from_run(run)
    predictor.threshold = 0.9
    assert predictor.decide([0.2, 0.8]) == "clear"
    predictor.task, predictor.classes = "multiclass", ["a", "b", "c"]
    assert predictor.decide([0.2, 0.5, 0.3]) == "b"
    predictor.task, predictor.threshold = "multilabel", [0.5, 0.5, 0.1]
    assert predictor.decide([0.6, 0.1, 0.2]) == "a|c"


def test_refuses_what_it_cannot_trust(run: Path, tmp_path: Path) -> None:
    import shutil

    with pytest.raises(ModelError, match="no model.json"):
        Predictor.from_run(tmp_path)
    with pytest.raises(ConfigError, match="unknown inference engine"):
        Predictor.from_run(run, engine="tensorrt")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    card = json.loads((copy / "model.json").read_text())
    card["sha256"] = "0" * 64
    (copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="sha256"):
        Predictor.from_run(copy)
