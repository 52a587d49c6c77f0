"""Synthetic segmentation datasets: a bright blob (class 1) and a dim box (class 2) on noise."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

SHAPE = (24, 28, 20)  # NIfTI (i, j, k)


def blob_case(rng: np.random.Generator, shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """An image with a sphere (label 1) and a box (label 2) at random places, and its labels."""
    grid = np.indices(shape).astype(float)
    centre = [rng.uniform(7, n - 7) for n in shape]
    radius = rng.uniform(3.0, 5.0)
    sphere = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2
    box = np.zeros(shape, dtype=bool)
    corner = [int(rng.integers(1, n - 6)) for n in shape]
    box[tuple(slice(c, c + 4) for c in corner)] = True
    box &= ~sphere
    image = rng.normal(0.0, 0.3, shape) + 2.0 * sphere + 1.0 * box
    labels = np.where(sphere, 1, np.where(box, 2, 0)).astype(np.uint8)
    return image.astype(np.float32), labels


def write_decathlon(root: Path, n: int, seed: int = 0, spacing=(1.0, 1.2, 1.5)) -> Path:
    rng = np.random.default_rng(seed)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-10.0, 5.0, 30.0]
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for i in range(n):
        image, labels = blob_case(rng)
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / f"blob_{i:03d}.nii.gz")
        nib.save(nib.Nifti1Image(labels, affine), root / "labelsTr" / f"blob_{i:03d}.nii.gz")
    return root


@pytest.fixture(scope="session")
def blob_dataset(tmp_path_factory) -> Path:
    return write_decathlon(tmp_path_factory.mktemp("blobs") / "Task00_Blobs", 12)
