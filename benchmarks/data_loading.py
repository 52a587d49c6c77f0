"""Images per second through the training data path: cold (decode + preprocess) vs cached.

The path ``medlens train`` takes (medlens.training.data): ``preprocess_split`` reads and
preprocesses a split once (4 reader threads) into float16 tensors; ``CachedDataset`` then
serves them through a DataLoader, once plain and once with the "light" augmentation preset
(what a training epoch pays). Datasets: the Kermany chest X-ray JPEGs (at 224 and 128 px) and
the 20-slice CT DICOM series (JPEG 2000, 512x512, each slice a 2D image, soft-tissue window).
Each figure is the median of 3 repeats; batches of 32 (--workers loader workers).

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

from medlens.data import Manifest, Record, from_folder
from medlens.training.data import CachedDataset, preprocess_split
from medlens.transforms import Augmentation, Preprocessing

DATASETS = Path(
    os.environ.get(
        "MEDLENS_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared/datasets"
    )
)


def images_per_second(
    dataset: CachedDataset, workers: int, min_items: int, repeats: int = 3
) -> tuple[float, float]:
    """Medians over ``repeats`` of images per wall-clock second and per CPU second of this
    process (the second barely moves when other jobs share the cores; without workers only)."""
    loader = DataLoader(dataset, batch_size=32, shuffle=False, num_workers=workers)
    passes = max(1, -(-min_items // len(dataset)))
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu, seen = time.perf_counter(), time.process_time(), 0
        for epoch in range(passes):
            dataset.set_epoch(epoch)
            for images, _ in loader:
                seen += len(images)
        wall.append(seen / (time.perf_counter() - start))
        cpu.append(seen / (time.process_time() - start_cpu))
    return statistics.median(wall), statistics.median(cpu)


def cold_rate(
    manifest: Manifest, preprocessing: Preprocessing, repeats: int = 3
) -> tuple[float, float]:
    """Images per second of ``preprocess_split`` (read + preprocess every image once)."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        inputs, _ = preprocess_split(manifest, preprocessing, "multiclass")
        wall.append(len(inputs) / (time.perf_counter() - start))
        cpu.append(len(inputs) / (time.process_time() - start_cpu))
    return statistics.median(wall), statistics.median(cpu)


def measure(name: str, manifest: Manifest, preprocessing: Preprocessing, workers: int) -> None:
    preprocess_split(manifest.with_records(manifest.records[:32]), preprocessing, "multiclass")
    cold_rates = cold_rate(manifest, preprocessing)  # after a warm-up: imports, decoders
    inputs, targets = preprocess_split(manifest, preprocessing, "multiclass")
    cached_rates = images_per_second(CachedDataset(inputs, targets), workers, min_items=3000)
    light = Augmentation.preset("light")
    augmented_rates = images_per_second(CachedDataset(inputs, targets, light), workers, 600)
    cells = [
        _cell(cold_rates),
        _cell(cached_rates, workers == 0),
        _cell(augmented_rates, workers == 0),
    ]
    print(f"{name:<24} {len(manifest):>6} " + " ".join(cells))


def _cell(rates: tuple[float, float], cpu: bool = True) -> str:
    return f"{rates[0]:>8.0f} / {rates[1] if cpu else float('nan'):>6.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=600, help="Kermany images to load")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (cached passes)")
    args = parser.parse_args()
    torch.set_num_threads(2)

    kermany = from_folder(DATASETS / "chest_xray_kermany_224").split("train")
    step = max(1, len(kermany) // args.limit)
    kermany = kermany.with_records(kermany.records[::step][: args.limit])
    series = sorted((DATASETS / "totalsegmentator_example" / "example_ct_dicom").iterdir())
    ct = Manifest(tuple(Record(str(p), "ct", "ct", "train") for p in series))

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; workers {args.workers}")
    print("images/s per wall-clock second / per CPU second of the main process")
    print(f"{'dataset':<24} {'images':>6} {'cold':>17} {'cached':>17} {'cached+light aug':>17}")
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
