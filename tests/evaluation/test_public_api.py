"""The evaluation package: explicit, sorted public names; importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import medlens.evaluation as evaluation


def test_all_names_exist_and_are_sorted() -> None:
    assert evaluation.__all__ == sorted(evaluation.__all__)
    assert [name for name in evaluation.__all__ if not hasattr(evaluation, name)] == []


def test_import_does_not_load_torch_or_matplotlib() -> None:
    code = (
        "import sys, medlens.evaluation; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
