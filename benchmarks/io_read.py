"""Read throughput of medlens.io on the shared real datasets.

Usage: python benchmarks/io_read.py [--datasets ../shared/datasets] [--jpegs 1000] [--repeats 3]

Prints one line per case: what was read, how many, median wall time, and the rate.
Single process, no caching: this is the cost a data loader worker pays per item.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import medlens
from medlens.io import read_image, read_numpy, read_series


def timed(func: Callable[[], int], repeats: int) -> tuple[int, float]:
    """Run ``func`` (returns an item count) ``repeats`` times; median seconds."""
    times, count = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = func()
        times.append(time.perf_counter() - start)
    return count, statistics.median(times)


def report(name: str, unit: str, count: int, seconds: float) -> None:
    print(f"{name:<48} {count:>6} {unit:<7} {seconds:8.3f} s  {count / seconds:10.1f} {unit}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    parser.add_argument("--datasets", type=Path, default=default)
    parser.add_argument("--jpegs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root, repeats = args.datasets, args.repeats
    print(
        f"medlens {medlens.__version__}, Python {platform.python_version()}, {platform.machine()}"
    )

    jpegs = sorted((root / "chest_xray_kermany_224" / "train").glob("*/*.jpeg"))[: args.jpegs]
    report("Kermany 224x224 JPEG, read_image", "images", *timed(lambda: _read_all(jpegs), repeats))

    series = root / "totalsegmentator_example" / "example_ct_dicom"
    report(
        "CT series 20x512x512 J2K lossless, read_series",
        "slices",
        *timed(lambda: read_series(series).array.shape[0], repeats),
    )

    nifti = root / "totalsegmentator_example" / "example_ct.nii.gz"
    report(
        "CT NIfTI 122x101x112 int32 gz, read_image",
        "volumes",
        *timed(lambda: _count(read_image(nifti)), repeats),
    )

    hippo = sorted((root / "hippocampus_msd" / "imagesTr").glob("*.nii.gz"))[:100]
    report(
        "Hippocampus MRI NIfTI crops, read_image",
        "volumes",
        *timed(lambda: _read_all(hippo), repeats),
    )

    mnist = root / "pneumoniamnist" / "pneumoniamnist.npz"
    report(
        "PneumoniaMNIST 28x28, read_numpy(index=i)",
        "images",
        *timed(lambda: _read_mnist(mnist, 200), repeats),
    )

    _pydicom_cases(repeats)


def _pydicom_cases(repeats: int) -> None:
    from pydicom.data import get_testdata_file

    for name, label in [
        ("RG1_UNCR.dcm", "chest CR 1955x1841 uncompressed"),
        ("RG1_J2KR.dcm", "chest CR 1955x1841 J2K lossless"),
        ("emri_small_jpeg_ls_lossless.dcm", "MR 10x64x64 multi-frame JPEG-LS"),
    ]:
        path = get_testdata_file(name)
        if path is None:
            print(f"{label}: pydicom-data not installed, skipped")
            continue
        report(
            f"{label}, read_image", "images", *timed(lambda p=path: _count(read_image(p)), repeats)
        )


def _count(_image: object) -> int:
    return 1


def _read_all(paths: list[Path]) -> int:
    for path in paths:
        read_image(path)
    return len(paths)


def _read_mnist(path: Path, count: int) -> int:
    for index in range(count):
        read_numpy(path, key="train_images", index=index)
    return count


if __name__ == "__main__":
    main()
