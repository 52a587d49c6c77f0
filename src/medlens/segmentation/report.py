"""``report.html`` for a segmentation evaluation: the evaluation report's building blocks
(inline CSS, escaped HTML helpers, training curves) with a segmentation section: Dice and
HD95 per class with CIs, a per-case table, and overlays of the best and worst cases.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medlens.evaluation._html import definition_list, esc, figure, page
from medlens.evaluation._io import atomic_write

__all__ = ["Overlay", "overlay_png", "render_segmentation_report", "write_segmentation_report"]

_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6")


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
        index = _largest_foreground_slice(truth, prediction)
        picture, truth, prediction = picture[index], truth[index], prediction[index]
    fig = Figure(figsize=(6, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, labels, title in ((axes[0], truth, "truth"), (axes[1], prediction, "prediction")):
        ax.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        for k in range(1, len(class_names)):
            if (labels == k).any():  # a white halo keeps outlines visible on any colour
                ax.contour(labels == k, levels=[0.5], colors="white", linewidths=2.6)
                ax.contour(labels == k, levels=[0.5], colors=_COLOURS[(k - 1) % len(_COLOURS)],
                           linewidths=1.3)  # fmt: skip
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    handles = [
        Line2D([], [], color=_COLOURS[(k - 1) % len(_COLOURS)], label=class_names[k])
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


def _largest_foreground_slice(truth: np.ndarray, prediction: np.ndarray) -> int:
    """The index along axis 0 with the most true foreground (else predicted foreground)."""
    area = (truth > 0).reshape(len(truth), -1).sum(axis=1)
    if not area.any():
        area = (prediction > 0).reshape(len(prediction), -1).sum(axis=1)
    return int(np.argmax(area))


def write_segmentation_report(path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write the page of :func:`render_segmentation_report` atomically."""
    return atomic_write(path, render_segmentation_report(**kwargs))


def render_segmentation_report(
    *,
    metrics: Mapping[str, Any],
    title: str,
    overlays: Sequence[Overlay] = (),
    history: Sequence[Mapping[str, Any]] | None = None,
    model_card: Mapping[str, Any] | None = None,
) -> str:
    """The report as one self-contained HTML string (every text escaped)."""
    card = dict(model_card or {})
    body = [
        _header(title, metrics, card),
        _summary(metrics),
        _cases(metrics),
        _overlays(overlays),
        _training(history),
        _model(card),
        _footer(metrics),
    ]
    return page(title, body)


def _header(title: str, metrics: Mapping[str, Any], card: Mapping[str, Any]) -> str:
    facts = ["segmentation", f"{metrics['n_cases']} cases"]
    if card.get("architecture"):
        facts.insert(0, f"model {card['architecture']}")
    return (
        f'<header><div class="kicker">medlens evaluation</div><h1>{esc(title)}</h1>'
        f'<p class="sub">{esc(" · ".join(facts))}</p></header>'
    )


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _cell(entry: Mapping[str, Any], digits: int = 3) -> str:
    ci = ""
    if entry.get("ci_low") is not None:
        low, high = _num(entry["ci_low"], digits), _num(entry["ci_high"], digits)
        ci = f" <span class='ci'>({low}–{high})</span>"
    return f"<td class='num'>{esc(_num(entry.get('value'), digits))}{ci}</td>"


def _summary(metrics: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><td>{esc(name)}</td>{_cell(m['dice'])}{_cell(m['hd95'], 2)}"
        f"<td class='num'>{esc(m['hd95_undefined_cases'])}</td></tr>"
        for name, m in metrics["per_class"].items()
    ]
    overall = metrics["metrics"]
    rows.append(
        f"<tr class='total'><td>mean over classes</td>{_cell(overall['mean_dice'])}"
        f"{_cell(overall['mean_hd95'], 2)}<td></td></tr>"
    )
    note = (
        "Dice (1 = perfect overlap) and 95% Hausdorff distance in mm (lower is better), mean "
        "over cases with a bootstrap CI. HD95 is undefined when a structure is absent from "
        "the truth or the prediction but not both; those cases are counted, not averaged."
    )
    return (
        f"<section><h2>Dice and HD95</h2><p class='note'>{esc(note)}</p><table><thead><tr>"
        "<th>class</th><th class='num'>Dice</th><th class='num'>HD95 (mm)</th>"
        "<th class='num'>HD95 undefined</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _cases(metrics: Mapping[str, Any]) -> str:
    names = list(metrics["class_names"])
    head = "".join(f"<th class='num'>Dice {esc(n)}</th>" for n in names)
    head += "".join(f"<th class='num'>HD95 {esc(n)}</th>" for n in names)
    rows = []
    for case in metrics["cases"]:
        cells = "".join(f"<td class='num'>{_num(case['dice'][n])}</td>" for n in names)
        cells += "".join(f"<td class='num'>{_num(case['hd95'][n], 2)}</td>" for n in names)
        rows.append(f"<tr><td>{esc(case['case'])}</td>{cells}</tr>")
    return (
        "<section><h2>Cases</h2><details><summary>Per-case figures</summary><table><thead>"
        f"<tr><th>case</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</details></section>"
    )


def _overlays(overlays: Sequence[Overlay]) -> str:
    if not overlays:
        return ""
    figures = "".join(figure(o.png, f"{o.case}: {o.caption}") for o in overlays)
    note = "Best and worst cases by mean Dice; volumes: the slice with the most true foreground."
    return (
        f"<section><h2>Best and worst cases</h2><p class='note'>{esc(note)}</p>{figures}</section>"
    )


def _training(history: Sequence[Mapping[str, Any]] | None) -> str:
    if not history:
        return ""
    from medlens.evaluation import plots

    image = figure(plots.training_png(history), "Per-epoch figures from metrics.jsonl.")
    return f"<section><h2>Training</h2>{image}</section>"


def _model(card: Mapping[str, Any]) -> str:
    keep = ("architecture", "classes", "label_values", "plan", "preprocessing", "sha256")
    items = {k: card[k] for k in keep if k in card}
    return f"<section><h2>Model</h2>{definition_list(items)}</section>" if items else ""


def _footer(metrics: Mapping[str, Any]) -> str:
    boot = metrics["bootstrap"]
    method = (
        f"{round(100 * boot['confidence'])}% CIs: {boot['method']}, {boot['n_resamples']} "
        f"resamples, seed {boot['seed']}."
        if boot["n_resamples"]
        else "No confidence intervals were computed."
    )
    return f"<footer>{esc(method)} Generated by medlens.</footer>"
