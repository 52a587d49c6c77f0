"""Intensity windows: named presets, the file's own window or VOI LUT, percentile windows.

A window ``(center, width)`` maps values linearly to [0, 1] (DICOM's LINEAR_EXACT function):
``center - width/2`` goes to 0, ``center + width/2`` to 1, values outside are clipped. For CT
the values are Hounsfield units, as :func:`medlens.read_image` returns them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from medlens.errors import ConfigError
from medlens.io.image import Image

__all__ = [
    "WINDOW_PRESETS",
    "Window",
    "apply_voi_lut",
    "apply_window",
    "auto_window",
    "display_array",
    "parse_window",
    "percentile_window",
    "resolve_window",
]


class Window(NamedTuple):
    """A display window: centre and width, in the image's value units."""

    center: float
    width: float


#: Common CT windows in HU (centre, width), as radiologists use them.
WINDOW_PRESETS: Mapping[str, Window] = {
    "abdomen": Window(40, 400),
    "bone": Window(400, 1800),
    "brain": Window(40, 80),
    "liver": Window(30, 150),
    "lung": Window(-600, 1500),
    "mediastinum": Window(50, 350),
    "soft": Window(50, 400),
    "stroke": Window(32, 8),
    "subdural": Window(75, 215),
}

#: Percentiles used when an image carries no window of its own.
AUTO_PERCENTILES = (0.5, 99.5)


def apply_window(array: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map ``array`` through the window to ``float32`` values in [0, 1]."""
    if not width > 0:
        raise ConfigError(f"window width must be positive, got {width}")
    out = (np.asarray(array, dtype=np.float32) - np.float32(center)) / np.float32(width)
    out += np.float32(0.5)
    return np.clip(out, 0.0, 1.0, out=out)


def apply_voi_lut(array: np.ndarray, lut: Mapping[str, Any]) -> np.ndarray:
    """Map ``array`` through a DICOM VOI LUT (as kept in ``Image.meta["voi_lut"]``) to [0, 1]."""
    table = np.asarray(lut["table"], dtype=np.float32) / np.float32(2 ** int(lut["bits"]) - 1)
    index = np.rint(np.asarray(array, dtype=np.float64)) - int(lut["first_mapped"])
    index = np.clip(index, 0, len(table) - 1).astype(np.intp)
    return np.clip(table[index], 0.0, 1.0)


def percentile_window(
    array: np.ndarray, low: float = AUTO_PERCENTILES[0], high: float = AUTO_PERCENTILES[1]
) -> Window:
    """A window spanning the ``low``..``high`` percentiles of the finite values."""
    flat = np.asarray(array).ravel()
    flat = flat[:: max(1, flat.size // 2_000_000)]  # a regular sample is plenty for percentiles
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    if not flat.size:
        return Window(0.5, 1.0)
    lo, hi = (float(v) for v in np.percentile(flat, [low, high]))
    if hi <= lo:
        hi = lo + 1.0
    return Window((lo + hi) / 2, hi - lo)


def auto_window(image: Image) -> Window:
    """The image's own window (DICOM Window Center/Width), else its VOI LUT's input range,
    else a percentile window of its values."""
    if "window" in image.meta:
        return Window(*(float(v) for v in image.meta["window"]))
    if "voi_lut" in image.meta:
        lut = image.meta["voi_lut"]
        entries = len(lut["table"])
        return Window(lut["first_mapped"] + entries / 2, float(entries))
    return percentile_window(image.array)


def parse_window(text: str) -> Window | None:
    """Parse ``"lung"`` (a preset), ``"-600,1500"`` (centre,width) or ``"auto"`` (``None``)."""
    key = text.strip().lower()
    if key == "auto":
        return None
    if key in WINDOW_PRESETS:
        return WINDOW_PRESETS[key]
    try:
        center, width = (float(part) for part in key.split(","))
    except ValueError:
        names = ", ".join(WINDOW_PRESETS)
        raise ConfigError(
            f"unknown window {text!r}: use auto, a preset ({names}) or CENTER,WIDTH"
        ) from None
    if not width > 0:
        raise ConfigError(f"window width must be positive, got {text!r}")
    return Window(center, width)


def resolve_window(spec: str | tuple[float, float] | Window | None, image: Image) -> Window:
    """A concrete window for ``image`` from a preset name, ``"C,W"``, a pair or ``None``/auto."""
    if isinstance(spec, str):
        spec = parse_window(spec)
    if spec is None:
        return auto_window(image)
    return Window(float(spec[0]), float(spec[1]))


def display_array(
    image: Image, window: str | tuple[float, float] | Window | None = "auto"
) -> np.ndarray:
    """``float32`` pixels in [0, 1] for display or export.

    Grey images go through ``window`` (``"auto"``: the file's window, else its VOI LUT, else
    percentiles); 8/16-bit colour images are scaled by their dtype's range.
    """
    if image.is_rgb:
        top = 255.0 if image.array.dtype.itemsize == 1 else 65535.0
        return (image.array.astype(np.float32) / np.float32(top)).clip(0, 1)
    auto = window is None or (isinstance(window, str) and window.strip().lower() == "auto")
    if auto and "window" not in image.meta and "voi_lut" in image.meta:
        return apply_voi_lut(image.array, image.meta["voi_lut"])
    center, width = resolve_window(window, image)
    return apply_window(image.array, center, width)
