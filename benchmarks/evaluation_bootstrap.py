"""Speed of the evaluation stage: vectorised stratified bootstrap against a scikit-learn loop.

Prints, for 1000 resamples: the time of ``classification_bootstrap`` (all nine metrics),
of a plain loop calling scikit-learn per resample (ROC-AUC and average precision only),
of the whole ``evaluate_predictions`` and of ``write_report``. Best of ``--repeats`` runs.

    python benchmarks/evaluation_bootstrap.py [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def best_of(repeats: int, func: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def sklearn_loop(y: np.ndarray, p: np.ndarray, n_resamples: int, seed: int = 0) -> None:
    """The naive baseline: draw indices, call scikit-learn for AUC and AP each time."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    for _ in range(n_resamples):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        roc_auc_score(y[idx], p[idx])
        average_precision_score(y[idx], p[idx])


def cases(n: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.6).astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * (2 * y - 1))))
    yc = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), yc] += 1.5
    pc = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    yl = (rng.random((n, 5)) < 0.3).astype(int)
    pl = np.clip(0.35 * yl + 0.65 * rng.random((n, 5)), 0, 1)
    return {"binary": (y, p), "multiclass (4)": (yc, pc), "multilabel (5)": (yl, pl)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))

    from medlens.evaluation import classification_bootstrap, evaluate_predictions, write_report

    b = args.resamples
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}"
    )
    print(f"resamples: {b}, best of {args.repeats}")
    print(f"{'case':<16}{'n':>6}{'bootstrap s':>13}{'evaluate s':>12}{'report s':>10}")
    for n in (600, 5000):
        for task, (y, p) in cases(n).items():
            kind = task.split()[0]
            boot = best_of(
                args.repeats,
                lambda y=y, p=p, kind=kind: classification_bootstrap(
                    y, p, task=kind, n_resamples=b
                ),
            )
            metrics = evaluate_predictions(y, p, task=kind, n_bootstrap=b)
            full = best_of(
                args.repeats,
                lambda y=y, p=p, kind=kind: evaluate_predictions(y, p, task=kind, n_bootstrap=b),
            )
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "report.html"
                report = best_of(
                    args.repeats, lambda m=metrics, path=path: write_report(path, metrics=m)
                )
            print(f"{task:<16}{n:>6}{boot:>13.3f}{full:>12.3f}{report:>10.3f}")
    y, p = cases(600)["binary"]
    loop = best_of(1, lambda: sklearn_loop(y, p, b))
    vec = best_of(args.repeats, lambda: classification_bootstrap(y, p, n_resamples=b))
    print(f"binary n=600: scikit-learn loop (AUC + AP only) {loop:.3f} s; "
          f"vectorised (all 9 metrics) {vec:.3f} s; speed-up x{loop / vec:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
