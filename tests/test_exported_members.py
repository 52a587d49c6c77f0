"""The public API is explicit: every name in ``__all__`` exists, and the list is sorted."""

from __future__ import annotations

import importlib

import pytest

import medlens

PUBLIC_MODULES = ["medlens", "medlens.errors"]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_all_names_exist_and_are_sorted(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name} is in __all__ but missing"


def test_every_error_derives_from_medlens_error() -> None:
    from medlens import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), medlens.MedlensError)


def test_import_is_light() -> None:
    """Importing medlens must not pull in torch or pydicom (CLI start-up, service workers)."""
    import subprocess
    import sys

    heavy = "('torch', 'pydicom', 'nibabel')"
    code = f"import sys, medlens; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
