"""Kermany chest X-rays: EfficientNet-Lite0 from ImageNet vs from scratch, official test split.

Validation is carved from train/ grouped by patient (10%); the official test/ split is used
once per run. Same config for both arms except ``model.pretrained``.

    flock /tmp/medlens-heavy.lock python benchmarks/kermany.py \
        --data ../shared/datasets/chest_xray_kermany_224 --out /tmp/bench-kermany --epochs 2
    python benchmarks/kermany.py --config configs/kermany_efficientnet_lite0_224.yaml \
        --data ../shared/datasets/chest_xray_kermany_224 --out /tmp/bench-kermany224 --arms imagenet

Epochs, image size and threads default to the config's own. After each arm (or for a run
already evaluated, ``--analyse RUN_DIR``) it prints what other thresholds would have done on
test: an analysis of the shift, never a way to choose the threshold (that is validation's).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _runs import describe, split_predictions, train_and_test

from medlens.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "kermany_efficientnet_lite0.yaml"


def analyse_thresholds(run: Path, thresholds=(0.5, 0.7, 0.9)) -> str:
    """Test accuracy, sensitivity and specificity at other thresholds; negatives' quartiles."""
    y, p = split_predictions(run, "test")
    y = y.astype(bool)
    lines = [f"test analysis of {run} (not for selection):"]
    for t in thresholds:
        called = p >= t
        lines.append(f"  threshold {t:.2f}: ACC {np.mean(called == y):.3f} "
                     f"sens {called[y].mean():.3f} spec {(~called[~y]).mean():.3f}")  # fmt: skip
    q25, q50, q75 = np.percentile(p[~y], [25, 50, 75])
    lines.append(f"  negative cases' positive-class probability: quartiles "
                 f"{q25:.3f} / {q50:.3f} / {q75:.3f}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--data", type=Path, help="folder with train/ and test/")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-kermany"))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--arms", nargs="+", default=["imagenet", "scratch"])
    parser.add_argument("--analyse", type=Path, help="only analyse this evaluated run")
    args = parser.parse_args()
    if args.analyse:
        print(analyse_thresholds(args.analyse))
        return
    if args.data is None:
        parser.error("--data is required to train")
    for arm in args.arms:
        overrides = {
            "data.source": str(args.data),
            "model.pretrained": "imagenet" if arm == "imagenet" else False,
            "output_dir": str(args.out / arm),
        }
        optional = {"epochs": args.epochs, "model.image_size": args.image_size,
                    "num_threads": args.threads}  # fmt: skip
        overrides |= {key: value for key, value in optional.items() if value is not None}
        config = load_config(args.config, **overrides)
        row = train_and_test(args.config, **overrides)
        name = f"efficientnet_lite0 {config.model.image_size}px {arm}, {config.epochs} epochs"
        print(describe(name, row), flush=True)
        print(analyse_thresholds(Path(row["run"])), flush=True)


if __name__ == "__main__":
    main()
