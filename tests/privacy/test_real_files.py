"""Every small pydicom-data file: no identifier survives, pixels are untouched, output reads back.

Files that are not Part 10 DICOM are skipped and files without SOP UIDs or too broken to
read fail cleanly; everything written is checked.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest

from medlens.privacy import Deidentifier, DeidOptions

MAX_BYTES = 100_000
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # files deliberately invalid


def _small_files() -> list[Path]:
    data = pytest.importorskip("pydicom.data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns when optional downloads are missing
        files = data.get_testdata_files("*.dcm")
    return sorted(Path(f) for f in files if os.path.getsize(f) < MAX_BYTES)


def _read(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some test files are deliberately invalid
        return pydicom.dcmread(path)


def test_pydicom_data_files(phi: SimpleNamespace, tmp_path: Path) -> None:
    files = _small_files()
    if len(files) < 50:
        pytest.skip("pydicom-data is not installed")
    deid = Deidentifier(b"k" * 32, DeidOptions(dates="shift"))
    written = 0
    for index, src in enumerate(files):
        result = deid.deidentify_file(src, tmp_path / f"{index}.dcm")
        reason = result.reason
        assert result.status != "failed" or "could not" in reason or "no SOP" in reason, src.name
        if not result.output:
            continue
        written += 1
        out = tmp_path / result.output
        original, ds = _read(src), _read(out)
        assert phi.leaked(original, out) == set(), src.name
        assert ds.get("PixelData") == original.get("PixelData"), src.name
        assert ds.PatientIdentityRemoved == "YES"
        if "SOPInstanceUID" in ds:
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        again = deid.deidentify_file(out, tmp_path / "again.dcm")
        assert (tmp_path / again.output).read_bytes() == out.read_bytes(), src.name
    assert written > 0.8 * len(files)
