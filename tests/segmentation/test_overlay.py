"""Segmentation report overlays for grey, colour (either channel order) and volume images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from medlens.segmentation.overlay import largest_slice, overlay_png

CLASSES = ["background", "vessel"]


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)).convert("RGB"), dtype=int)


def _green_share(png: bytes) -> float:
    """Share of the picture's pixels that are clearly green (G far above R and B)."""
    rgb = _pixels(png)
    return float(((rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])) > 80).mean())


def _masks(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((size, size), np.uint8)
    truth[8:20, 10:22] = 1
    return truth, np.roll(truth, 2, axis=1)


def _green_photo(size: int = 32) -> np.ndarray:
    """An RGB 'fundus' in green with a darker square, channels last, uint8."""
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[..., 1] = 200
    rgb[8:20, 10:22, 1] = 90
    return rgb


@pytest.mark.parametrize("layout", ["last", "first"])
def test_rgb_images_are_drawn_in_colour(layout: str) -> None:
    truth, prediction = _masks()
    rgb = _green_photo()
    image = rgb if layout == "last" else np.moveaxis(rgb, -1, 0)
    png = overlay_png(image, truth, prediction, CLASSES)
    assert png.startswith(b"\x89PNG")
    assert _green_share(png) > 0.15  # the photograph keeps its colour


def test_grey_images_stay_grey() -> None:
    truth, prediction = _masks()
    grey = _green_photo()[..., 1]
    assert _green_share(overlay_png(grey, truth, prediction, CLASSES)) < 0.01


def test_volume_is_cut_through_the_largest_true_foreground() -> None:
    truth = np.zeros((6, 16, 16), np.uint8)
    truth[1, 4:6, 4:6] = 1
    truth[4, 2:12, 2:12] = 1  # the largest true area
    prediction = np.zeros_like(truth)
    prediction[2] = 1  # more predicted foreground, but truth decides
    assert largest_slice(truth, prediction) == 4
    assert largest_slice(np.zeros_like(truth), prediction) == 2
    volume = np.random.default_rng(0).normal(size=truth.shape)
    assert overlay_png(volume, truth, prediction, CLASSES).startswith(b"\x89PNG")
    channels = np.stack([volume, -volume])  # (C, D, H, W): the first channel is drawn
    assert overlay_png(channels, truth, prediction, CLASSES).startswith(b"\x89PNG")


def test_an_image_off_the_label_grid_is_refused() -> None:
    truth, prediction = _masks()
    with pytest.raises(ValueError, match="does not match label maps"):
        overlay_png(np.zeros((20, 20)), truth, prediction, CLASSES)
