"""Evaluation plots as PNG bytes, drawn from the output of ``evaluate_predictions``.

Matplotlib is imported on first use and only through ``Figure`` objects (never pyplot),
so no global figure state is created or leaked; style settings apply inside a
``rc_context`` only. Colours are the Okabe-Ito palette, safe for colour-blind readers.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
_STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelcolor": INK,
    "axes.edgecolor": "#9aa5b1",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "savefig.dpi": 150,
}


def roc_png(metrics: Mapping[str, Any]) -> bytes:
    """ROC curve(s) with AUC in the legend and the operating point marked."""
    with _figure(4.2, 3.8) as (fig, ax):
        ax.plot([0, 1], [0, 1], color="#9aa5b1", lw=1, ls="--", label="chance")
        for i, (name, curve) in enumerate(metrics["curves"]["roc"].items()):
            colour = PALETTE[i % len(PALETTE)]
            auc = _metric(metrics, name, "roc_auc")
            ax.plot(curve["fpr"], curve["tpr"], color=colour, lw=2, label=f"{name}  AUC {auc}")
            sens, spec = _value(metrics, name, "sensitivity"), _value(metrics, name, "specificity")
            if sens is not None and spec is not None:
                ax.plot(1 - spec, sens, "o", ms=7, mfc="white", mec=colour, mew=2)
        _square(ax, "1 - specificity (false positive rate)", "Sensitivity (true positive rate)")
        ax.set_title("ROC curve")
        ax.legend(loc="lower right")
        return _to_png(fig)


def pr_png(metrics: Mapping[str, Any]) -> bytes:
    """Precision-recall curve(s) with average precision and the operating point."""
    with _figure(4.2, 3.8) as (fig, ax):
        counts, n = metrics["class_counts"], metrics["n_cases"]
        for i, (name, curve) in enumerate(metrics["curves"]["pr"].items()):
            colour = PALETTE[i % len(PALETTE)]
            ap = _metric(metrics, name, "pr_auc")
            ax.step(curve["recall"], curve["precision"], where="post", color=colour, lw=2,
                    label=f"{name}  AP {ap}")  # fmt: skip
            ax.axhline(counts[name] / n, color=colour, lw=1, ls=":", alpha=0.7)
            sens, ppv = _value(metrics, name, "sensitivity"), _value(metrics, name, "precision")
            if sens is not None and ppv is not None:
                ax.plot(sens, ppv, "o", ms=7, mfc="white", mec=colour, mew=2)
        _square(ax, "Recall (sensitivity)", "Precision (PPV)")
        ax.set_title("Precision-recall curve")
        ax.legend(loc="lower left")
        return _to_png(fig)


def confusion_png(metrics: Mapping[str, Any]) -> bytes:
    """Confusion matrix with counts and row percentages (multilabel: a 2x2 per label, up to 12)."""
    labels, counts = metrics["confusion_matrix"]["labels"], metrics["confusion_matrix"]["counts"]
    if metrics["task"] == "multilabel":
        pairs = zip(labels[:12], counts[:12], strict=True)
        panels = [(name, np.asarray(c), ["no", "yes"]) for name, c in pairs]
    else:
        panels = [("", np.asarray(counts), labels)]  # the report's heading names it
    ncols = min(len(panels), 4)
    nrows = -(-len(panels) // ncols)
    size = max(3.0, 0.5 * len(panels[0][2]) + 2.0)
    grid = {"ncols": ncols, "nrows": nrows, "squeeze": False}
    with _figure(size * ncols, size * nrows, **grid) as (fig, axes):
        for ax in axes.ravel()[len(panels) :]:
            ax.set_visible(False)
        for ax, (title, cm, ticks) in zip(axes.ravel(), panels, strict=False):
            _draw_confusion(ax, cm, ticks)
            ax.set_title(title)
        return _to_png(fig)


def reliability_png(metrics: Mapping[str, Any]) -> bytes:
    """Reliability diagram after (and, if known, before) temperature scaling."""
    calibration = metrics["calibration"]
    series = [("after temperature" if calibration.get("temperature") else "model", calibration)]
    if "before_temperature" in calibration:
        series.insert(0, ("before temperature", calibration["before_temperature"]))
    with _figure(4.2, 4.4, nrows=2, height_ratios=(3, 1), sharex=True) as (fig, (ax, hist)):
        ax.plot([0, 1], [0, 1], color="#9aa5b1", lw=1, ls="--", label="perfect calibration")
        edges = np.asarray(calibration["reliability"]["bin_edges"])
        width = (edges[1] - edges[0]) / (len(series) + 0.5)
        for i, (label, data) in enumerate(series):
            colour = PALETTE[[1, 0][i] if len(series) == 2 else 0]
            rel = data["reliability"]
            conf, freq = _floats(rel["confidence"]), _floats(rel["frequency"])
            ax.plot(
                conf, freq, "o-", color=colour, lw=2, ms=4, label=f"{label}  ECE {data['ece']:.3f}"
            )
            hist.bar(
                edges[:-1] + width * (i + 0.25),
                rel["count"],
                width=width,
                align="edge",
                color=colour,
                alpha=0.8,
            )
        ax.set_ylabel("Observed frequency")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title("Calibration")
        ax.legend(loc="upper left")
        hist.set_xlabel(
            "Predicted probability" if metrics["task"] != "multiclass" else "Confidence"
        )
        hist.set_ylabel("Cases")
        return _to_png(fig)


def training_png(history: Sequence[Mapping[str, Any]]) -> bytes:
    """Training curves from one dict per epoch: losses left, other metrics right."""
    keys = [
        k for k in history[0] if k not in ("epoch", "step", "time", "lr") and _numeric(history, k)
    ]
    losses = [k for k in keys if "loss" in k]
    scores = [k for k in keys if k not in losses]
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    with _figure(8.4, 3.2, ncols=2) as (fig, (left, right)):
        for ax, names, title in ((left, losses, "Loss"), (right, scores, "Metrics")):
            for i, key in enumerate(names):
                values = _floats([row.get(key) for row in history])
                ax.plot(
                    epochs, values, "o-", ms=3, lw=2, color=PALETTE[i % len(PALETTE)], label=key
                )
            ax.set_title(title)
            ax.set_xlabel("Epoch")
            if names:
                ax.legend(loc="best")
        return _to_png(fig)


def image_png(array: np.ndarray, *, size: int = 192) -> bytes:
    """A 2D (or RGB) array as a PNG thumbnail, intensities scaled to its 1st-99th percentile.

    Accepts ``(H, W)``, ``(H, W, 1|3)`` and channels-first ``(1|3, H, W)``; ``NaN`` pixels
    are drawn white (gaps in a mosaic). The longer side becomes ``size`` pixels; a strip
    more than twice as wide as tall (the three slices of a volume from
    :func:`medlens.evaluation.examples.input_picture`) gets ``size`` per third of its width.
    """
    from PIL import Image as PILImage

    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)  # channels-first tensor layout
    a = a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
        raise ValueError(f"image_png draws 2D grey or RGB arrays, got shape {np.shape(array)}")
    finite = np.isfinite(a)
    low, high = np.percentile(a[finite], [1, 99]) if finite.any() else (0.0, 1.0)
    scaled = np.clip((np.where(finite, a, high) - low) / (high - low if high > low else 1.0), 0, 1)
    scaled[~finite] = 1.0
    picture = PILImage.fromarray((scaled * 255).round().astype(np.uint8))
    strip = picture.width > 2 * picture.height
    scale = size / (max(picture.height, picture.width / 3) if strip else max(picture.size))
    resample = PILImage.Resampling.NEAREST if scale >= 2 else PILImage.Resampling.BILINEAR
    picture = picture.resize(
        (round(picture.width * scale), round(picture.height * scale)), resample
    )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def _figure(width: float, height: float, **subplots: Any) -> Iterator[tuple[Figure, Any]]:
    """A styled, pyplot-free figure and its axes; render it with :func:`_to_png` inside."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        ratios = subplots.pop("height_ratios", None)
        axes = fig.subplots(gridspec_kw={"height_ratios": ratios} if ratios else None, **subplots)
        yield fig, axes


