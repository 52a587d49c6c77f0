"""Helpers to build synthetic (and hostile) DICOM files from real pydicom-data files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def edited_dicom(dicom_testfile, tmp_path) -> Callable[..., Path]:
    """Return ``make(name, out_name, **changes)``: a copy of a pydicom-data file with edits.

    ``changes`` are attribute assignments on the dataset; a callable value is called with
    the dataset instead (for edits that need more than one line).
    """
    import pydicom

    def make(name: str, out_name: str = "edited.dcm", **changes) -> Path:
        ds = pydicom.dcmread(dicom_testfile(name))
        for key, value in changes.items():
            if callable(value):
                value(ds)
            else:
                setattr(ds, key, value)
        out = tmp_path / out_name
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out, enforce_file_format=True)
        return out

    return make
