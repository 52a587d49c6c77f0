"""Shared helpers of the classification benchmarks: train, evaluate, print one row."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens.config import load_config
from medlens.pipeline import evaluate_run, train_run


def train_and_test(config_path: Path, **overrides: Any) -> dict[str, Any]:
    """Train with overrides, evaluate on the test split; return figures and timings."""
    start = time.perf_counter()
    cpu = time.process_time()
    run = train_run(load_config(config_path, **overrides))
    train_s, train_cpu = time.perf_counter() - start, time.process_time() - cpu
    out = evaluate_run(run, split="test", n_bootstrap=1000, examples=4)
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    card = json.loads((run / "model.json").read_text())
    return {
        "run": str(run),
        "auc": metrics["roc_auc"],
        "acc": metrics["accuracy"],
        "sens": metrics["sensitivity"]["value"],
        "spec": metrics["specificity"]["value"],
        "threshold": card["threshold"],
        "temperature": card["temperature"],
        "best_epoch": card["training"]["best_epoch"],
        "val_auc": card["training"]["best_val_auc"],
        "train_wall_s": train_s,
        "train_cpu_s": train_cpu,
    }


def describe(name: str, r: dict[str, Any]) -> str:
    auc, acc = r["auc"], r["acc"]
    return (
        f"{name}: test AUC {auc['value']:.4f} [{auc['ci_low']:.4f}, {auc['ci_high']:.4f}]  "
        f"ACC {acc['value']:.4f} [{acc['ci_low']:.4f}, {acc['ci_high']:.4f}]  "
        f"sens {r['sens']:.3f} spec {r['spec']:.3f}  thr {r['threshold']:.3f} "
        f"T {r['temperature']:.2f}  best epoch {r['best_epoch']} (val AUC {r['val_auc']:.4f})  "
        f"train {r['train_wall_s']:.0f} s wall / {r['train_cpu_s']:.0f} s CPU"
    )


def split_predictions(run: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels and positive-class probabilities from ``eval/<split>/predictions.csv``
    of a binary run (evaluated first, without bootstrap, if that file is missing)."""
    path = run / "eval" / split / "predictions.csv"
    if not path.is_file():
        evaluate_run(run, split=split, n_bootstrap=0, examples=0)
    positive = json.loads((run / "model.json").read_text())["classes"][1]
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    labels = np.array([int(row["true_label"] == positive) for row in rows])
    return labels, np.array([float(row[f"p_{positive}"]) for row in rows])
