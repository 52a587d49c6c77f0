"""VesselMNIST3D 28³, official splits: slice-sequence models (attention-MIL and bi-GRU).

Protocol (the same as the 3D / ACS / 2.5D rows): best epoch by validation AUC, threshold
(Youden) and temperature on validation, the test split read once per seed at the end; CPU
minutes per seed are process time of training (the machine is shared, so wall time is not
reported as a figure).

    flock /tmp/medlens-laneB.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \
        python benchmarks/vesselmnist3d_sequence.py \
        --data ../shared/datasets/medmnist3d/vesselmnist3d.npz --out /tmp/bench-vessel-seq
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _runs import describe, train_and_test

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "vesselmnist3d_sequence.yaml"
PUBLISHED = [
    ("MedMNIST v2 ResNet-18 + 3D (28)", 0.874, 0.877),
    ("MedMNIST v2 ResNet-50 + 3D (28)", 0.907, 0.918),
    ("MedMNIST v2 ResNet-18 + ACS (28)", 0.930, 0.928),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="vesselmnist3d.npz")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-vessel-seq"))
    parser.add_argument("--aggregators", nargs="+", default=["attention", "gru"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    summary: dict[str, list[dict]] = {}
    for aggregator in args.aggregators:
        rows = summary.setdefault(aggregator, [])
        for seed in args.seeds:
            overrides = {
                "data.source": str(args.data), "seed": seed, "num_threads": 1,
                "model.options.aggregator": aggregator,
                "output_dir": str(args.out / f"{aggregator}-seed{seed}"),
            }  # fmt: skip
            if args.epochs:
                overrides["epochs"] = args.epochs
            rows.append(train_and_test(CONFIG, **overrides))
            print(describe(f"{aggregator} seed {seed}", rows[-1]), flush=True)
        print(_summary(aggregator, rows), flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print("published (test AUC / ACC):")
    for name, auc, acc in PUBLISHED:
        print(f"  {name}: {auc:.3f} / {acc:.3f}")


def _summary(aggregator: str, rows: list[dict]) -> str:
    parts = [f"slice_seq {aggregator}, {len(rows)} seed(s):"]
    for key in ("auc", "acc"):
        values = [r[key]["value"] for r in rows]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        parts.append(f"test {key.upper()} {statistics.mean(values):.4f} ± {spread:.4f}")
    cpu_min = statistics.mean(r["train_cpu_s"] for r in rows) / 60
    parts.append(f"CPU {cpu_min:.1f} min/seed")
    return "  ".join(parts)


if __name__ == "__main__":
    main()
