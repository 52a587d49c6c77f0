"""Generation metrics on PneumoniaMNIST: FID/KID/precision/recall per class, MS-SSIM
diversity, memorisation rate and TSTR AUC, for synthetic images and for reference sets.

References (``--references``), each against the real TEST split, memorisation against TRAIN:

* ``real val``: fresh real images (the floor of every distance; the memorisation rate of
  images that were never memorised);
* ``train copies``: training images themselves, a perfect memoriser;
* ``blurred val``: real images, Gaussian-blurred (sigma 1 px at 28 px): close in pixels,
  poor in detail;
* ``uniform noise``: the ceiling.

With ``--tstr``: TSTR AUC for each synthetic folder and for ``train copies`` (real training
images at the synthetic count: what that many real images give), and the train-on-real
baseline on the whole training split (trained once, shared).

Every sample set is drawn with the class counts of the validation split (seeded), so FIDs
(biased by ``n``) compare within a table. A synthetic folder (class sub-folders of PNGs,
``medlens generate`` output) with more images per class is subsampled to those counts.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 flock /tmp/medlens-laneB.lock \\
      python benchmarks/generation_metrics.py --real PATH/pneumoniamnist.npz --references \\
        [--synthetic FOLDER] [--features lite0@128] [--tstr] --out /tmp/geneval

Features of each set are cached in ``--cache`` (keyed by extractor and array bytes).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens.evaluation import generative as gen
from medlens.evaluation.generative_features import CachedFeatures
from medlens.evaluation.generative_report import write_generation_report

CLASSES = ("normal", "pneumonia")


def load_split(data: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    images = data[f"{split}_images"].astype(np.float32)[:, None] / 255.0
    return images, data[f"{split}_labels"].reshape(-1).astype(np.int64)


def match_counts(
    x: np.ndarray, y: np.ndarray, counts: dict[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, bool]:
    """At most ``counts[c]`` images of each class (seeded); True when every count was met."""
    picks, complete = [], True
    for c, n in counts.items():
        rows = np.flatnonzero(y == c)
        complete &= len(rows) >= n
        picks.append(np.sort(rng.choice(rows, min(n, len(rows)), replace=False)))
    index = np.concatenate(picks)
    return x[index], y[index], complete


def references(
    train: tuple, val: tuple, counts: dict[int, int], seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    copies = match_counts(*train, counts, rng)[:2]
    blurred = np.stack([gaussian_filter(im, sigma=(0, 1.0, 1.0)) for im in val[0]])
    noise = rng.random(val[0].shape).astype(np.float32)
    return {
        "real val": val,
        "train copies": copies,
        "blurred val": (np.clip(blurred, 0, 1).astype(np.float32), val[1]),
        "uniform noise": (noise, val[1]),
    }


def synthetic_set(
    folder: Path, counts: dict[int, int], seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    x, y, names = gen.read_image_folder(folder, classes=CLASSES)
    found = {CLASSES[c]: int((y == c).sum()) for c in counts}
    x, y, complete = match_counts(x, y, counts, np.random.default_rng(seed))
    info: dict[str, Any] = {"folder": str(folder), "found": found, "matched": complete}
    provenance = folder / "provenance.json"
    if provenance.is_file():
        info["provenance"] = json.loads(provenance.read_text())
    return x, y, info


def row(name: str, group: str, entry: dict[str, Any]) -> str:
    def f(value: Any, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    kid = entry["kid"]
    kid_text = "n/a" if kid is None else f"{kid['mean']:.4f} ± {kid['std']:.4f}"
    ms, ms_real = entry["ms_ssim"], entry["ms_ssim_real"]
    memo = entry["memorisation_rate"]
    return (
        f"| {name} | {group} | {entry['n_fake']} / {entry['n_real']} | {f(entry['fid'], 2)} | "
        f"{kid_text} | {f(entry['precision'])} | {f(entry['recall'])} | "
        f"{f(ms and ms['mean'])} | {f(ms_real and ms_real['mean'])} | "
        f"{'n/a' if memo is None else f'{100 * memo:.1f}%'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, required=True, help="PneumoniaMNIST .npz")
    parser.add_argument(
        "--synthetic",
        type=Path,
        action="append",
        default=[],
        help="folder of class sub-folders of PNGs (repeatable)",
    )
    parser.add_argument("--references", action="store_true", help="run the reference sets")
    parser.add_argument("--features", default="lite0@128", help="lite0[@SIZE] | run:PATH | ...")
    parser.add_argument("--tstr", action="store_true", help="train-on-synthetic AUC too")
    parser.add_argument("--tstr-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/geneval"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/geneval-cache"))
    args = parser.parse_args()

    start = time.perf_counter()
    with np.load(args.real) as data:
        train, val, test = (load_split(data, s) for s in ("train", "val", "test"))
    counts = {c: int((val[1] == c).sum()) for c in range(len(CLASSES))}
    extract = CachedFeatures(gen.feature_extractor(args.features), args.cache)
    features = {"real": extract(test[0]), "train": extract(train[0])}
    sets: dict[str, tuple] = {}
    info: dict[str, dict] = {}
    if args.references:
        sets.update(references(train, val, counts, args.seed))
    for folder in args.synthetic:
        x, y, info[folder.name] = synthetic_set(folder, counts, args.seed)
        sets[folder.name] = (x, y)
    print(f"features {extract.name}; samples drawn with the val split's class counts {counts}")
    print(
        "| set | class | samples / real | FID | KID | precision | recall | MS-SSIM "
        "samples | MS-SSIM real | memorised |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    summary = {}
    for name, (x, y) in sets.items():
        metrics = gen.generation_metrics(
            test[0],
            test[1],
            x,
            y,
            extractor=extract,
            classes=CLASSES,
            train=train[0],
            train_labels=train[1],
            seed=args.seed,
            features={**features, "fake": extract(x)},
        )
        tstr = None
        if args.tstr and (name in info or name == "train copies"):
            tstr = gen.tstr_auc(
                x,
                y,
                args.real,
                args.out / "tstr" / _slug(name),
                seed=args.seed,
                epochs=args.tstr_epochs,
                baseline_dir=args.out / "tstr" / "trtr_run",
            )
        write_generation_report(
            args.out / _slug(name),
            metrics=metrics,
            title=f"{name} vs PneumoniaMNIST test",
            fake=x,
            fake_labels=y,
            train=train[0],
            tstr=tstr,
            provenance=info.get(name),
        )
        for group, entry in {"all": metrics["overall"], **metrics["per_class"]}.items():
            print(row(name, group, entry), flush=True)
        summary[name] = {
            "overall": metrics["overall"],
            "per_class": metrics["per_class"],
            "tstr": tstr,
        }
    (args.out).mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    for name, entry in summary.items():
        if entry["tstr"]:
            t = entry["tstr"]
            for key in ("tstr", "trtr"):
                auc = t[key]["roc_auc"]
                print(
                    f"{name} {key}: AUC {auc['value']:.3f} ({auc['ci_low']:.3f}-"
                    f"{auc['ci_high']:.3f}), n_train {t[key]['n_train']}"
                )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"feature extraction: {extract.computed} images in {extract.seconds:.1f} s "
        f"({extract.computed / max(extract.seconds, 1e-9):.1f} images/s); total "
        f"{time.perf_counter() - start:.0f} s; peak RSS {rss:.0f} MiB"
    )
    print(f"reports: {args.out}/<set>/report.html")


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")


if __name__ == "__main__":
    main()
