"""Kermany chest X-rays: EfficientNet-Lite0 from ImageNet vs from scratch, official test split.

Validation is carved from train/ grouped by patient (10%); the official test/ split is used
once per run. Same config for both arms except ``model.pretrained``.

    flock /tmp/medlens-heavy.lock python benchmarks/kermany.py \
        --data ../shared/datasets/chest_xray_kermany_224 --out /tmp/bench-kermany --epochs 2
    python benchmarks/kermany.py --config configs/kermany_efficientnet_lite0_224.yaml \
        --data ../shared/datasets/chest_xray_kermany_224 --out /tmp/bench-kermany224 --arms imagenet

Epochs, image size and threads default to the config's own.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _runs import describe, train_and_test

from medlens.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "kermany_efficientnet_lite0.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--data", type=Path, required=True, help="folder with train/ and test/")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-kermany"))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--arms", nargs="+", default=["imagenet", "scratch"])
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
