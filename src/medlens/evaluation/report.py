"""``report.html`` of a classification evaluation: headline figures with CIs, metric tables,
curves, confusion matrix, calibration, examples and a Grad-CAM gallery, in the one report
shell (:mod:`medlens.evaluation.shell`) that every task shares.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medlens.evaluation import plots
from medlens.evaluation._html import (
    definition_list,
    esc,
    figure,
    img,
)
from medlens.evaluation._io import atomic_write
from medlens.evaluation.classification import METRICS
from medlens.evaluation.examples import ExampleCase, HeatmapGallery, ReportImage
from medlens.evaluation.ordinal_report import ordinal_section
from medlens.evaluation.shell import ci_level, report_page

LABELS = {
    "roc_auc": ("ROC AUC", "ranking: chance a positive case scores above a negative one"),
    "pr_auc": ("PR AUC (average precision)", "ranking, weighted towards the positive cases"),
    "sensitivity": ("Sensitivity (recall)", "positive cases called positive"),
    "specificity": ("Specificity", "negative cases called negative"),
    "precision": ("Precision (PPV)", "positive calls that are right"),
    "npv": ("NPV", "negative calls that are right"),
    "f1": ("F1 score", "harmonic mean of precision and sensitivity"),
    "accuracy": ("Accuracy", "cases classified correctly"),
    "balanced_accuracy": ("Balanced accuracy", "mean of the per-class sensitivities"),
}
_SCORES = {"roc_auc", "pr_auc", "f1"}  # shown as 0.xxx; the other metrics as percentages
_HEADLINE = {
    "binary": ("roc_auc", "sensitivity", "specificity"),
    "multiclass": ("roc_auc", "balanced_accuracy", "accuracy"),
    "multilabel": ("roc_auc", "sensitivity", "specificity"),
}


def write_report(
    path: str | os.PathLike[str],
    *,
    metrics: Mapping[str, Any],
    title: str = "Evaluation report",
    history: Sequence[Mapping[str, Any]] | None = None,
    fingerprint: Mapping[str, Any] | None = None,
    examples: Sequence[ExampleCase] = (),
    heatmap_gallery: HeatmapGallery | Sequence[ReportImage] | None = None,
    model_card: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``report.html`` atomically; see :func:`render_report` for the arguments."""
    page = render_report(
        metrics=metrics,
        title=title,
        history=history,
        fingerprint=fingerprint,
        examples=examples,
        heatmap_gallery=heatmap_gallery,
        model_card=model_card,
    )
    return atomic_write(path, page)


def render_report(
    *,
    metrics: Mapping[str, Any],
    title: str = "Evaluation report",
    history: Sequence[Mapping[str, Any]] | None = None,
    fingerprint: Mapping[str, Any] | None = None,
    examples: Sequence[ExampleCase] = (),
    heatmap_gallery: HeatmapGallery | Sequence[ReportImage] | None = None,
    model_card: Mapping[str, Any] | None = None,
) -> str:
    """The report as one HTML string.

    Args:
        metrics: the output of :func:`~medlens.evaluation.evaluate_predictions`.
        title: page title (for example the run and split).
        history: one dict per epoch (``metrics.jsonl`` records) for the training curves.
        fingerprint: the data fingerprint (counts per split and class, hashes);
            defaults to ``model_card["data_fingerprint"]``.
        examples: evaluated cases to show, correct and wrong.
        heatmap_gallery: Grad-CAM (or other) overlays with captions, or a
            :class:`HeatmapGallery` whose note says what they show (or why there are
            none); omitted when None.
        model_card: the run's ``model.json``.
    """
    card = dict(model_card or {})
    sections = [
        _headline(metrics, card),
        ordinal_section(metrics),
        _metric_table(metrics),
        _per_class_table(metrics),
        _curves(metrics),
        _confusion(metrics),
        _calibration(metrics),
        _examples(examples),
        _gallery(heatmap_gallery),
    ]
    task = "ordinal" if "ordinal" in metrics else metrics["task"]
    return report_page(
        title=title, kind=f"{task} classification", metrics=metrics,
        sections=sections, history=history, fingerprint=fingerprint, model_card=card,
    )  # fmt: skip


