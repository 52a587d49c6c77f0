"""Hippocampus (MSD Task04) segmentation benchmark: fixed seeded 80/20 split, train, evaluate.

    flock /tmp/medlens-heavy.lock python benchmarks/segmentation.py --out /tmp/seg-bench
    python benchmarks/segmentation.py --out /tmp/seg-split --split-only   # the split only

Prints the case lists, the plan, training CPU/wall time, and mean Dice and HD95 per structure
(anterior, posterior) on the 20% test cases with bootstrap CIs.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from medlens.config import parse_config
from medlens.data import from_decathlon
from medlens.pipeline import evaluate_run
from medlens.tasks.run import train_run

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hippocampus_msd"


def write_split(out: Path, seed: int, val_cases: int) -> Path:
    """80/20 train/test by case (seeded); ``val_cases`` of the 80% pick the best epoch."""
    manifest = from_decathlon(DATA)
    order = np.random.default_rng(seed).permutation(len(manifest))
    n_test = round(0.2 * len(manifest))
    split = {int(i): "test" for i in order[:n_test]}
    split |= {int(i): "val" for i in order[n_test : n_test + val_cases]}
    records = [
        r.__class__(r.path, r.label, r.patient_id, split.get(i, "train"), r.label_path)
        for i, r in enumerate(manifest.records)
    ]
    path = out / "split" / "manifest.csv"
    manifest.with_records(records).write(path)
    for name in ("train", "val", "test"):
        cases = sorted(r.patient_id for r in records if r.split == name)
        print(f"{name} ({len(cases)}): {' '.join(c.removeprefix('hippocampus_') for c in cases)}")
    return path


def print_per_class(metrics: dict) -> None:
    """Mean Dice and HD95 per structure with their CIs, from segmentation metrics."""
    for name, entry in metrics["per_class"].items():
        d, h = entry["dice"], entry["hd95"]
        print(
            f"{name:>10}: Dice {d['value']:.3f} ({d['ci_low']:.3f}-{d['ci_high']:.3f}), "
            f"HD95 {h['value']:.2f} mm ({h['ci_low']:.2f}-{h['ci_high']:.2f}), "
            f"HD95 undefined in {entry['hd95_undefined_cases']} cases"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("/tmp/seg-bench"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--base-filters", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.003, help="AdamW peak LR (cosine decay)")
    parser.add_argument("--val-every", type=int, default=0, help="epochs; 0: a third of them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-only", action="store_true", help="write the split and stop")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = write_split(args.out, args.seed, val_cases=16)
    if args.split_only:
        return
    config = parse_config(
        {
            "data": {"manifest": str(manifest)},
            "task": "segmentation",
            "epochs": args.epochs,
            "optimizer": {"name": "adamw", "lr": args.lr, "weight_decay": 3e-5},
            "schedule": {"name": "cosine", "warmup_epochs": 0.5},
            "seed": args.seed,
            "output_dir": str(args.out / "run"),
            "segmentation": {
                "class_names": ["background", "anterior", "posterior"],
                "iterations_per_epoch": args.iterations,
                "val_every": args.val_every or max(1, args.epochs // 3),
                "base_filters": args.base_filters,
                "plan": {"batch_size": args.batch_size},
            },
        }
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run = train_run(config)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"plan: {(run / 'plan.json').read_text()}")
    print(f"training: {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU ({args.threads} threads)")
    out = evaluate_run(run, split="test", n_bootstrap=1000)
    metrics = json.loads((out / "metrics.json").read_text())
    print_per_class(metrics)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"test cases: {metrics['n_cases']}; peak RSS {peak:.0f} MB; {platform.processor()}")


if __name__ == "__main__":
    main()
