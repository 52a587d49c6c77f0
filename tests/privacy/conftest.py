"""Fixtures for the de-identification tests: a key and planted-PHI files."""

from __future__ import annotations

from pathlib import Path

import pytest
from deid_phi import write_planted


@pytest.fixture
def key() -> bytes:
    return bytes(range(32))


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A synthetic CT file full of planted PHI (top level, 4 sequences deep, private tags)."""
    path = tmp_path / "in" / "planted.dcm"
    write_planted(path)
    return path
