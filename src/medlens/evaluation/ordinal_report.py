"""The ordinal section of a classification report: QWK, MAE, cut-point AUCs, grade matrix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medlens.evaluation._html import esc

__all__ = ["ordinal_section"]

_MEANINGS = {
    "qwk": ("Quadratic-weighted kappa", "Agreement with the true grade beyond chance; "
            "errors weigh by the square of their distance (1 = perfect, 0 = chance)."),
    "mae": ("MAE (grades)", "Mean distance between the decided and the true grade."),
    "mae_expected": ("MAE of the expected grade", "Mean distance between the expected "
                     "grade (sum of grade x probability) and the true grade."),
    "accuracy": ("Accuracy", "Share of cases given exactly their grade."),
}  # fmt: skip


def ordinal_section(metrics: Mapping[str, Any]) -> str:
    """The HTML section for ``metrics["ordinal"]`` ("" when the run is not ordinal)."""
    ordinal = metrics.get("ordinal")
    if not ordinal:
        return ""
    rows = [
        _row(label, ordinal["metrics"][name], meaning, percent=name == "accuracy")
        for name, (label, meaning) in _MEANINGS.items()
    ]
    rows += [
        _row(f"AUC, grade {cut}", entry, "ROC-AUC of P(grade at or above) for that cut-point.")
        for cut, entry in ordinal["cut_point_auc"].items()
    ]
    return (
        f"<section><h2>Grades</h2><p class='note'>{esc(_decision_text(ordinal))}</p>"
        "<table><thead><tr><th>Metric</th><th class='num'>Value</th><th class='num'>CI</th>"
        "<th>What it measures</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + _grade_matrix(ordinal)
        + "</section>"
    )


def _decision_text(ordinal: Mapping[str, Any]) -> str:
    grades = " < ".join(ordinal["grades"])
    cuts = ordinal["decision"]["cut_points"]
    if not cuts and ordinal["decision"]["rule"] == "median":
        return f"Grades {grades}; the decided grade is the median of the grade probabilities."
    if not cuts:
        return f"Grades {grades}; the decided grade is the most probable one."
    shown = ", ".join(f"{c:.2f}" for c in cuts)
    return (
        f"Grades {grades}; the decided grade counts the cut-points ({shown}, chosen on the "
        "validation split to maximise QWK) at or below the expected grade."
    )


def _row(label: str, entry: Mapping[str, Any], meaning: str, *, percent: bool = False) -> str:
    def fmt(value: float | None) -> str:
        if value is None:
            return "n/a"
        return f"{100 * value:.1f}%" if percent else f"{value:.3f}"

    ci = ""
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        ci = f"{fmt(entry['ci_low'])} – {fmt(entry['ci_high'])}"
    return (
        f"<tr><td><b>{esc(label)}</b></td><td class='num'>{fmt(entry['value'])}</td>"
        f"<td class='ci'>{ci}</td><td class='note'>{esc(meaning)}</td></tr>"
    )


def _grade_matrix(ordinal: Mapping[str, Any]) -> str:
    names = ordinal["grades"]
    head = "".join(f"<th class='num'>{esc(n)}</th>" for n in names)
    body = "".join(
        f"<tr><td><b>{esc(name)}</b></td>"
        + "".join(f"<td class='num'>{count}</td>" for count in row)
        + "</tr>"
        for name, row in zip(names, ordinal["confusion_matrix"], strict=True)
    )
    return (
        "<h3>Decided grade (columns) by true grade (rows)</h3>"
        f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
