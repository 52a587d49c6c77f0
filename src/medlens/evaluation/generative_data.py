"""Generative evaluation from disk: a folder of generated images, the splits of real data,
and :func:`evaluate_generation`, the whole stage (metrics, optional TSTR, report).

>>> evaluate_generation("gen-out/", "pneumoniamnist.npz", "eval/gen")    # doctest: +SKIP

writes ``eval/gen/metrics.json`` and ``eval/gen/report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medlens.errors import EvaluationError

if TYPE_CHECKING:
    from medlens.data.manifest import Manifest
    from medlens.evaluation.generative_features import FeatureExtractor

__all__ = [
    "IMAGE_SUFFIXES",
    "evaluate_generation",
    "read_image_folder",
    "read_split",
    "real_splits",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_image_folder(
    folder: str | Path, *, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images under ``folder/<class>/`` as ``(N, C, H, W)`` float32 in [0, 1], class indices,
    and the class names (sorted folder names, or ``classes``; a missing class is allowed).

    Every image must have the same size and mode; grey stays one channel, RGB three.
    """
    from PIL import Image

    root = Path(folder)
    names = (
        tuple(classes)
        if classes
        else tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
        if root.is_dir()
        else ()
    )
    images, labels = [], []
    for index, name in enumerate(names):
        files = sorted(p for p in (root / name).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        for file in files:
            with Image.open(file) as handle:
                array = np.asarray(
                    handle.convert("RGB" if handle.mode in ("RGB", "RGBA") else "L"),
                    dtype=np.float32,
                )
            images.append(array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0))
            labels.append(index)
    if not images:
        raise EvaluationError(f"{root}: no images in class sub-folders")
    if len({im.shape for im in images}) != 1:
        raise EvaluationError(f"{root}: images differ in size or channels")
    return np.stack(images) / 255.0, np.asarray(labels, np.int64), names


def real_splits(real: str | Path, *, seed: int = 0) -> Manifest:
    """Real data (a manifest CSV or folder with one, or a dataset source such as a MedMNIST
    ``.npz``) with every row in a split, as training assigns them (seeded, patient-grouped)."""
    from medlens.config import parse_config
    from medlens.tasks.run import build_manifest

    path = Path(real)
    manifest_like = path.suffix == ".csv" or (path / "manifest.csv").is_file()
    data = {"manifest" if manifest_like else "source": str(path)}
    manifest = build_manifest(parse_config({"data": data, "seed": seed, "output_dir": "unused"}))
    missing = {"train", "val", "test"} - {r.split for r in manifest}
    if missing:
        raise EvaluationError(f"{path}: the real data has no {sorted(missing)} split(s)")
    return manifest


def read_split(
    manifest: Manifest, split: str, *, size: tuple[int, int], channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """The images of ``split`` as ``(N, channels, *size)`` float32 in [0, 1], and class indices.

    8-bit images are divided by 255, others min-max scaled per image (``scaling: auto``).
    """
    from medlens.training.data import load_images
    from medlens.transforms.preprocess import Preprocessing

    records = [r for r in manifest if r.split == split]
    if not records:
        raise EvaluationError(f"no real images in the {split!r} split")
    prep = Preprocessing(spatial_size=size, channels=channels)
    images = [prep(image).numpy() for image in load_images([r.path for r in records])]
    index = {name: i for i, name in enumerate(manifest.classes)}
    labels = np.asarray([index[r.labels[0]] for r in records], np.int64)
    return np.clip(np.stack(images), 0, 1).astype(np.float32), labels


def evaluate_generation(
    synthetic: str | Path,
    real: str | Path,
    out_dir: str | Path,
    *,
    features: str | FeatureExtractor = "lite0",
    split: str = "test",
    train_split: str = "train",
    seed: int = 0,
    tstr: bool = False,
    tstr_options: Mapping[str, Any] | None = None,
    title: str | None = None,
    feature_cache: str | Path | None = None,
    **options: Any,
) -> Path:
    """Evaluate the images under ``synthetic/<class>/`` against ``split`` of ``real``
    (memorisation against ``train_split``); write ``metrics.json`` and ``report.html`` to
    ``out_dir`` and return it. ``tstr`` adds train-on-synthetic AUC (trains two small
    classifiers under ``out_dir/tstr``); ``feature_cache`` keeps the features of every image
    set there for the next evaluation; ``options`` go to ``generation_metrics``.
    """
    from medlens.evaluation.generative import generation_metrics
    from medlens.evaluation.generative_features import CachedFeatures, feature_extractor
    from medlens.evaluation.generative_report import write_generation_report
    from medlens.evaluation.generative_tstr import tstr_auc

    manifest = real_splits(real, seed=seed)
    fake, fake_y, classes = read_image_folder(synthetic, classes=manifest.classes)
    shape = {"size": tuple(fake.shape[-2:]), "channels": int(fake.shape[1])}
    test, test_y = read_split(manifest, split, **shape)
    train, train_y = read_split(manifest, train_split, **shape)
    if feature_cache is not None:
        features = CachedFeatures(feature_extractor(features), feature_cache)
    metrics = generation_metrics(
        test,
        test_y,
        fake,
        fake_y,
        extractor=features,
        classes=classes,
        seed=seed,
        train=train,
        train_labels=train_y,
        **options,
    )
    out = Path(out_dir)
    result = None
    if tstr:
        result = tstr_auc(fake, fake_y, real, out / "tstr", seed=seed, **(tstr_options or {}))
    provenance_file = Path(synthetic) / "provenance.json"
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else None
    return write_generation_report(
        out,
        metrics=metrics,
        title=title or f"{Path(synthetic).name} vs {Path(real).name}",
        fake=fake,
        fake_labels=fake_y,
        train=train,
        tstr=result,
        provenance=provenance,
    )
