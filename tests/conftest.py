"""Shared fixtures: where the real data lives, and a scratch directory per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_datasets() -> Path:
    env = os.environ.get("MEDLENS_SHARED_DATASETS")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "datasets"


SHARED_DATASETS = _shared_datasets()


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The real datasets beside the checkout (../shared/datasets); skip if absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS} (set MEDLENS_SHARED_DATASETS)")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def dicom_testfile():
    """Return a function that finds a real DICOM file from the pydicom-data package."""
    pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    def find(name: str) -> Path:
        path = get_testdata_file(name)
        if path is None:
            pytest.skip(f"pydicom test file {name} not available (pip install pydicom-data)")
        return Path(path)

    return find
