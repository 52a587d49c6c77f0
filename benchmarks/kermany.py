"""Kermany chest X-rays: EfficientNet-Lite0 from ImageNet vs from scratch, official test split.

Validation is carved from train/ grouped by patient (10%); the official test/ split is used
once per run. Same config for both arms except ``model.pretrained``.

    flock /tmp/medlens-heavy.lock python benchmarks/kermany.py \
        --data ../shared/datasets/chest_xray_kermany_224 --out /tmp/bench-kermany --epochs 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _runs import describe, train_and_test

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "kermany_efficientnet_lite0.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train/ and test/")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-kermany"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arms", nargs="+", default=["imagenet", "scratch"])
    args = parser.parse_args()
    for arm in args.arms:
        overrides = {
            "data.source": str(args.data), "epochs": args.epochs,
            "model.image_size": args.image_size, "num_threads": args.threads,
            "model.pretrained": "imagenet" if arm == "imagenet" else False,
            "output_dir": str(args.out / arm),
        }  # fmt: skip
        row = train_and_test(CONFIG, **overrides)
        print(describe(f"efficientnet_lite0 {args.image_size}px {arm}, {args.epochs} epochs", row),
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
