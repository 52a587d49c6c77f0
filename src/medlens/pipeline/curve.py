"""Label-efficiency curves: test AUC against the share of training labels, per adaptation mode.

Each point is one normal run (``train_run`` then ``evaluate_run`` on the fixed test split)
of the config with a mode's overrides, ``data.train_fraction`` (patient-grouped, stratified
subsample of the training split) and ``seed``. Points are resumable: a point whose
``point.json`` exists is read back, not retrained. The folder::

    runs/<mode>-f<fraction>-s<seed>/   one run directory per point (+ point.json)
    curve.json  curve.csv  curve.png  report.html
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medlens.errors import ConfigError
from medlens.training.checkpoint import atomic_write_bytes, atomic_write_text

__all__ = ["DEFAULT_MODES", "MODES", "label_efficiency", "parse_mode_overrides"]

#: a mode is config overrides (dotted keys); a new adaptation mode is one entry here
MODES: dict[str, dict[str, Any]] = {
    "scratch": {"adaptation.mode": "full", "model.pretrained": False},
    "probe": {"adaptation.mode": "probe", "model.pretrained": "imagenet"},
    "full": {"adaptation.mode": "full", "model.pretrained": "imagenet"},
    "lora": {"adaptation.mode": "lora", "model.pretrained": "imagenet"},
}
#: ``full`` fine-tunes with layer-wise lr decay (``optimizer.layer_decay``)
MODES["full"]["optimizer.layer_decay"] = 0.75
DEFAULT_MODES = ("scratch", "probe", "lora", "full")
CSV_COLUMNS = ("mode", "fraction", "seed", "n_train", "auc", "ci_low", "ci_high", "cpu_s")


def label_efficiency(
    config: str | Path,
    out_dir: str | Path,
    *,
    fractions: Sequence[float] | Mapping[str, Sequence[float]] = (0.01, 0.05, 0.1, 0.25, 1.0),
    seeds: Sequence[int] = (0, 1, 2),
    modes: Mapping[str, Mapping[str, Any]] | None = None,
    n_bootstrap: int = 500,
    console: Any = None,
) -> Path:
    """Train and evaluate every (mode, fraction, seed) point; write the curve; return its dir.

    ``fractions`` may map a mode to its own fractions (e.g. fewer for a costly mode).
    """
    out_dir = Path(out_dir)
    modes = {name: MODES[name] for name in DEFAULT_MODES} if modes is None else modes
    per_mode = {
        m: fractions.get(m, ()) if isinstance(fractions, Mapping) else fractions for m in modes
    }
    for mode_fractions in per_mode.values():
        _check(mode_fractions, seeds, modes)
    points = [
        _point(config, out_dir, mode, overrides, fraction, seed, n_bootstrap, console)
        for mode, overrides in modes.items()
        for fraction in per_mode[mode]
        for seed in seeds
    ]
    _write_curve(out_dir, points)
    return out_dir


def parse_mode_overrides(names: Sequence[str], overrides: Sequence[str]) -> dict[str, dict]:
    """Built-in modes by name, plus ``mode.dotted.key=value`` overrides (YAML values)."""
    import yaml

    unknown = [n for n in names if n not in MODES]
    if unknown:
        raise ConfigError(f"unknown mode(s) {unknown}: choose from {sorted(MODES)}")
    modes = {name: dict(MODES[name]) for name in names}
    for text in overrides:
        key, sep, value = text.partition("=")
        mode, _, dotted = key.partition(".")
        if not sep or not dotted or mode not in modes:
            raise ConfigError(f"override {text!r}: write MODE.key=value for a chosen mode")
        modes[mode][dotted] = yaml.safe_load(value)
    return modes


def _check(fractions: Sequence[float], seeds: Sequence[int], modes: Mapping) -> None:
    if not fractions or not seeds or not modes:
        raise ConfigError("a curve needs at least one fraction, one seed and one mode")
    if any(not 0.0 < f <= 1.0 for f in fractions):
        raise ConfigError(f"label fractions must be in (0, 1], got {list(fractions)}")


def _point(
    config: str | Path,
    out_dir: Path,
    mode: str,
    overrides: Mapping[str, Any],
    fraction: float,
    seed: int,
    n_bootstrap: int,
    console: Any,
) -> dict[str, Any]:
    from medlens.config import load_config
    from medlens.pipeline import evaluate_run
    from medlens.tasks.run import train_run

    run_dir = out_dir / "runs" / f"{mode}-f{fraction:g}-s{seed}"
    done = run_dir / "point.json"
    if done.is_file():
        return json.loads(done.read_text())
    if run_dir.exists():  # an interrupted point: start it again
        shutil.rmtree(run_dir)
    settings = {**overrides, "data.train_fraction": fraction, "seed": seed}
    train_config = load_config(config, **settings, output_dir=str(run_dir))
    start = time.process_time()
    train_run(train_config)
    cpu_s = time.process_time() - start
    metrics = json.loads(
        (evaluate_run(run_dir, n_bootstrap=n_bootstrap) / "metrics.json").read_text()
    )
    auc = metrics["metrics"]["roc_auc"]
    point = {
        "mode": mode, "fraction": fraction, "seed": seed, "n_train": _n_train(run_dir),
        "auc": auc["value"], "ci_low": auc.get("ci_low"), "ci_high": auc.get("ci_high"),
        "cpu_s": round(cpu_s, 2), "n_test": metrics["n_cases"], "bootstrap": metrics["bootstrap"],
    }  # fmt: skip
    atomic_write_text(done, json.dumps(point, indent=2) + "\n")
    if console is not None:
        console.print(f"{mode} {fraction:g} seed {seed}: AUC {point['auc']:.3f}, {cpu_s:.1f} CPU s")
    return point


def _n_train(run_dir: Path) -> int:
    with open(run_dir / "manifest.csv", newline="") as handle:
        return sum(row["split"] == "train" for row in csv.DictReader(handle))


def summarise(points: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per mode and fraction: the mean over seeds of AUC, CI bounds and CPU seconds."""
    import numpy as np

    summary: dict[str, list[dict[str, Any]]] = {}
    for mode in dict.fromkeys(p["mode"] for p in points):
        rows = []
        for fraction in sorted({p["fraction"] for p in points if p["mode"] == mode}):
            group = [p for p in points if p["mode"] == mode and p["fraction"] == fraction]
            mean = {
                k: float(np.mean([p[k] for p in group]))
                for k in ("auc", "ci_low", "ci_high", "cpu_s")
            }
            auc_sd = float(np.std([p["auc"] for p in group]))
            rows.append({"fraction": fraction, "seeds": len(group), **mean, "auc_sd": auc_sd})
        summary[mode] = rows
    return summary


