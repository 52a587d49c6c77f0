"""``report.html`` of a segmentation evaluation: Dice and HD95 per class with CIs, a per-case
table and overlays of the best and worst cases, in the one report shell
(:mod:`medlens.evaluation.shell`) that every task shares.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medlens.evaluation._html import esc, figure
from medlens.evaluation._io import atomic_write
from medlens.evaluation.shell import report_page

__all__ = ["render_segmentation_report", "write_segmentation_report"]


def write_segmentation_report(path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write the page of :func:`render_segmentation_report` atomically."""
    return atomic_write(path, render_segmentation_report(**kwargs))


def render_segmentation_report(
    *,
    metrics: Mapping[str, Any],
    title: str,
    overlays: Sequence[Any] = (),
    history: Sequence[Mapping[str, Any]] | None = None,
    model_card: Mapping[str, Any] | None = None,
) -> str:
    """The report as one self-contained HTML string (every text escaped)."""
    sections = [_summary(metrics), _cases(metrics), _overlays(overlays)]
    return report_page(
        title=title, kind="segmentation", metrics=metrics, sections=sections,
        history=history, model_card=model_card,
    )  # fmt: skip


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


def _overlays(overlays: Sequence[Any]) -> str:
    if not overlays:
        return ""
    figures = "".join(figure(o.png, f"{o.case}: {o.caption}") for o in overlays)
    note = "Best and worst cases by mean Dice; volumes: the slice with the most true foreground."
    return (
        f"<section><h2>Best and worst cases</h2><p class='note'>{esc(note)}</p>{figures}</section>"
    )