def _to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="white")
    fig.clear()
    return buffer.getvalue()


def _draw_confusion(ax: Axes, cm: np.ndarray, ticks: Sequence[str]) -> None:
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(cm):
        colour = "white" if share[i, j] > 0.55 else INK
        ax.text(
            j,
            i,
            f"{count}\n{100 * share[i, j]:.1f}%",
            ha="center",
            va="center",
            color=colour,
            fontsize=9,
        )
    ax.set_xticks(range(len(ticks)), ticks, rotation=30 if len(ticks) > 3 else 0)
    ax.set_yticks(range(len(ticks)), ticks)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.grid(False)


def _square(ax: Axes, xlabel: str, ylabel: str) -> None:
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _entry(metrics: Mapping[str, Any], name: str, metric: str) -> Mapping[str, Any] | None:
    source = (
        metrics["metrics"] if metrics["task"] == "binary" else metrics["per_class"].get(name, {})
    )
    return source.get(metric)


def _value(metrics: Mapping[str, Any], name: str, metric: str) -> float | None:
    entry = _entry(metrics, name, metric)
    return None if entry is None else entry["value"]


def _metric(metrics: Mapping[str, Any], name: str, metric: str) -> str:
    entry = _entry(metrics, name, metric)
    if entry is None or entry["value"] is None:
        return "n/a"
    if entry.get("ci_low") is None:
        return f"{entry['value']:.3f}"
    return f"{entry['value']:.3f} ({entry['ci_low']:.3f}-{entry['ci_high']:.3f})"


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _numeric(history: Sequence[Mapping[str, Any]], key: str) -> bool:
    return any(
        isinstance(row.get(key), int | float) and not isinstance(row.get(key), bool)
        for row in history
    )


def label_efficiency_png(summary: Mapping[str, Sequence[Mapping[str, Any]]]) -> bytes:
    """Test AUC (mean over seeds, with the mean bootstrap CI) against label fraction (log x),
    one line per adaptation mode; ``summary`` maps a mode to rows of
    ``fraction, auc, ci_low, ci_high``."""
    with _figure(6.0, 4.0) as (fig, ax):
        for mode, rows in summary.items():
            x = _floats([r["fraction"] for r in rows]) * 100
            y = _floats([r["auc"] for r in rows])
            low, high = _floats([r["ci_low"] for r in rows]), _floats([r["ci_high"] for r in rows])
            ax.plot(x, y, marker="o", label=mode)
            ax.fill_between(x, low, high, alpha=0.15)
        ax.set_xscale("log")
        ax.set_xlabel("training labels used (%)")
        ax.set_ylabel("test ROC-AUC")
        ax.legend(loc="lower right")
        return _to_png(fig)