def _write_curve(out_dir: Path, points: list[dict[str, Any]]) -> None:
    from medlens.evaluation import plots

    summary = summarise(points)
    atomic_write_text(
        out_dir / "curve.json", json.dumps({"points": points, "summary": summary}, indent=2) + "\n"
    )
    text = io.StringIO()
    writer = csv.DictWriter(text, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(points)
    atomic_write_text(out_dir / "curve.csv", text.getvalue())
    png = plots.label_efficiency_png(summary)
    atomic_write_bytes(out_dir / "curve.png", png)
    atomic_write_text(out_dir / "report.html", _report(points, summary, png))


def _report(points: list[dict[str, Any]], summary: dict[str, list[dict]], png: bytes) -> str:
    from medlens.evaluation._html import esc, figure
    from medlens.evaluation.shell import report_page

    rows = "".join(
        f"<tr><td>{esc(mode)}</td><td>{r['fraction']:.0%}</td><td>{r['seeds']}</td>"
        f"<td>{r['auc']:.3f} ± {r['auc_sd']:.3f}</td>"
        f"<td>{r['ci_low']:.3f} – {r['ci_high']:.3f}</td>"
        f"<td>{r['cpu_s']:.1f}</td></tr>"
        for mode, group in summary.items()
        for r in group
    )
    table = (
        "<table><tr><th>mode</th><th>labels</th><th>seeds</th><th>test AUC (mean ± sd)</th>"
        "<th>mean 95% CI</th><th>CPU s per point</th></tr>" + rows + "</table>"
    )
    caption = "Test ROC-AUC against the share of training labels (log scale); bands: mean CI."
    section = f"<section><h2>Label efficiency</h2>{figure(png, caption)}{table}</section>"
    metrics = {"n_cases": points[0]["n_test"], "bootstrap": points[0]["bootstrap"]}
    return report_page(
        title="label-efficiency curve", kind="adaptation modes", metrics=metrics, sections=[section]
    )
