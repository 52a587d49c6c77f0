"""Grad-CAM for a segmenter: the evidence for a class where the model predicts it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medlens.config import parse_config
from medlens.errors import ConfigError
from medlens.explain import explain_files
from medlens.inference import Predictor
from medlens.io import read_image
from medlens.tasks import train_run

pytest.importorskip("monai")


@pytest.fixture(scope="module")
def disk_run(tmp_path_factory, disk_dataset) -> Path:
    root = tmp_path_factory.mktemp("explain-seg")
    config = {
        "data": {"manifest": str(disk_dataset(root / "data", n=24))},
        "epochs": 3,
        "optimizer": {"lr": 0.003},
        "num_threads": 1,
        "output_dir": str(root / "run"),
        "segmentation": {"iterations_per_epoch": 10, "plan": {"batch_size": 8}, "base_filters": 8},
    }
    return train_run(parse_config(config))


@pytest.mark.slow
def test_heatmap_sits_on_the_segmented_disk(disk_run: Path, tmp_path: Path) -> None:
    data = disk_run.parent / "data"
    images = sorted((data / "images").glob("case2*.png"))[:3]
    saved = explain_files(disk_run, images, tmp_path / "out")
    assert len(saved) == 3 and all(s.overlay.is_file() and s.heatmap.is_file() for s in saved)
    inside, outside = [], []
    for item, source in zip(saved, images, strict=True):
        heatmap = np.load(item.heatmap)
        mask = read_image(data / "masks" / source.name).array > 0
        assert item.target == "label_255" and heatmap.min() >= 0 and heatmap.max() <= 1
        image_shape = read_image(source).spatial_shape
        assert heatmap.shape == image_shape  # same grid as the input here (spacing 1)
        inside.append(heatmap[mask].mean())
        outside.append(heatmap[~mask].mean())
    assert np.mean(inside) > 0.3 and np.mean(inside) > 5 * np.mean(outside)


def test_occlusion_is_refused_for_a_segmenter(disk_run: Path) -> None:
    from medlens.explain import explain_images

    predictor = Predictor.from_run(disk_run)
    image = read_image(sorted((disk_run.parent / "data" / "images").glob("*.png"))[0])
    with pytest.raises(ConfigError, match="use gradcam"):
        explain_images(predictor, [image], method="occlusion")
