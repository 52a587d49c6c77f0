"""Real files for the transform tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def kermany_image(shared_datasets: Path) -> Path:
    return shared_datasets / "chest_xray_kermany_224" / "train" / "NORMAL" / "IM-0115-0001.jpeg"


@pytest.fixture(scope="session")
def hippocampus_pair(shared_datasets: Path) -> tuple[Path, Path]:
    root = shared_datasets / "hippocampus_msd"
    return (
        root / "imagesTr" / "hippocampus_001.nii.gz",
        root / "labelsTr" / "hippocampus_001.nii.gz",
    )
