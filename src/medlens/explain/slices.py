"""Which slices drove a slice-sequence model's decision: its per-slice attention weights.

For a ``slice_seq`` model with an attention aggregator (``attention``, ``transformer``),
:func:`slice_attention` returns the softmax weights over the slices of each study;
:func:`slice_strip_png` draws the most-weighted slices as thumbnails, ranked, with a bar of
every slice's weight underneath; :func:`explain_slice_files` writes both (``.json`` and
``.png``) for ``medlens explain``. Nothing here changes the model (no hooks: the weights
come from :meth:`~medlens.models.sequence.SliceSequence.slice_weights`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medlens.errors import ConfigError
from medlens.io import Image

__all__ = [
    "SliceAttention",
    "explain_slice_files",
    "is_slice_sequence",
    "slice_attention",
    "slice_strip_png",
]


@dataclass(frozen=True)
class SliceAttention:
    """One study: its per-slice weights (sum 1), display slices in [0, 1] and prediction."""

    weights: np.ndarray
    display: np.ndarray
    prediction: Any

    def ranked(self) -> list[int]:
        """Slice indices, most weight first."""
        return [int(i) for i in np.argsort(-self.weights, kind="stable")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.prediction.label,
            "probabilities": dict(self.prediction.probabilities),
            "slice_weights": [round(float(w), 6) for w in self.weights],
            "ranked_slices": self.ranked(),
        }


def is_slice_sequence(model: Any) -> bool:
    """True for a PyTorch slice-sequence model (``slice_seq``), whatever its aggregator."""
    return isinstance(model, nn.Module) and hasattr(model, "slice_weights")


def slice_attention(predictor: Any, images: Sequence[Image]) -> list[SliceAttention]:
    """Per-slice weights of each study, with the predictor's own preprocessing."""
    model = predictor.model
    if not is_slice_sequence(model):
        raise ConfigError(
            "per-slice weights need a slice_seq model on the PyTorch engine "
            "(Predictor.from_run(run_dir))"
        )
    if getattr(model, "pool", None) is None:
        raise ConfigError(
            f"aggregator {model.aggregator_name!r} has no per-slice weights; train with "
            "model.options.aggregator: attention or transformer to see which slices count"
        )
    predictions = predictor.predict(list(images))
    device = next(model.parameters()).device
    results = []
    for image, prediction in zip(images, predictions, strict=True):
        tensor = predictor.preprocessing(image)
        with torch.inference_mode():
            weights = model.slice_weights(tensor.unsqueeze(0).to(device))[0].float().cpu()
        results.append(SliceAttention(weights.numpy(), _display(tensor), prediction))
    return results


def _display(tensor: torch.Tensor) -> np.ndarray:
    """``(D, H, W)`` in [0, 1]: the first channel, min-max scaled over the study."""
    grey = tensor[0].float().numpy()
    low, high = float(grey.min()), float(grey.max())
    return (grey - low) / (high - low) if high > low else np.zeros_like(grey)


def slice_strip_png(item: SliceAttention, title: str = "", *, top: int = 6) -> bytes:
    """PNG: the ``top`` most-weighted slices, ranked, and every slice's weight as a bar."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = item.ranked()[: min(top, len(item.weights))]
    fig = Figure(figsize=(1.8 * len(shown) + 0.4, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, len(shown), height_ratios=(3, 1.2))
    for column, index in enumerate(shown):
        ax = fig.add_subplot(grid[0, column])
        ax.imshow(item.display[index], cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(f"#{column + 1}: slice {index}\nw={item.weights[index]:.3f}", fontsize=8)
        ax.set_axis_off()
    bars = fig.add_subplot(grid[1, :])
    colours = ["tab:red" if i in shown else "tab:grey" for i in range(len(item.weights))]
    bars.bar(np.arange(len(item.weights)), item.weights, color=colours)
    bars.set_xlabel("slice", fontsize=8)
    bars.set_ylabel("weight", fontsize=8)
    bars.tick_params(labelsize=7)
    fig.suptitle(title or _title(item), fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _title(item: SliceAttention) -> str:
    label = item.prediction.label or "(none)"
    p = item.prediction.probabilities.get(label, float("nan"))
    return f"predicted {label} (p={p:.2f}) | slice attention"


def explain_slice_files(
    predictor: Any, paths: Sequence[Path], out_dir: str | Path, stems: Sequence[str]
) -> list[Any]:
    """Write ``<stem>.png`` (ranked slice strip) and ``<stem>.json`` (weights) per study."""
    from medlens.explain.run import SavedExplanation
    from medlens.io import read_image
    from medlens.training.checkpoint import atomic_write_bytes, atomic_write_text

    out_dir = Path(out_dir)
    saved = []
    for path, stem in zip(paths, stems, strict=True):
        (item,) = slice_attention(predictor, [read_image(path)])
        png, record = out_dir / f"{stem}.png", out_dir / f"{stem}.json"
        atomic_write_bytes(png, slice_strip_png(item))
        atomic_write_text(record, json.dumps(item.to_dict(), indent=2) + "\n")
        label = item.prediction.label
        probability = item.prediction.probabilities.get(label, float("nan"))
        saved.append(SavedExplanation(png, record, label, label, probability))
    return saved
