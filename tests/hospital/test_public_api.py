"""medlens.hospital: explicit, sorted API; importing it pulls in no heavy library."""

from __future__ import annotations

import subprocess
import sys

import medlens.hospital


def test_all_is_sorted_and_complete() -> None:
    assert medlens.hospital.__all__ == sorted(medlens.hospital.__all__)
    assert all(hasattr(medlens.hospital, name) for name in medlens.hospital.__all__)


def test_import_is_light() -> None:
    heavy = "('torch', 'pydicom', 'highdicom', 'dicomweb_client', 'pynetdicom', 'requests')"
    code = f"import sys, medlens.hospital; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
