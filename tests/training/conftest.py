"""Tiny synthetic data and configs for the training tests (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

TINY_MODEL = {"name": "simple_cnn", "image_size": 16, "options": {"widths": [4, 8, 8], "hidden": 8}}


def make_image_folder(root: Path, per_class: int = 24, size: int = 16, seed: int = 0) -> Path:
    """``root/{normal,pneumonia}/personN_k.png``: pneumonia images have a bright blob."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, name in enumerate(("normal", "pneumonia")):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.normal(80, 20, (size, size))
            if label:
                r, c = rng.integers(2, size - 6, 2)
                pixels[r : r + 5, c : c + 5] += 120
            array = np.clip(pixels, 0, 255).astype(np.uint8)
            Image.fromarray(array).save(folder / f"person{100 * label + i}_{i}.png")
    return root


def tiny_config(data: Path, output: Path, **changes: Any) -> Any:
    from medlens.config import parse_config

    raw: dict[str, Any] = {
        "data": {"source": str(data), "val_fraction": 0.25},
        "model": TINY_MODEL,
        "optimizer": {"lr": 0.01},
        "epochs": 3,
        "batch_size": 8,
        "num_threads": 1,
        "output_dir": str(output),
    }
    for key, value in changes.items():
        raw[key] = value
    return parse_config(raw)


@pytest.fixture(scope="session")
def make_config() -> Any:
    """``make_config(data, output, **top_level_changes)`` -> a tiny TrainConfig."""
    return tiny_config


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("folder") / "data")


@pytest.fixture(scope="session")
def trained_run(image_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run shared by the read-only tests."""
    from medlens.tasks.run import train_run

    return train_run(tiny_config(image_folder, tmp_path_factory.mktemp("runs") / "run"))
