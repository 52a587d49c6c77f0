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


def _element(tag: tuple[int, int], vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element."""
    import struct

    head = struct.pack("<HH", *tag) + vr
    if vr in (b"OB", b"SQ"):
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def _uid(text: str) -> bytes:
    return text.encode() + b"\0" * (len(text) % 2)


def nested_sequence_dicom(depth: int, *, defined_length: bool = False) -> bytes:
    """A DICOM Part 10 file, built byte by byte, whose Content Sequence holds one item
    holding a Content Sequence ... ``depth`` levels deep (undefined or defined lengths)."""
    import struct

    meta = _element((2, 1), b"OB", b"\0\1")
    meta += _element((2, 2), b"UI", _uid("1.2.840.10008.5.1.4.1.1.7"))  # secondary capture
    meta += _element((2, 3), b"UI", _uid("1.2.826.0.1.3680043.8.498.1"))
    meta += _element((2, 0x10), b"UI", _uid("1.2.840.10008.1.2.1"))  # explicit VR LE
    meta = _element((2, 0), b"UL", struct.pack("<I", len(meta))) + meta
    head = b"\0" * 128 + b"DICM" + meta + _element((8, 0x60), b"CS", b"OT")
    sq, item = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0", struct.pack("<HH", 0xFFFE, 0xE000)
    if defined_length:  # each level: 12 bytes of sequence header, 8 of item header
        inside = [20 * (depth - i - 1) for i in range(depth)]  # bytes in each level's item
        levels = [sq + struct.pack("<I", 8 + n) + item + struct.pack("<I", n) for n in inside]
        return head + b"".join(levels)
    undefined = b"\xff\xff\xff\xff"
    close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return head + (sq + undefined + item + undefined) * depth + close * depth


@pytest.fixture(scope="session")
def nested_dicom():
    """``nested_dicom(depth, defined_length=False)``: the bytes of a hostile nested file."""
    return nested_sequence_dicom


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
