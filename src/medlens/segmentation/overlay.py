"""Label maps drawn over their image: truth and prediction outlines, for reports and pages."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medlens.io.raster import class_colour

__all__ = ["Overlay", "largest_slice", "overlay_png"]


@dataclass(frozen=True)
class Overlay:
    """One case to show: a 2D slice of the image with its true and predicted label maps."""

    case: str
    caption: str
    png: bytes


def overlay_png(
    image: np.ndarray, truth: np.ndarray, prediction: np.ndarray, class_names: Sequence[str]
) -> bytes:
    """Two panels (truth, prediction) of label outlines over the image, as PNG bytes.

    Label maps hold class indices (0 = background) on the image's grid; their shape says
    how to read ``image``:

    * 2D grey ``(H, W)``; 2D colour ``(H, W, 3|4)`` or channels-first ``(3, H, W)``, shown
      in colour (other channel counts: the first channel).
    * 3D ``(D, H, W)``, also with a channel axis first or last (first channel shown, colour
      for trailing RGB frames): the slice along axis 0 with the most true foreground (the
      most predicted foreground when the truth is empty).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    picture = _display(image, truth.shape)
    if truth.ndim == 3:
        index = largest_slice(truth, prediction)
        picture, truth, prediction = picture[index], truth[index], prediction[index]
    fig = Figure(figsize=(6, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, labels, title in ((axes[0], truth, "truth"), (axes[1], prediction, "prediction")):
        ax.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        for k in range(1, len(class_names)):
            if (labels == k).any():  # a white halo keeps outlines visible on any colour
                ax.contour(labels == k, levels=[0.5], colors="white", linewidths=2.6)
                ax.contour(labels == k, levels=[0.5], colors=class_colour(k), linewidths=1.3)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    handles = [
        Line2D([], [], color=class_colour(k), label=class_names[k])
        for k in range(1, len(class_names))
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def _display(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``image`` on the label grid ``shape``, with a trailing RGB axis or none, in [0, 1]."""
    a = np.asarray(image, dtype=np.float64)
    if a.shape == shape:
        pass
    elif a.ndim == len(shape) + 1 and a.shape[:-1] == shape:
        colour = len(shape) in (2, 3) and a.shape[-1] in (3, 4)
        a = a[..., :3] if colour else a[..., 0]
    elif a.ndim == len(shape) + 1 and a.shape[1:] == shape:
        a = np.moveaxis(a, 0, -1) if len(shape) == 2 and a.shape[0] == 3 else a[0]
    else:
        raise ValueError(f"image of shape {a.shape} does not match label maps of shape {shape}")
    low, high = np.percentile(a, [1, 99]) if a.size else (0.0, 1.0)
    return np.clip((a - low) / (high - low if high > low else 1.0), 0.0, 1.0)


def largest_slice(*label_maps: np.ndarray, background: int = 0) -> int:
    """The index along axis 0 with the most foreground in the first of ``label_maps`` that
    has any (truth, then prediction); the middle slice when none has."""
    for labels in label_maps:
        area = (labels != background).reshape(len(labels), -1).sum(axis=1)
        if area.any():
            return int(np.argmax(area))
    return len(label_maps[0]) // 2
