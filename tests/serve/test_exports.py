"""``medlens.serve``'s public names exist and are sorted; importing it loads no model code."""

from __future__ import annotations

import subprocess
import sys

import medlens.serve


def test_all_names_exist_and_are_sorted() -> None:
    assert medlens.serve.__all__ == sorted(medlens.serve.__all__)
    for name in medlens.serve.__all__:
        assert hasattr(medlens.serve, name)


def test_import_loads_no_model_libraries() -> None:
    heavy = "('torch', 'pydicom', 'nibabel')"
    code = f"import sys, medlens.serve; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
