"""A 2D segmentation run on RGB photographs (images/ + masks/): train, evaluate, report."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from medlens.config import parse_config
from medlens.pipeline import evaluate_run, train_run

pytest.importorskip("monai")


def _fundus_like(root: Path, n: int = 12, size: int = 32) -> Path:
    """Reddish RGB photographs with a dark disk, masks 0/255, in images/ and masks/."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx = rng.uniform(9, size - 9, 2)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(4, 7) ** 2
        rgb = np.empty((size, size, 3))
        rgb[:] = (200, 80, 40)
        rgb[disk] = (60, 20, 10)
        rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
        PILImage.fromarray(rgb).save(root / "images" / f"eye{i:02d}.png")
        PILImage.fromarray((disk * 255).astype(np.uint8)).save(root / "masks" / f"eye{i:02d}.png")
    return root


@pytest.mark.slow
def test_rgb_segmentation_run_evaluates_with_colour_overlays(tmp_path: Path) -> None:
    data = _fundus_like(tmp_path / "fundus")
    config = parse_config(
        {
            "data": {"source": str(data), "val_fraction": 0.25, "test_fraction": 0.25},
            "task": "segmentation",
            "epochs": 1,
            "output_dir": str(tmp_path / "run"),
            "segmentation": {
                "iterations_per_epoch": 2,
                "val_every": 1,
                "plan": {"batch_size": 4},
                "base_filters": 4,
                "class_names": ["background", "disc"],
            },
        }
    )
    run = train_run(config)
    out = evaluate_run(run, n_bootstrap=0)
    assert out == run / "eval" / "test"
    page = (out / "report.html").read_text()
    overlays = re.findall(
        r"data:image/png;base64,([A-Za-z0-9+/=]+)", page.split("<h2>Best and worst cases</h2>")[1]
    )
    assert overlays
    rgb = np.asarray(PILImage.open(io.BytesIO(base64.b64decode(overlays[0]))).convert("RGB"))
    reddish = (rgb[..., 0].astype(int) - rgb[..., 2] > 80).mean()
    assert reddish > 0.1  # the photograph in colour, not one channel in grey
    other = evaluate_run(run, data=data, n_bootstrap=0)  # other data: its own folder
    assert other == run / "eval" / "fundus-test" and (other / "report.html").is_file()
    assert (out / "report.html").read_text() == page
