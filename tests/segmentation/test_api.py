"""The public names of medlens.segmentation resolve, and importing it loads no torch."""

from __future__ import annotations

import subprocess
import sys

import medlens.segmentation as seg


def test_public_names_resolve() -> None:
    assert len(set(seg.__all__)) == len(seg.__all__)
    for name in seg.__all__:
        assert getattr(seg, name) is not None


def test_import_is_light() -> None:
    code = "import sys, medlens.segmentation; print('torch' in sys.modules, 'monai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
