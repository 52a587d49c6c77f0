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
    """Two panels (truth, prediction) of outlines over the image; 3D: the slice with the
    most true foreground. Label maps hold class indices (0 = background)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if image.ndim == 3:
        axis_sums = (truth > 0).sum(axis=(1, 2)) + (prediction > 0).sum(axis=(1, 2))
        index = int(np.argmax(axis_sums))
        image, truth, prediction = image[index], truth[index], prediction[index]
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.2), dpi=100)
    for ax, labels, title in ((axes[0], truth, "truth"), (axes[1], prediction, "prediction")):
        ax.imshow(image, cmap="gray", interpolation="nearest")
        for k in range(1, len(class_names)):
            if (labels == k).any():
                ax.contour(labels == k, levels=[0.5], colors=_COLOURS[(k - 1) % len(_COLOURS)])
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    handles = [
        plt.Line2D([], [], color=_COLOURS[(k - 1) % len(_COLOURS)], label=class_names[k])
        for k in range(1, len(class_names))
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


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
    note = "Best and worst cases by mean Dice; the slice with the most foreground."
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
