"""VesselMNIST3D, official splits: 3D CNN vs ACS vs 2.5D, test AUC/ACC over seeds.

Per model and seed: best epoch by validation AUC, threshold (Youden) on validation, the test
split read once at the end; CPU minutes (process time) per seed and the process's peak RSS.
Peak RSS is per process (``ru_maxrss``), so measure it in a run of its own (one model).

    flock /tmp/medlens-laneA.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \
        python benchmarks/vesselmnist3d.py --out /tmp/bench-vessel3d
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
from pathlib import Path

import yaml
from _runs import describe, train_and_test

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "medmnist3d"
MODELS = ("resnet18_3d", "acs_efficientnet_lite0", "planes25d_efficientnet_lite0")
PUBLISHED = [
    ("MedMNIST v2 ResNet-18 + 3D (28)", 0.874, 0.877),
    ("MedMNIST v2 ResNet-50 + 3D (28)", 0.907, 0.918),
    ("MedMNIST v2 ResNet-18 + ACS (28)", 0.930, 0.928),
]


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, choices=(28, 64), default=28)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="override the configs'")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-vessel3d"))
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE",
        help="more config overrides, values as YAML (e.g. ema_decay=0.995)",
    )  # fmt: skip
    args = parser.parse_args()
    extra = {key: yaml.safe_load(value) for key, value in (s.split("=", 1) for s in args.set)}
    data = DATA / ("vesselmnist3d.npz" if args.size == 28 else "vesselmnist3d_64.npz")
    results: dict[str, list[dict]] = {m: [] for m in args.models}
    for seed in args.seeds:  # seed-major: every model has a row early
        for model in args.models:
            overrides = {
                "data.source": str(data), "seed": seed, "num_threads": 1,
                "model.image_size": args.size,
                "output_dir": str(args.out / f"{model}-{args.size}-seed{seed}"),
            }  # fmt: skip
            if args.epochs:
                overrides["epochs"] = args.epochs
            overrides |= extra
            row = train_and_test(ROOT / "configs" / f"vesselmnist3d_{model}.yaml", **overrides)
            row["peak_rss_mib"] = peak_rss_mib()
            results[model].append(row)
            print(describe(f"{model} {args.size}px seed {seed}", row), flush=True)
            print(f"  CPU {row['train_cpu_s'] / 60:.1f} min, peak RSS so far "
                  f"{row['peak_rss_mib']:.0f} MiB", flush=True)  # fmt: skip
            with open(args.out / "rows.jsonl", "a") as f:
                f.write(json.dumps({"model": model, "size": args.size, "seed": seed, **row}) + "\n")
    for model, rows in results.items():
        for key in ("auc", "acc"):
            values = [r[key]["value"] for r in rows]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            print(f"{model} test {key.upper()} over {len(values)} seeds: mean "
                  f"{statistics.mean(values):.4f} sd {spread:.4f}")  # fmt: skip
        cpu = [r["train_cpu_s"] / 60 for r in rows]
        print(f"{model} CPU min per seed: mean {statistics.mean(cpu):.1f} max {max(cpu):.1f}")
    print("published (test AUC / ACC):")
    for name, auc, acc in PUBLISHED:
        print(f"  {name}: {auc:.3f} / {acc:.3f}")


if __name__ == "__main__":
    main()
