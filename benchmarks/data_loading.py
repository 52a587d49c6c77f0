"""Images per second through ManifestDataset + DataLoader: cold (decode + preprocess) vs cached.

Datasets: the Kermany chest X-ray JPEGs (at 224 and 128 px) and the 20-slice CT DICOM series
(JPEG 2000, 512x512, each slice a 2D image, soft-tissue window). "cold" reads and preprocesses
every image (cache="none"); "cached" serves preprocessed tensors from the memory cache, once
plain and once with the "light" augmentation preset (what a training epoch pays). Each figure
is the median of 3 repeats; batches of 32 through a DataLoader (cold pass: --workers).

Usage (queue behind other heavy jobs on a shared machine):

    flock /tmp/medlens-heavy.lock python benchmarks/data_loading.py [--limit 600] [--workers 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from medlens.data import Manifest, ManifestDataset, Record, from_folder
from medlens.transforms import Augmentation, Preprocessing

DATASETS = Path(
    os.environ.get(
        "MEDLENS_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared/datasets"
    )
)


def images_per_second(
    dataset: ManifestDataset, workers: int, min_items: int, repeats: int = 3
) -> float:
    """Median over ``repeats`` of the rate of full passes totalling at least ``min_items``."""
    loader = DataLoader(dataset, batch_size=32, shuffle=False, num_workers=workers)
    passes = max(1, -(-min_items // len(dataset)))
    rates = []
    for _ in range(repeats):
        start, seen = time.perf_counter(), 0
        for epoch in range(passes):
            dataset.set_epoch(epoch)
            for images, _ in loader:
                seen += len(images)
        rates.append(seen / (time.perf_counter() - start))
    return statistics.median(rates)


def measure(name: str, manifest: Manifest, preprocessing: Preprocessing, workers: int) -> None:
    cold = ManifestDataset(manifest, preprocessing, cache="none")
    for index in range(min(3, len(cold))):  # warm up: imports, decoder set-up
        cold[index]
    cold_rate = images_per_second(cold, workers, min_items=1)
    cached = ManifestDataset(manifest, preprocessing, cache="memory")
    cached.preload()
    cached_rate = images_per_second(cached, 0, min_items=3000)
    augmented = ManifestDataset(
        manifest, preprocessing, cache="memory", augmentation=Augmentation.preset("light")
    )
    augmented._cache = cached._cache  # same preloaded tensors
    augmented_rate = images_per_second(augmented, 0, min_items=600)
    print(
        f"{name:<28} {len(manifest):>6} {cold_rate:>12.1f} {cached_rate:>12.1f} "
        f"{augmented_rate:>14.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=600, help="Kermany images to load")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (cold pass)")
    args = parser.parse_args()
    torch.set_num_threads(2)

    kermany = from_folder(DATASETS / "chest_xray_kermany_224").split("train")
    step = max(1, len(kermany) // args.limit)
    kermany = kermany.with_records(kermany.records[::step][: args.limit])
    series = sorted((DATASETS / "totalsegmentator_example" / "example_ct_dicom").iterdir())
    ct = Manifest(tuple(Record(str(p), "ct", "ct", "train") for p in series))

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; workers {args.workers}")
    print(f"{'dataset':<28} {'images':>6} {'cold img/s':>12} {'cached img/s':>12} "
          f"{'cached+aug img/s':>14}")  # fmt: skip
    measure("kermany 224 px", kermany, Preprocessing(spatial_size=(224, 224)), args.workers)
    measure("kermany 128 px", kermany, Preprocessing(spatial_size=(128, 128)), args.workers)
    measure(
        "CT DICOM series 256 px",
        ct,
        Preprocessing(spatial_size=(256, 256), window="soft"),
        args.workers,
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
