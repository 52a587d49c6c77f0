"""Label-efficiency curves: scratch CNN vs Lite0 probe vs Lite0 LoRA vs Lite0 full FT (LLRD).

    flock /tmp/medlens-laneD.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \
        python benchmarks/label_efficiency.py [--data pneumoniamnist|kermany] [--out DIR]

Points are resumable (rerun to continue). Prints one line per (mode, fraction); the curve,
CSV and report land in --out. CPU time is process time of the training of each point.
LoRA and full fine-tuning train for more epochs at small label fractions (``EPOCHS``:
about the same number of optimiser steps is out of reach on this CPU, so a floor of steps).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from medlens.pipeline.curve import MODES, label_efficiency, summarise

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
DATA = {
    "pneumoniamnist": {"source": str((SHARED / "pneumoniamnist" / "pneumoniamnist.npz").resolve())},
    # Kermany ships no validation split: 10 % of train, grouped by patient
    "kermany": {"source": str((SHARED / "chest_xray_kermany_224").resolve()), "val_fraction": 0.1},
}
LITE0 = {"model.name": "efficientnet_lite0", "model.image_size": 64}
#: epochs of the fine-tuning modes per label fraction (few labels: more passes, still cheap)
EPOCHS = {0.01: 6, 0.05: 3, 0.1: 2, 0.25: 1, 1.0: 1}


def mode_settings(scratch_size: int) -> dict[str, dict]:
    return {
        "scratch": {**MODES["scratch"], "model.name": "simple_cnn",
                    "model.image_size": scratch_size, "epochs": 5, "optimizer.lr": 3e-3},
        "probe": {**MODES["probe"], **LITE0, "epochs": 30, "optimizer.lr": 1e-2},
        "lora": {**MODES["lora"], **LITE0, "optimizer.lr": 3e-3, "adaptation.lora.r": 8},
        "full": {**MODES["full"], **LITE0, "optimizer.lr": 1e-3},  # layer_decay 0.75
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=sorted(DATA), default="pneumoniamnist")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--fractions", default="1,5,10,25,100")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--modes", default="scratch,probe,lora,full")
    parser.add_argument("--image-size", type=int, default=64, help="Lite0 input side")
    args = parser.parse_args()
    out = args.out or Path("bench-out") / f"label_efficiency_{args.data}"
    out.mkdir(parents=True, exist_ok=True)
    config = out / "base.yaml"
    base = {"data": DATA[args.data], "batch_size": 32, "num_threads": 1}
    config.write_text(yaml.safe_dump(base))
    settings = mode_settings(28 if args.data == "pneumoniamnist" else args.image_size)
    for mode in ("probe", "lora", "full"):
        settings[mode]["model.image_size"] = args.image_size
    modes = {m: settings[m] for m in args.modes.split(",")}
    fractions = [float(p) / 100 for p in args.fractions.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    for fraction in fractions:  # one pass per fraction: the epochs depend on it
        per_fraction = {
            m: {**o, "epochs": EPOCHS.get(fraction, 1)} if m in ("lora", "full") else o
            for m, o in modes.items()
        }  # fmt: skip
        label_efficiency(
            config, out, fractions=[fraction], seeds=seeds, modes=per_fraction, n_bootstrap=500
        )
    # every point is done: this pass reads them back and writes the whole curve
    label_efficiency(config, out, fractions=fractions, seeds=seeds, modes=modes, n_bootstrap=500)
    points = json.loads((out / "curve.json").read_text())["points"]
    for mode, rows in summarise(points).items():
        for row in rows:
            print(
                f"{mode:8s} {row['fraction']:6.0%} AUC {row['auc']:.3f} ± {row['auc_sd']:.3f} "
                f"CI {row['ci_low']:.3f}-{row['ci_high']:.3f} CPU {row['cpu_s']:.1f} s per point"
            )


if __name__ == "__main__":
    main()
