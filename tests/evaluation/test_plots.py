"""Plots: PNG bytes, no pyplot state, no leaked style."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
from PIL import Image as PILImage

from medlens.evaluation import evaluate_predictions, plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_MAGIC)
    return PILImage.open(io.BytesIO(png)).size


@pytest.fixture(scope="module")
def all_metrics():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.4 * y + 0.6 * rng.random(200), 0, 1)
    yc = rng.integers(0, 3, 150)
    pc = rng.dirichlet([1, 1, 1], 150)
    yl = rng.integers(0, 2, (150, 5))
    pl = np.clip(0.4 * yl + 0.6 * rng.random((150, 5)), 0, 1)
    return [
        evaluate_predictions(y, p, n_bootstrap=20, raw_probs=p**2, temperature=1.5),
        evaluate_predictions(yc, pc, task="multiclass", n_bootstrap=20),
        evaluate_predictions(yl, pl, task="multilabel", n_bootstrap=20),
    ]


def test_every_plot_is_a_png_and_leaves_no_state(all_metrics) -> None:
    from matplotlib._pylab_helpers import Gcf

    rc_before = dict(matplotlib.rcParams)
    for metrics in all_metrics:
        for draw in (plots.roc_png, plots.pr_png, plots.confusion_png, plots.reliability_png):
            width, height = _size(draw(metrics))
            assert width > 300 and height > 300
    assert Gcf.get_all_fig_managers() == []
    assert dict(matplotlib.rcParams) == rc_before


def test_training_curves_skip_flags_and_gaps() -> None:
    history = [
        {"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "val_auc": 0.8, "is_best": True},
        {"epoch": 2, "train_loss": 0.5, "val_loss": None, "val_auc": 0.85, "is_best": False},
    ]
    width, height = _size(plots.training_png(history))
    assert width > height > 300


@pytest.mark.parametrize(
    "shape", [(28, 28), (64, 32), (32, 32, 3), (3, 32, 32), (1, 28, 28), (28, 28, 1)]
)
def test_image_png_layouts(shape) -> None:
    array = np.random.default_rng(0).normal(size=shape)
    width, height = _size(plots.image_png(array, size=128))
    assert max(width, height) == 128


def test_image_png_scales_constant_image() -> None:
    png = plots.image_png(np.full((10, 10), 7.0), size=20)
    assert np.asarray(PILImage.open(io.BytesIO(png))).max() == 0
