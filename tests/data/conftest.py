"""Fixtures for the data tests: the real datasets' paths and a small synthetic image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def kermany(shared_datasets: Path) -> Path:
    return shared_datasets / "chest_xray_kermany_224"


@pytest.fixture(scope="session")
def pneumoniamnist(shared_datasets: Path) -> Path:
    return shared_datasets / "pneumoniamnist" / "pneumoniamnist.npz"


@pytest.fixture(scope="session")
def hippocampus(shared_datasets: Path) -> Path:
    return shared_datasets / "hippocampus_msd"


def write_png(path: Path, value: int, size: int = 16) -> Path:
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.full((size, size), value, dtype=np.uint8)
    array[: size // 2, : size // 2] = 255 - value  # not flat: min-max scaling is defined
    PILImage.fromarray(array).save(path)
    return path


@pytest.fixture(scope="session")
def make_png():
    """``make_png(path, value)``: a small 8-bit grey PNG (two levels, so never flat)."""
    return write_png


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    """``root/{train,test}/{cat,dog}/personN_virus_i.png``: 12 patients x 2 images in train."""
    root = tmp_path / "folder"
    for patient in range(12):
        label = "cat" if patient % 2 else "dog"
        for image in range(2):
            write_png(
                root / "train" / label / f"person{patient}_virus_{image}.png", 10 * patient + image
            )
    for patient in range(100, 104):
        label = "cat" if patient % 2 else "dog"
        write_png(root / "test" / label / f"person{patient}_virus_0.png", patient)
    (root / "train" / ".DS_Store").write_bytes(b"junk")
    return root
