"""Overlay pictures: heatmap blended on the windowed image, with a colour bar and a title."""

from __future__ import annotations

import io

import numpy as np

#: Heatmap colour map; opacity grows with the heat so cold regions leave the anatomy visible.
CMAP = "jet"
MAX_ALPHA = 0.6


def relevant_slices(heatmap: np.ndarray, count: int = 3) -> list[int]:
    """Indices (ascending) of the ``count`` slices (axis 0) holding the most heat."""
    mass = heatmap.reshape(heatmap.shape[0], -1).sum(axis=1)
    top = np.argsort(-mass, kind="stable")[: min(count, len(mass))]
    return sorted(int(i) for i in top)


def heat_peak(heatmap: np.ndarray) -> tuple[int, ...]:
    """Index of the heatmap's maximum (the first one on ties)."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(heatmap)), heatmap.shape))


def orthogonal_slices(
    display: np.ndarray, heatmap: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Axial, coronal and sagittal ``(image, heat, label)`` panels through the heat peak.

    ``display`` is ``(D, H, W)`` or ``(D, H, W, 3)``, ``heatmap`` ``(D, H, W)``; axis 0 is
    taken as axial (slice index ``z``), axis 1 coronal (``y``), axis 2 sagittal (``x``).
    """
    z, y, x = heat_peak(heatmap)
    return [
        (display[z], heatmap[z], f"axial z={z}"),
        (display[:, y], heatmap[:, y], f"coronal y={y}"),
        (display[:, :, x], heatmap[:, :, x], f"sagittal x={x}"),
    ]


def overlay_png(display: np.ndarray, heatmap: np.ndarray, title: str, *, dpi: int = 100) -> bytes:
    """PNG bytes of ``heatmap`` (values in [0, 1]) over ``display`` (values in [0, 1]).

    2D: ``display`` is ``(H, W)`` or ``(H, W, 3)`` and ``heatmap`` ``(H, W)``. 3D: both are
    ``(D, H, W)`` and the three orthogonal slices through the heat peak are shown side by
    side (:func:`orthogonal_slices`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if heatmap.ndim == 3:
        panels = orthogonal_slices(display, heatmap)
    else:
        panels = [(display, heatmap, "")]
    fig = Figure(figsize=(3.2 * len(panels) + 0.9, 3.6), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    mappable = None
    for ax, (image, heat, label) in zip(axes, panels, strict=True):
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="lanczos")
        heat = np.clip(heat, 0.0, 1.0)
        mappable = ax.imshow(heat, cmap=CMAP, vmin=0.0, vmax=1.0, alpha=MAX_ALPHA * heat)
        ax.set_title(label, fontsize=8)
        ax.set_axis_off()
    fig.colorbar(mappable, ax=list(axes), fraction=0.046, pad=0.02, label="relevance")
    fig.suptitle(title, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
