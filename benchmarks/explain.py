"""Explainability figures: speed, memory stability, and the two trust checks.

1. Milliseconds per heatmap at 224 px for ResNet-18 and DenseNet-121 (1 input channel,
   2 classes, input: a real Kermany chest X-ray), per method; median of ``--repeats``
   after one warm-up call (Score-CAM, occlusion: 1 call, no warm-up). Each call is a
   fresh ``explain()`` (hooks added and removed).
2. Resident memory (VmRSS) during 1,000 consecutive Grad-CAM explanations per model
   (``--memory-size`` px): after the first 50, then every 250; growth = last - first.
3. Model randomisation check (Adebayo et al. 2018) on real PneumoniaMNIST test X-rays:
   mean |Spearman rank correlation| between the maps of a briefly trained simple_cnn and of
   a randomly initialised twin (low = the map depends on what the model learned).
4. Localisation on synthetic lesions: share of heatmap peaks within radius + 2 px of the
   lesion centre.

Weights are random for (1) and (2): time and memory do not depend on their values.

Usage (queue behind other heavy jobs on a shared machine):

    flock /tmp/medlens-heavy.lock python benchmarks/explain.py [--n-memory 1000]

Lighter runs (each well under a minute of CPU), as recorded in docs/benchmarks/explain.md:

    python benchmarks/explain.py --sections timing --methods gradcam gradcam++ --repeats 5
    python benchmarks/explain.py --sections memory --models resnet18 --memory-size 64
    python benchmarks/explain.py --sections checks --n-check 32
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from medlens.explain import METHODS, Explainer, explain
from medlens.io import read_image
from medlens.models import create_model
from medlens.transforms.preprocess import Preprocessing

DATASETS = Path(
    os.environ.get(
        "MEDLENS_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared/datasets"
    )
)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def xray(size: int = 224) -> torch.Tensor:
    path = sorted((DATASETS / "chest_xray_kermany_224" / "test" / "PNEUMONIA").iterdir())[0]
    prep = Preprocessing(spatial_size=(size, size), mean="imagenet")
    return prep(read_image(path))[None]


def timing(models: list[str], methods: list[str], repeats: dict[str, int]) -> None:
    x = xray(224)
    print("\n## ms per heatmap, 224 px, 1 image")
    print("| model | method | median wall ms | median CPU ms | calls |")
    print("|---|---|---|---|---|")
    for name in models:
        torch.manual_seed(0)
        model = create_model(name, num_classes=2, in_chans=1).eval()
        for method in methods:
            calls = repeats.get(method, repeats["default"])
            if calls > 2:
                explain(model, x, method=method)  # warm-up (skipped for the slow methods)
            wall, cpu = [], []
            for _ in range(calls):
                start, start_cpu = time.perf_counter(), time.process_time()
                explain(model, x, method=method)
                wall.append(1000 * (time.perf_counter() - start))
                cpu.append(1000 * (time.process_time() - start_cpu))
            print(
                f"| {name} | {method} | {statistics.median(wall):.0f} | "
                f"{statistics.median(cpu):.0f} | {calls} |",
                flush=True,
            )


def memory(models: list[str], n: int, size: int) -> None:
    x = xray(size)
    print(f"\n## resident memory over {n} consecutive Grad-CAM explanations, {size} px (MiB)")
    print("| model | after 50 | checkpoints | last | growth |")
    print("|---|---|---|---|---|")
    for name in models:
        torch.manual_seed(0)
        model = create_model(name, num_classes=2, in_chans=1).eval()
        marks = []
        for i in range(1, n + 1):
            explain(model, x)
            if i == 50 or i % 250 == 0:
                marks.append(rss_mib())
        row = " / ".join(f"{m:.0f}" for m in marks)
        print(
            f"| {name} | {marks[0]:.0f} | {row} | {marks[-1]:.0f} | {marks[-1] - marks[0]:+.1f} |",
            flush=True,
        )


def train_binary(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int):
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=order).split(64):
            opt.zero_grad()
            logits = model(x[idx])[:, 0]
            torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx].float()).backward()
            opt.step()
    return model.eval()


def randomisation(n_images: int) -> None:
    from sklearn.metrics import roc_auc_score

    data = np.load(DATASETS / "pneumoniamnist" / "pneumoniamnist.npz")

    def scale(images: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(images[:, None].astype(np.float32)) / 255 - 0.5) / 0.5

    kwargs = {"num_classes": 1, "in_chans": 1, "image_size": 28, "batch_norm": True}
    torch.manual_seed(0)
    trained = create_model("simple_cnn", **kwargs)
    train_binary(
        trained, scale(data["train_images"]), torch.from_numpy(data["train_labels"][:, 0]), 3
    )
    torch.manual_seed(1)
    random = create_model("simple_cnn", **kwargs).eval()
    test = scale(data["test_images"])
    with torch.no_grad():
        auc = roc_auc_score(data["test_labels"][:, 0], trained(test)[:, 0].numpy())
    x = test[:n_images]
    print(
        f"\n## model randomisation check: simple_cnn (test AUC {auc:.3f}) vs a random twin, "
        f"{n_images} test X-rays"
    )
    print("| method | mean abs rank corr | max |")
    print("|---|---|---|")
    for method in METHODS:
        maps = []
        for model in (trained, random):
            with Explainer(model, method, occlusion_window=4) as explainer:
                maps.append(explainer(x, targets=1))
        pairs = zip(maps[0], maps[1], strict=True)
        rho = np.abs(np.nan_to_num([spearmanr(a.ravel(), b.ravel())[0] for a, b in pairs]))
        print(f"| {method} | {rho.mean():.3f} | {rho.max():.3f} |", flush=True)


def localisation(n_images: int) -> None:
    rng = np.random.default_rng(0)
    size, radius = 32, 3

    def lesions(n: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
        y = rng.integers(0, 2, n)
        centres = rng.integers(6, size - 6, (n, 2))
        rows, cols = np.mgrid[:size, :size]
        for i in np.flatnonzero(y):
            x[i, 0][(rows - centres[i, 0]) ** 2 + (cols - centres[i, 1]) ** 2 <= radius**2] += 2.0
        return torch.from_numpy(x), y, centres

    x, y, _ = lesions(384)
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=1, in_chans=1, image_size=size, batch_norm=True)
    train_binary(model, x, torch.from_numpy(y), 4)
    x, y, centres = lesions(2 * n_images)
    pos = np.flatnonzero(y)[:n_images]
    print(f"\n## localisation: {len(pos)} synthetic lesions (radius {radius} px, 32 px images)")
    print("| method | peak on lesion | median distance px |")
    print("|---|---|---|")
    for method in METHODS:
        with Explainer(model, method, occlusion_window=6) as explainer:
            maps = explainer(x[pos], targets=1)
        peaks = np.array([np.unravel_index(m.argmax(), m.shape) for m in maps])
        dist = np.hypot(*(peaks - centres[pos]).T)
        print(
            f"| {method} | {np.mean(dist <= radius + 2):.1%} | {np.median(dist):.1f} |", flush=True
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "densenet121"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--n-memory", type=int, default=1000)
    parser.add_argument("--memory-size", type=int, default=224, help="input side for the RSS run")
    parser.add_argument(
        "--sections", nargs="+", default=["timing", "memory", "checks"], help="what to run"
    )
    parser.add_argument("--n-check", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="1: best on a shared 2-core box")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# medlens explain benchmark: torch {torch.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {args.threads} threads"
    )
    slow = {"default": args.repeats, "scorecam": 1, "occlusion": 1}
    if "timing" in args.sections:
        timing(args.models, args.methods, slow)
    if "memory" in args.sections:
        memory(args.models, args.n_memory, args.memory_size)
    if "checks" in args.sections:
        randomisation(args.n_check)
        localisation(args.n_check)


if __name__ == "__main__":
    main()
