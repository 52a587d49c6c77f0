"""PneumoniaMNIST 28x28, official split: test AUC/ACC with 95% bootstrap CIs over 3 seeds.

Model, epoch (best validation AUC), decision threshold (Youden) and temperature are all
chosen on the validation split; the test split is used once per seed, at the end. With
several seeds, their ensemble (mean calibrated probability, threshold re-chosen on the
validation split) is scored too.

    flock /tmp/medlens-heavy.lock python benchmarks/pneumoniamnist.py \
        --data ../shared/datasets/pneumoniamnist/pneumoniamnist.npz --out /tmp/bench-pmnist
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from _runs import describe, split_predictions, train_and_test

from medlens.evaluation import evaluate_predictions, select_threshold

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pneumoniamnist.yaml"
PUBLISHED = [
    ("MedMNIST v2 ResNet-18 (28)", 0.944, 0.854),
    ("MedMNIST v2 ResNet-50 (224)", 0.962, 0.884),
    ("MedMNIST v2 Google AutoML Vision", 0.991, 0.946),
    ("MedMNIST+ best at 28", 0.973, 0.866),
]


def ensemble(runs: list[Path]) -> str:
    """Mean probability of the runs; threshold (Youden) on validation, scored on test."""
    (y_val, *_), val = zip(*(split_predictions(run, "val") for run in runs), strict=True)
    (y_test, *_), test = zip(*(split_predictions(run, "test") for run in runs), strict=True)
    point = select_threshold(y_val, np.mean(val, axis=0))
    metrics = evaluate_predictions(y_test, np.mean(test, axis=0), threshold=point.threshold)
    auc, acc = metrics["metrics"]["roc_auc"], metrics["metrics"]["accuracy"]
    return (
        f"ensemble of {len(runs)} seeds: test AUC {auc['value']:.4f} "
        f"[{auc['ci_low']:.4f}, {auc['ci_high']:.4f}]  ACC {acc['value']:.4f} "
        f"[{acc['ci_low']:.4f}, {acc['ci_high']:.4f}]  thr {point.threshold:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="pneumoniamnist.npz")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-pmnist"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        overrides = {
            "data.source": str(args.data), "seed": seed, "num_threads": args.threads,
            "output_dir": str(args.out / f"seed{seed}"),
        }  # fmt: skip
        if args.epochs:
            overrides["epochs"] = args.epochs
        rows.append(train_and_test(CONFIG, **overrides))
        print(describe(f"seed {seed}", rows[-1]), flush=True)
    for key in ("auc", "acc"):
        values = [r[key]["value"] for r in rows]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"test {key.upper()} over {len(values)} seeds: mean {statistics.mean(values):.4f} "
              f"sd {spread:.4f} min {min(values):.4f} max {max(values):.4f}")  # fmt: skip
    if len(rows) > 1:
        print(ensemble([Path(r["run"]) for r in rows]), flush=True)
    print("published (test AUC / ACC):")
    for name, auc, acc in PUBLISHED:
        print(f"  {name}: {auc:.3f} / {acc:.3f}")


if __name__ == "__main__":
    main()
