"""The public names of medlens.data and medlens.transforms exist, are sorted, and load lightly."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module_name", ["medlens.data", "medlens.transforms"])
def test_all_names_exist_and_are_sorted(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None


def test_building_a_manifest_does_not_import_torch() -> None:
    """``medlens data`` (manifest + fingerprint) runs without torch: a fast CLI."""
    code = (
        "import sys, medlens.data, medlens.transforms, medlens.cli.data; "
        "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
