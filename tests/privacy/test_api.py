"""The public surface of medlens.privacy."""

from __future__ import annotations

import subprocess
import sys

import medlens.privacy


def test_all_names_exist_and_are_sorted() -> None:
    assert medlens.privacy.__all__ == sorted(medlens.privacy.__all__)
    for name in medlens.privacy.__all__:
        assert hasattr(medlens.privacy, name), name


def test_privacy_does_not_import_torch() -> None:
    code = "import sys, medlens.privacy; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
