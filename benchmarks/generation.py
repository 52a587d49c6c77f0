"""Generators on PneumoniaMNIST 28 px: training and sampling speed, peak RSS, augmentation.

    flock /tmp/medlens-laneA.lock env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \
        python benchmarks/generation.py train --method dcgan --epochs 20 --out bench-out/gen

    ... python benchmarks/generation.py augment --generator bench-out/gen/dcgan \
        --out bench-out/gen-aug --fractions 5,10,100 --seeds 0,1,2 --synthetic-fraction 1.0

``train`` prints images/s of training (process CPU time and wall time), images/s of
sampling (256 images of each class) and the peak RSS of the process. ``augment`` trains a
simple_cnn on ``train_fraction`` of the real training labels, real-only and with synthetic
images mixed into training (``data.augment_with``), and prints the test AUC of each; the
synthetic images are generated once per seed into the classifier's run directory.
Every point is skipped when its run already exists (rerun to continue).

``grid`` tiles the first 32 images per class of a ``samples`` folder (or of the real training
split, ``--samples real``) into the PNGs of docs/benchmarks/img. ``sampler-check`` draws the
same noise of an LDM run through DDIM with and without the clip on the predicted clean latent
and through DDPM (all timesteps), and prints the SD of the final latents (training latents: 1).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medlens.config import parse_config
from medlens.generation import generate, load_generator, sample
from medlens.generation.sample import _denoise, item_noise
from medlens.pipeline import evaluate_run
from medlens.tasks import train_run

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "pneumoniamnist"
NPZ = str((DATA / "pneumoniamnist.npz").resolve())
GEN_SETTINGS: dict[str, dict[str, Any]] = {
    "dcgan": {"schedule": {"name": "constant"}},
    "wgan_gp": {"schedule": {"name": "constant"}},
    "ldm": {"schedule": {"name": "cosine"}},
}
CLASSIFIER = {
    "task": "binary",
    "model": {"name": "simple_cnn", "image_size": 28},
    "optimizer": {"lr": 3e-3},
    "epochs": 5,
    "batch_size": 64,
    "num_threads": 1,
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_generator(args: argparse.Namespace) -> None:
    out = args.out / args.method
    generation = {"method": args.method, "sampler_steps": args.steps}
    if args.method == "ldm":
        generation["autoencoder_epochs"] = args.ae_epochs or max(1, args.epochs // 3)
    config = parse_config({
        "data": {"source": NPZ}, "task": "generation", "generation": generation,
        "model": {"image_size": 28}, "epochs": args.epochs, "batch_size": 64,
        "num_threads": 1, "seed": args.seed, "output_dir": str(out),
        **GEN_SETTINGS[args.method],
    })  # fmt: skip
    if not (out / "model.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        wall, cpu = time.perf_counter(), time.process_time()
        train_run(config)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        images = 4708 * args.epochs  # PneumoniaMNIST's official training split
        print(
            f"{args.method} train: {args.epochs} epochs, {cpu / 60:.1f} CPU-min, "
            f"{images / wall:.1f} images/s (wall), {images / cpu:.1f} images/s (CPU)"
        )
    model, card = load_generator(out)
    torch.set_num_threads(1)
    for label, name in enumerate(card.classes):
        wall = time.perf_counter()
        sample(model, card, label, args.sample_n, seed=0)
        rate = args.sample_n / (time.perf_counter() - wall)
        print(f"{args.method} sample '{name}': {rate:.1f} images/s ({card.generation.sampler})")
    print(f"{args.method} peak RSS: {peak_rss_mib():.0f} MiB")


ARMS = {  # name: (run suffix, epochs factor, synthetic source)
    "real": ("real", 1, None),
    "real+synthetic": ("aug", 1, "full"),  # generator trained on all real training labels
    "real-2x-epochs": ("real2x", 2, None),  # as many optimiser steps as real+synthetic (F=1)
    "real+synthetic-subset-gen": ("augsub", 1, "subset"),  # generator saw only the subset
}


def augment(args: argparse.Namespace) -> None:
    rows = []
    arms = args.arms.split(",")
    for fraction in [float(f) / 100 for f in args.fractions.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for arm in arms:
                rows.append(_point(args, fraction, seed, arm))
                print(json.dumps(rows[-1]), flush=True)
    name = "augment.json" if args.arms == "real,real+synthetic" else f"augment-{len(arms)}.json"
    (args.out / name).write_text(json.dumps(rows, indent=2))
    for fraction in sorted({r["train_fraction"] for r in rows}):
        for arm in arms:
            aucs = [
                r["test_auc"] for r in rows if r["train_fraction"] == fraction and r["arm"] == arm
            ]
            mean = sum(aucs) / len(aucs)
            sd = (sum((a - mean) ** 2 for a in aucs) / max(len(aucs) - 1, 1)) ** 0.5
            print(f"{fraction:>5.0%} {arm:>15}: test AUC {mean:.3f} ± {sd:.3f} (n={len(aucs)})")


def _point(args: argparse.Namespace, fraction: float, seed: int, arm: str) -> dict[str, Any]:
    suffix, factor, source = ARMS[arm]
    run = args.out / f"f{fraction:g}-s{seed}-{suffix}"
    cpu = time.process_time()
    data: dict[str, Any] = {"source": NPZ, "train_fraction": fraction}
    if source is not None:
        generator = args.generator if source == "full" else _subset_generator(args, fraction, seed)
        data |= {"augment_with": str(generator), "synthetic_fraction": args.synthetic_fraction}
    epochs = CLASSIFIER["epochs"] * factor
    config = parse_config(
        {**CLASSIFIER, "epochs": epochs, "data": data, "seed": seed, "output_dir": str(run)}
    )
    if not (run / "model.json").is_file():
        shutil.rmtree(run, ignore_errors=True)
        train_run(config)
    if not (run / "eval" / "test" / "metrics.json").is_file():
        evaluate_run(run, split="test", n_bootstrap=0, examples=0)
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())["metrics"]
    card = json.loads((run / "model.json").read_text())
    synthetic = (card.get("synthetic_data") or {}).get("train_counts")
    return {
        "train_fraction": fraction, "seed": seed, "arm": arm,
        "test_auc": metrics["roc_auc"]["value"], "synthetic_train": synthetic,
        "cpu_s": round(time.process_time() - cpu, 1),
    }  # fmt: skip


def _subset_generator(args: argparse.Namespace, fraction: float, seed: int) -> Path:
    """A DCGAN trained on the same labelled subset as the classifier (same seed, same rows),
    for about ``args.subset_steps`` optimiser steps."""
    run = args.out / f"gen-f{fraction:g}-s{seed}"
    if (run / "model.json").is_file():
        return run
    shutil.rmtree(run, ignore_errors=True)
    steps_per_epoch = max(1, int(4708 * fraction) // 64)
    config = parse_config({
        "data": {"source": NPZ, "train_fraction": fraction}, "task": "generation",
        "generation": {"method": "dcgan"}, "model": {"image_size": 28}, "num_threads": 1,
        "epochs": max(1, args.subset_steps // steps_per_epoch), "batch_size": 64,
        "seed": seed, "output_dir": str(run), **GEN_SETTINGS["dcgan"],
    })  # fmt: skip
    return train_run(config)


def write_samples(args: argparse.Namespace) -> None:
    """``n`` images per class with ``medlens generate``'s API, then ``READY``."""
    _, card = load_generator(args.generator)
    for name in card.classes:
        wall = time.perf_counter()
        generate(args.generator, args.n, name, args.out, seed=args.seed, steps=args.steps)
        print(f"{name}: {args.n / (time.perf_counter() - wall):.1f} images/s written")
    (args.out / "READY").touch()


