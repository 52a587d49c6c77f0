"""Embedding throughput and parameter count of catalogue foundation backbones on this CPU.

    flock /tmp/medlens-laneC.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \
        python benchmarks/foundation.py --models dinov2_vits14,dinov2_vitb14,biomedclip \
        --image-size 224 --batch-size 16 --batches 4

The real architectures, **randomly initialised** (no weights can be downloaded here): speed
and size do not depend on the weights' values. Throughput is the model alone
(``forward_head(forward_features(x), pre_logits=True)`` under ``inference_mode``) on random
preprocessed batches, after one warm-up batch; no image reading. Prints one line per model.
"""

from __future__ import annotations

import argparse
import time

import torch

from medlens.embeddings import embed_tensors
from medlens.models import create_model


def measure(name: str, image_size: int, batch_size: int, batches: int, in_chans: int) -> dict:
    """Parameters (backbone, total) and images/s for ``name`` at ``image_size``."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=2, in_chans=in_chans, image_size=image_size).eval()
    backbone = sum(p.numel() for p in model.backbone.parameters())
    x = torch.randn(batch_size, in_chans, image_size, image_size)
    embed_tensors(model, x)  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        dim = embed_tensors(model, x).shape[1]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    images = batch_size * batches
    return {
        "model": name, "params_backbone": backbone, "dim": dim, "images": images,
        "images_per_s": images / wall, "cpu_s_per_image": cpu / images,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="dinov2_vits14,dinov2_vitb14,biomedclip")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--in-chans", type=int, default=1)
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}, {args.image_size} px, batch {args.batch_size}")
    for name in args.models.split(","):
        r = measure(name, args.image_size, args.batch_size, args.batches, args.in_chans)
        print(
            f"{r['model']}: {r['params_backbone'] / 1e6:.1f} M backbone parameters, "
            f"{r['dim']}-d, {r['images_per_s']:.2f} images/s over {r['images']} images "
            f"({r['cpu_s_per_image']:.2f} CPU s per image)",
            flush=True,
        )


if __name__ == "__main__":
    main()
