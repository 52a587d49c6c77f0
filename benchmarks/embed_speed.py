"""Embedding throughput (images/s) of EfficientNet-Lite0 with its bundled ImageNet weights.

    flock /tmp/medlens-laneC.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \
        python benchmarks/embed_speed.py --data DATA --image-size 64 [--limit 2000]

Throughput is wall time of ``medlens.embeddings.embed`` (reading + preprocessing + model).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from medlens.embeddings import embed, encoder_from_model, read_data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--in-chans", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    args = parser.parse_args()
    manifest = read_data(args.data)
    if args.limit:
        manifest = manifest.with_records(list(manifest)[: args.limit])
    encoder = encoder_from_model(
        "efficientnet_lite0", in_chans=args.in_chans, image_size=args.image_size
    )
    with tempfile.TemporaryDirectory() as tmp:
        cpu = time.process_time()
        embeddings, stats = embed(encoder, manifest, Path(tmp) / "emb")
        cpu = time.process_time() - cpu
        print(
            f"{len(embeddings)} images at {args.image_size}px -> {embeddings.vectors.shape[1]}-d: "
            f"{stats['images_per_s']:.1f} images/s (wall {stats['seconds']:.1f} s, CPU {cpu:.1f} s)"
        )


if __name__ == "__main__":
    main()