def write_grid(args: argparse.Namespace) -> None:
    """The first 32 images per class, 16 a row, 2x: rows 1-2 class 0, rows 3-4 class 1."""
    from PIL import Image

    if str(args.samples) == "real":
        with np.load(NPZ) as data:
            images, labels = data["train_images"], data["train_labels"].ravel()
        tiles = [image for c in (0, 1) for image in images[labels == c][:32]]
    else:
        tiles = [
            np.asarray(Image.open(path).convert("L"))
            for name in ("normal", "pneumonia")
            for path in sorted((args.samples / name).glob("*.png"))[:32]
        ]
    _save_tiles(tiles, args.out)


def _save_tiles(tiles: list[np.ndarray], out: Path, per_row: int = 16) -> None:
    from PIL import Image

    grid = np.concatenate(
        [np.concatenate(tiles[i : i + per_row], axis=1) for i in range(0, len(tiles), per_row)]
    )
    picture = Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST)
    picture.save(out)


@torch.no_grad()
def sampler_check(args: argparse.Namespace) -> None:
    """Final-latent SD and a grid (a row per sampler and class) for the same starting noise."""
    torch.set_num_threads(1)
    model, card = load_generator(args.generator)
    base = card.generation.sampler
    samplers = {
        f"DDIM {args.steps}, no clip": {**base, "name": "ddim", "clip": None},
        f"DDIM {args.steps}, clip 4": {**base, "name": "ddim", "clip": 4.0},
        f"DDPM {base['timesteps']}, no clip": {**base, "name": "ddpm", "clip": None},
    }
    side = model.latent_size
    tiles = []
    for name, sampler in samplers.items():
        for label, class_name in enumerate(card.classes):
            noise = torch.stack([
                item_noise((model.latent_channels, side, side), 0, label, i) for i in range(args.n)
            ])  # fmt: skip
            cpu = time.process_time()
            labels = torch.full((args.n,), label)
            latents = _denoise(model, noise, labels, sampler, args.steps, 0)
            images = ((model.decode(latents).float() + 1) / 2).clamp(0, 1)
            print(f"{name:>20} {class_name:>10}: final latent SD {float(latents.std()):.2f} "
                  f"({time.process_time() - cpu:.1f} CPU-s)")  # fmt: skip
            tiles += [(image[0].numpy() * 255).round().astype(np.uint8) for image in images]
    _save_tiles(tiles, args.out, per_row=args.n)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train")
    train.add_argument("--method", choices=("dcgan", "wgan_gp", "ldm"), required=True)
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--ae-epochs", type=int, default=None)
    train.add_argument("--steps", type=int, default=50, help="DDIM steps (ldm)")
    train.add_argument("--sample-n", type=int, default=256)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=Path("bench-out/generation"))
    aug = sub.add_parser("augment")
    aug.add_argument("--generator", type=Path, required=True)
    aug.add_argument("--fractions", default="5,10,100")
    aug.add_argument("--seeds", default="0,1,2")
    aug.add_argument("--synthetic-fraction", type=float, default=1.0)
    aug.add_argument("--arms", default="real,real+synthetic", help=", ".join(ARMS))
    aug.add_argument("--subset-steps", type=int, default=300)
    aug.add_argument("--out", type=Path, default=Path("bench-out/generation-augment"))
    samples = sub.add_parser("samples")
    samples.add_argument("--generator", type=Path, required=True)
    samples.add_argument("--n", type=int, default=2000)
    samples.add_argument("--steps", type=int, default=None)
    samples.add_argument("--seed", type=int, default=0)
    samples.add_argument("--out", type=Path, required=True)
    grid = sub.add_parser("grid")
    grid.add_argument("--samples", type=Path, required=True, help="a samples folder, or 'real'")
    grid.add_argument("--out", type=Path, required=True, help="the PNG to write")
    check = sub.add_parser("sampler-check")
    check.add_argument("--generator", type=Path, required=True, help="an ldm run")
    check.add_argument("--n", type=int, default=16, help="images per class and sampler")
    check.add_argument("--steps", type=int, default=50, help="DDIM steps")
    check.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args()
    folder = args.out.parent if args.command in ("grid", "sampler-check") else args.out
    folder.mkdir(parents=True, exist_ok=True)
    commands = {"train": train_generator, "augment": augment, "samples": write_samples,
                "grid": write_grid, "sampler-check": sampler_check}  # fmt: skip
    commands[args.command](args)


if __name__ == "__main__":
    main()
