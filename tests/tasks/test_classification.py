"""Multi-class and multi-label runs, end to end through evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medlens.pipeline import evaluate_run, predict_files
from medlens.tasks.run import train_run


def _csv_dataset(root: Path, labels: list[str]) -> Path:
    """Blobs in quadrant k mean class k; a row may name several classes (``a|b``)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    rows = ["path,label"]
    for i, label in enumerate(labels * 8):
        pixels = rng.normal(60, 15, (16, 16))
        for name in label.split("|"):
            k = "abc".index(name)
            pixels[(k // 2) * 8 : (k // 2) * 8 + 6, (k % 2) * 8 : (k % 2) * 8 + 6] += 150
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / f"{i}.png")
        rows.append(f"{i}.png,{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


@pytest.mark.parametrize(
    ("labels", "task"),
    [(["a", "b", "c"], "multiclass"), (["a", "b", "c", "a|b", "b|c", "a|c"], "multilabel")],
)
def test_task_end_to_end(labels: list[str], task: str, tmp_path: Path, make_config) -> None:
    csv = _csv_dataset(tmp_path / "data", labels)
    config = make_config(csv, tmp_path / "run", epochs=4)
    config = config.model_copy(
        update={"data": config.data.model_copy(update={"test_fraction": 0.2})}
    )
    run = train_run(config)
    card = json.loads((run / "model.json").read_text())
    assert card["task"] == task and card["classes"] == ["a", "b", "c"]
    assert card["create_model"]["num_classes"] == 3
    assert card["threshold"] is None if task == "multiclass" else len(card["threshold"]) == 3
    metrics = json.loads((evaluate_run(run, n_bootstrap=20) / "metrics.json").read_text())
    assert metrics["task"] == task and metrics["metrics"]["roc_auc"]["value"] > 0.5
    out = predict_files(run, [tmp_path / "data" / "0.png"], tmp_path / "p.csv")
    assert out.read_text().splitlines()[0] == "path,predicted_label,p_a,p_b,p_c"


def _rgb_folder(root: Path) -> Path:
    """Two classes of colour images: red blobs vs green blobs."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for k, name in enumerate(("green", "red")):
        (root / name).mkdir(parents=True)
        for i in range(12):
            pixels = rng.normal(70, 10, (16, 16, 3))
            pixels[4:12, 4:12, k] += 120
            array = np.clip(pixels, 0, 255).astype(np.uint8)
            Image.fromarray(array).save(root / name / f"p{k}{i:02d}_{i}.png")
    return root


def test_rgb_data_trains_an_rgb_model_unless_told(tmp_path: Path, make_config) -> None:
    data = _rgb_folder(tmp_path / "rgb")
    run = train_run(make_config(data, tmp_path / "run", epochs=1))
    card = json.loads((run / "model.json").read_text())
    assert card["create_model"]["in_chans"] == 3 and card["preprocessing"]["channels"] == 3
    model = {"name": "simple_cnn", "image_size": 16, "in_chans": 1}
    grey = train_run(make_config(data, tmp_path / "grey", epochs=1, model=model))
    assert json.loads((grey / "model.json").read_text())["create_model"]["in_chans"] == 1


def _vessel_subset(shared: Path, root: Path, n: int = 24) -> Path:
    """The first ``n`` volumes of each official VesselMNIST3D split (real 28³ data)."""
    source = np.load(shared / "medmnist3d" / "vesselmnist3d.npz")
    root.mkdir(parents=True)
    subset = {k: v[:n] for k, v in source.items()}
    for split in ("train", "val", "test"):  # both classes in every split
        labels = source[f"{split}_labels"][:, 0]
        keep = np.r_[np.flatnonzero(labels == 0)[: n // 2], np.flatnonzero(labels == 1)[: n // 2]]
        subset[f"{split}_images"] = source[f"{split}_images"][keep]
        subset[f"{split}_labels"] = source[f"{split}_labels"][keep]
    np.savez(root / "vesselmnist3d.npz", **subset)
    return root / "vesselmnist3d.npz"


@pytest.mark.slow
def test_volumes_train_a_3d_model_with_3d_defaults(
    shared_datasets: Path, tmp_path: Path, make_config
) -> None:
    """No YAML needed: the data are volumes, so the model is built 3D, without channels_last."""
    from medlens.errors import ConfigError
    from medlens.inference import Predictor
    from medlens.io import read_numpy

    npz = _vessel_subset(shared_datasets, tmp_path / "vessel")
    model = {"name": "simple_cnn", "image_size": 28, "options": {"widths": [4, 8, 8]}}
    run = train_run(make_config(npz, tmp_path / "run", epochs=1, model=model))
    card = json.loads((run / "model.json").read_text())
    assert card["create_model"]["spatial_dims"] == 3
    assert card["preprocessing"]["spatial_size"] == [28, 28, 28]
    predictor = Predictor.from_run(run)
    volume = read_numpy(npz, key="test_images", index=0)
    (prediction,) = predictor.predict([volume])
    assert len(prediction.probabilities) == 2 and prediction.label in predictor.classes
    with pytest.raises(ConfigError, match="channels_last"):
        train_run(make_config(npz, tmp_path / "cl", epochs=1, model=model, channels_last=True))
    assert not (tmp_path / "cl").exists()
    with pytest.raises(ConfigError, match="is built for 2D"):
        train_run(make_config(npz, tmp_path / "r18", model={"name": "resnet18"}))
    assert not (tmp_path / "r18").exists()


def test_a_segmenter_is_refused_for_classification(
    image_folder: Path, tmp_path: Path, make_config
) -> None:
    from medlens.errors import ConfigError

    with pytest.raises(ConfigError, match="dynunet' is a segmenter"):
        train_run(make_config(image_folder, tmp_path / "run", model={"name": "dynunet"}))
    assert not (tmp_path / "run").exists()
