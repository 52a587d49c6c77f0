"""Label-efficiency curve on PneumoniaMNIST: scratch CNN vs Lite0 probe vs Lite0 full FT.

    flock /tmp/medlens-laneC.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \
        python benchmarks/label_efficiency.py [--out bench-out/label_efficiency]

Points are resumable (rerun to continue). Prints one line per point; the curve, CSV and
report land in --out. CPU time is process time of the training of each point.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from medlens.pipeline.curve import MODES, label_efficiency, summarise

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "pneumoniamnist"
BASE = {
    "data": {"source": str((DATA / "pneumoniamnist.npz").resolve())},
    "batch_size": 64,
    "num_threads": 1,
}
LITE0 = {"model.name": "efficientnet_lite0", "model.image_size": 64}
MODE_SETTINGS = {
    "scratch": {**MODES["scratch"], "model.name": "simple_cnn", "model.image_size": 28,
                "epochs": 5, "optimizer.lr": 3e-3},
    "probe": {**MODES["probe"], **LITE0, "epochs": 30, "optimizer.lr": 1e-2},
    "full": {**MODES["full"], **LITE0, "epochs": 1, "optimizer.lr": 1e-3},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench-out/label_efficiency"))
    parser.add_argument("--fractions", default="1,5,10,25,100")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--modes", default="scratch,probe,full")
    parser.add_argument("--full-fractions", default="1,5,10", help="full FT is the costly one")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    config = args.out / "base.yaml"
    config.write_text(yaml.safe_dump(BASE))
    modes = {m: MODE_SETTINGS[m] for m in args.modes.split(",")}
    fractions = {
        m: [
            float(p) / 100
            for p in (args.full_fractions if m == "full" else args.fractions).split(",")
        ]
        for m in modes
    }
    seeds = [int(s) for s in args.seeds.split(",")]
    label_efficiency(
        config, args.out, fractions=fractions, seeds=seeds, modes=modes, n_bootstrap=500
    )
    points = json.loads((args.out / "curve.json").read_text())["points"]
    for mode, rows in summarise(points).items():
        for row in rows:
            print(
                f"{mode:8s} {row['fraction']:6.0%} AUC {row['auc']:.3f} ± {row['auc_sd']:.3f} "
                f"CI {row['ci_low']:.3f}-{row['ci_high']:.3f} CPU {row['cpu_s']:.1f} s per point"
            )


if __name__ == "__main__":
    main()