# --- sections ------------------------------------------------------------------------------


def _headline(metrics: Mapping[str, Any], card: Mapping[str, Any]) -> str:
    cards = []
    for name in _HEADLINE[metrics["task"]]:
        label = LABELS[name][0].split(" (")[0]
        if metrics["task"] != "binary" and name not in ("accuracy", "balanced_accuracy"):
            label = f"Macro {label.lower() if name != 'roc_auc' else label}"
        cards.append(_card(label, name, metrics["metrics"][name], ci_level(metrics)))
    counts = " · ".join(f"{n} {name}" for name, n in metrics["class_counts"].items())
    cards.append(
        f"<div class='card'><div class='label'>Cases evaluated</div><div class='value'>"
        f"{esc(metrics['n_cases'])}</div><div class='ci'>{esc(counts)}</div></div>"
    )
    return (
        "<section aria-label='Headline'><div class='cards'>"
        + "".join(cards)
        + f"</div><p class='operating'>{_operating_text(metrics, card)}</p></section>"
    )


def _metric_table(metrics: Mapping[str, Any]) -> str:
    level = ci_level(metrics)
    rows = []
    for name in METRICS:
        entry = metrics["metrics"][name]
        label, meaning = LABELS[name]
        rows.append(
            f"<tr><td><b>{esc(label)}</b></td><td class='num'>{_fmt(name, entry['value'])}</td>"
            f"<td class='ci'>{_ci(name, entry)}</td><td class='note'>{esc(meaning)}</td></tr>"
        )
    average = "" if metrics["task"] == "binary" else " Macro averages over classes."
    return (
        f"<section><h2>Metrics</h2><p class='note'>Point estimates with {level} confidence "
        f"intervals.{average}</p><table><thead><tr><th>Metric</th><th class='num'>Value</th>"
        f"<th class='num'>{level} CI</th><th>What it measures</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _per_class_table(metrics: Mapping[str, Any]) -> str:
    if not metrics["per_class"]:
        return ""
    shown = ("roc_auc", "sensitivity", "specificity", "precision", "f1")
    head = "".join(f"<th class='num'>{esc(LABELS[m][0].split(' (')[0])}</th>" for m in shown)
    rows = []
    for name, values in metrics["per_class"].items():
        cells = "".join(
            f"<td class='num'>{_fmt(m, values[m]['value'])}<br><span class='ci'>"
            f"{_ci(m, values[m])}</span></td>"
            for m in shown
        )
        count = metrics["class_counts"][name]
        rows.append(f"<tr><td><b>{esc(name)}</b></td><td class='num'>{esc(count)}</td>{cells}</tr>")
    unit = "positives" if metrics["task"] == "multilabel" else "cases"
    return (
        "<section><h2>Per class</h2><p class='note'>One class against the rest.</p><table>"
        f"<thead><tr><th>Class</th><th class='num'>{unit}</th>{head}</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _curves(metrics: Mapping[str, Any]) -> str:
    if not metrics["curves"]["roc"]:
        return ""
    roc = figure(plots.roc_png(metrics), "Circle: the operating point.")
    pr = figure(plots.pr_png(metrics), "Dotted: prevalence, what a useless model scores.")
    return f"<section><h2>Discrimination</h2><div class='grid2'>{roc}{pr}</div></section>"


def _confusion(metrics: Mapping[str, Any]) -> str:
    image = figure(plots.confusion_png(metrics), "Counts and share of each true class (row).")
    summary = _error_summary(metrics)
    if metrics["task"] == "multilabel":  # a row of 2x2 panels needs the full width
        return f"<section><h2>Confusion matrices</h2>{image}{summary}</section>"
    return (
        f"<section><h2>Confusion matrix</h2><div class='grid2'>{image}"
        f"<div>{summary}</div></div></section>"
    )


def _error_summary(metrics: Mapping[str, Any]) -> str:
    """The errors in words: missed cases and false alarms, or the most frequent confusions."""
    names, counts = metrics["class_names"], np.asarray(metrics["confusion_matrix"]["counts"])
    if metrics["task"] == "binary":
        (tn, fp), (fn, tp) = counts
        lines = [
            f"<b>{fn}</b> of {fn + tp} {esc(names[1])} cases missed (false negatives)",
            f"<b>{fp}</b> of {fp + tn} {esc(names[0])} cases called {esc(names[1])} "
            "(false positives)",
        ]
    elif metrics["task"] == "multiclass":
        off = [(counts[i, j], i, j) for i, j in np.ndindex(counts.shape) if i != j and counts[i, j]]
        lines = [
            f"<b>{n}</b> of {counts[i].sum()} {esc(names[i])} cases called {esc(names[j])}"
            for n, i, j in sorted(off, reverse=True)[:5]
        ] or ["No errors."]
    else:
        lines = [
            f"{esc(name)}: <b>{cm[1][0]}</b> missed, <b>{cm[0][1]}</b> false alarms"
            for name, cm in zip(names, counts.tolist(), strict=True)
        ]
    return "<ul class='errors'>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>"


def _calibration(metrics: Mapping[str, Any]) -> str:
    cal = metrics["calibration"]
    items = {"ECE": f"{cal['ece']:.3f}", "Brier score": f"{cal['brier']:.3f}"}
    if "before_temperature" in cal:
        before = cal["before_temperature"]
        items["ECE before temperature scaling"] = f"{before['ece']:.3f}"
        items["Brier before temperature scaling"] = f"{before['brier']:.3f}"
    if cal.get("temperature"):
        items["Temperature (fitted on validation)"] = f"{cal['temperature']:.3f}"
    items["Bins"] = f"{cal['n_bins']} of equal width"
    meaning = (
        "Do the probabilities mean what they say? Among cases given about 0.8, about 80% "
        "should be positive."
        if metrics["task"] != "multiclass"
        else "Does the confidence mean what it says? Among cases called with confidence "
        "about 0.8, about 80% should be right."
    ) + " ECE: the average gap, lower is better."
    return (
        f"<section><h2>Calibration</h2><p class='note'>{esc(meaning)}</p><div class='grid2'>"
        f"{figure(plots.reliability_png(metrics), 'Reliability diagram; bars: cases per bin.')}"
        f"<div>{definition_list(items)}</div></div></section>"
    )


def _examples(examples: Sequence[ExampleCase]) -> str:
    if not examples:
        return ""
    groups = [
        ("Wrong", [x for x in examples if not x.correct]),
        ("Correct", [x for x in examples if x.correct]),
    ]
    parts = []
    for name, cases in groups:
        if cases:
            tiles = "".join(_example_tile(case) for case in cases)
            parts.append(f"<h3>{name} ({len(cases)})</h3><div class='gallery'>{tiles}</div>")
    note = "Cases the model was most sure about, right and wrong."
    return f"<section><h2>Examples</h2><p class='note'>{note}</p>{''.join(parts)}</section>"


def _gallery(gallery: HeatmapGallery | Sequence[ReportImage] | None) -> str:
    if not isinstance(gallery, HeatmapGallery):
        gallery = HeatmapGallery(tuple(gallery or ()))
    if not gallery.images:
        if not gallery.note:
            return ""
        return (
            "<section><h2>Explanations</h2>"
            f"<p class='note'>Not shown: {esc(gallery.note)}</p></section>"
        )
    tiles = "".join(
        f"<div class='{'tile wide' if _is_strip(image.png) else 'tile'}'>"
        f"{img(image.png, image.caption)}"
        f"<div class='cap'>{esc(image.caption)}</div></div>"
        for image in gallery.images
    )
    note = "Where the model looked (Grad-CAM): warm colours weigh most in the decision."
    if gallery.note:
        note = f"{note} {esc(gallery.note)}"
    return (
        f"<section><h2>Explanations</h2><p class='note'>{note}</p>"
        f"<div class='gallery'>{tiles}</div></section>"
    )


# --- small pieces ----------------------------------------------------------------------------


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if metric in _SCORES else f"{100 * value:.1f}%"


def _ci(metric: str, entry: Mapping[str, Any]) -> str:
    if entry.get("ci_low") is None or entry.get("ci_high") is None:
        return ""
    return f"{_fmt(metric, entry['ci_low'])} – {_fmt(metric, entry['ci_high'])}"


def _card(label: str, metric: str, entry: Mapping[str, Any], level: str) -> str:
    ci = _ci(metric, entry)
    return (
        f"<div class='card'><div class='label'>{esc(label)}</div>"
        f"<div class='value'>{_fmt(metric, entry['value'])}</div>"
        f"<div class='ci'>{f'{level} CI {ci}' if ci else '&nbsp;'}</div></div>"
    )


def _operating_text(metrics: Mapping[str, Any], card: Mapping[str, Any]) -> str:
    decision = metrics["decision"]
    if decision["rule"] == "argmax":
        return "Each case is assigned its most probable class."
    how = _threshold_origin(card.get("operating_point"))
    threshold = decision["threshold"]
    if metrics["task"] == "binary":
        positive = esc(metrics["class_names"][1])
        return (
            f"A case is called <b>{positive}</b> when its probability of {positive} is at least "
            f"<b>{threshold:.3f}</b>{how}."
        )
    values = threshold if isinstance(threshold, list) else [threshold] * len(metrics["class_names"])
    pairs = ", ".join(
        f"{esc(n)} ≥ {t:.3f}" for n, t in zip(metrics["class_names"], values, strict=True)
    )
    return f"Each label is called present when its probability reaches its threshold{how}: {pairs}."


def _threshold_origin(point: Any) -> str:
    """Where the threshold came from, from the model card's ``operating_point``."""
    if isinstance(point, list) and point:  # multilabel: one per label, chosen alike
        point = point[0]
    if not isinstance(point, Mapping) or not point.get("method"):
        return ""
    method = point["method"]
    if method == "youden":
        return ", chosen on validation by Youden's J (sensitivity + specificity - 1)"
    if method == "accuracy":
        return ", the most accurate on validation (at the validation prevalence)"
    if method == "sensitivity" and point.get("target_sensitivity") is not None:
        target = float(point["target_sensitivity"])
        return f", the highest that reached {100 * target:.0f}% sensitivity on validation"
    return f", chosen by {esc(method)}"


def _example_tile(case: ExampleCase) -> str:
    tag = (
        "<span class='tag ok'>correct</span>"
        if case.correct
        else "<span class='tag err'>wrong</span>"
    )
    top = sorted(case.probabilities.items(), key=lambda kv: -kv[1])[:3]
    probs = " · ".join(f"P({esc(k)}) {v:.2f}" for k, v in top)
    lines = [
        f"{tag} true <b>{esc(case.true_label)}</b>, called <b>{esc(case.predicted_label)}</b>",
        probs,
        esc(case.caption),
    ]
    caption = "<br>".join(line for line in lines if line)
    alt = f"true {case.true_label}, predicted {case.predicted_label}"
    kind = "tile wide" if _is_strip(case.png) else "tile"
    return f"<div class='{kind}'>{img(case.png, alt)}<div class='cap'>{caption}</div></div>"


def _is_strip(png: bytes) -> bool:
    """A PNG more than twice as wide as tall (the slices of a volume side by side)."""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return png[12:16] == b"IHDR" and width > 2 * height
