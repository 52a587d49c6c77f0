"""CORAL vs cumulative-link vs plain cross-entropy on a synthetic grade set, 3 seeds.

No ordinal dataset is in ``../shared/datasets``, so the grades are synthetic: 28 px images
with a bright disc whose radius grows with the grade (5 grades), under heavy noise and a
random radius jitter, so neighbouring grades overlap. Each run trains ``simple_cnn`` through
``medlens.pipeline.train_run`` and is evaluated on its test split (QWK, MAE, accuracy with
the card's decision rule; the argmax QWK beside it). CPU time is process time.

    flock /tmp/medlens-laneC.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        PYTHONPATH=src python benchmarks/ordinal.py --out /tmp/ordinal-bench
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from medlens.config import parse_config
from medlens.pipeline import evaluate_run, train_run

GRADES = ("none", "minimal", "mild", "moderate", "severe")


def make_grades(root: Path, per_grade: int = 120, size: int = 28, seed: int = 0) -> Path:
    """``root/<grade>/*.png``: a disc of radius ``3 + 1.6 * grade`` (+/- 1.2) under noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for grade, name in enumerate(GRADES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_grade):
            radius = 3 + 1.6 * grade + rng.uniform(-1.2, 1.2)
            cy, cx = rng.uniform(size / 2 - 3, size / 2 + 3, 2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            pixels = rng.normal(70, 35, (size, size)) + 60 * disc
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                root / name / f"case{grade}_{i}.png"
            )
    return root


def run_one(data: Path, out: Path, loss: str, seed: int) -> dict[str, float]:
    config = parse_config({
        "data": {"source": str(data), "classes": list(GRADES), "val_fraction": 0.2,
                 "test_fraction": 0.2, "group_by_patient": False},
        "task": "ordinal",
        "loss": {"name": loss},
        "model": {"name": "simple_cnn", "image_size": 28},
        "epochs": 8,
        "batch_size": 32,
        "seed": seed,
        "num_threads": 1,
        "output_dir": str(out / f"{loss}-seed{seed}"),
    })  # fmt: skip
    cpu = time.process_time()
    run = train_run(config)
    train_cpu = time.process_time() - cpu
    metrics = json.loads(
        (evaluate_run(run, split="test", n_bootstrap=0) / "metrics.json").read_text()
    )
    card = json.loads((run / "model.json").read_text())["ordinal"]
    figures = metrics["ordinal"]["metrics"]
    return {
        "qwk": figures["qwk"]["value"],
        "mae": figures["mae"]["value"],
        "accuracy": figures["accuracy"]["value"],
        "decision": card["decision"],
        "val_qwk": card["qwk"],
        "val_qwk_argmax": card["qwk_argmax"],
        "train_cpu_s": train_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--losses", nargs="+", default=["ce", "coral", "cumulative_link"])
    args = parser.parse_args()
    data = make_grades(args.out / "data")
    rows = {loss: [run_one(data, args.out, loss, s) for s in args.seeds] for loss in args.losses}
    print(
        "| loss | test QWK | test MAE | test accuracy | val QWK (chosen) | val QWK (argmax) "
        "| decisions | train CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for loss, results in rows.items():

        def stat(key: str, results=results) -> str:
            values = [r[key] for r in results]
            return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"

        decisions = ", ".join(r["decision"] for r in results)
        print(
            f"| {loss} | {stat('qwk')} | {stat('mae')} | {stat('accuracy')} | {stat('val_qwk')} "
            f"| {stat('val_qwk_argmax')} | {decisions} | {stat('train_cpu_s')} |"
        )
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
