"""Train on synthetic, test on real (TSTR): does a classifier learn from generated images?

:func:`tstr_auc` trains a medlens classifier (the shared :func:`~medlens.tasks.train_run`,
a small ``simple_cnn`` by default) on synthetic images only, selects its epoch on the REAL
validation split and measures ROC-AUC with a bootstrap CI on the REAL test split; the
train-on-real baseline (TRTR) goes through the same steps with the real training split.
Both runs see the same validation and test rows, so the difference is the training data.

Everything lands under ``out_dir``::

    real/manifest.csv        the real data with its (seeded, patient-grouped) splits
    synthetic/<class>/*.png  the synthetic images as 8-bit PNGs
    tstr_data/manifest.csv   synthetic rows as train + the real val and test rows
    tstr_run/  trtr_run/     run directories, each with eval/test/metrics.json
    tstr.json                the figures (written last, atomically)

A finished run directory (``model.json`` present) and its evaluation are reused, so a
rerun only does what is missing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medlens.errors import EvaluationError

__all__ = ["TSTR_MODEL", "tstr_auc"]

#: The default classifier: small, fast on a CPU, the same for TSTR and the baseline.
TSTR_MODEL: dict[str, Any] = {"name": "simple_cnn", "options": {"widths": [16, 32, 64]}}


def tstr_auc(
    synthetic: ArrayLike,
    synthetic_labels: ArrayLike,
    real: str | Path,
    out_dir: str | Path,
    *,
    classes: Sequence[str] | None = None,
    seed: int = 0,
    epochs: int = 10,
    model: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    n_bootstrap: int = 1000,
    baseline: bool = True,
    baseline_dir: str | Path | None = None,
) -> dict[str, Any]:
    """ROC-AUC on the real test split of a classifier trained on ``synthetic`` (and on real).

    Args:
        synthetic: ``(N, C, H, W)`` float32 in [0, 1] (C 1 or 3).
        synthetic_labels: class indices into ``classes`` (default: the real data's classes).
        real: a manifest (CSV or folder holding ``manifest.csv``) or a dataset source (a
            MedMNIST ``.npz`` with its official splits, class folders).
        out_dir: where data, runs and ``tstr.json`` go.
        seed: seeds splits, training and the bootstrap.
        epochs, model, config: training; ``config`` adds top-level TrainConfig keys.
        n_bootstrap: resamples of the AUC interval.
        baseline: also train on the real training split (TRTR).
        baseline_dir: the TRTR run directory (default ``out_dir/trtr_run``); several
            synthetic sets with the same real data and seed can share one.

    Returns:
        ``{"tstr": {...}, "trtr": {...} | None, "gap": trtr - tstr AUC, ...}``, each with
        ``roc_auc`` ``{"value", "ci_low", "ci_high"}``, the training count and the run path.
    """
    from medlens.data.manifest import Manifest
    from medlens.evaluation._io import write_json
    from medlens.evaluation.generative_features import as_image_batch

    out = Path(out_dir)
    images = as_image_batch(synthetic)
    real_manifest = _real_manifest(real, seed, out / "real")
    names = tuple(classes) if classes else real_manifest.classes
    if tuple(names) != tuple(real_manifest.classes):
        raise EvaluationError(
            f"synthetic classes {list(names)} differ from the real data's "
            f"{list(real_manifest.classes)}"
        )
    labels = np.asarray(synthetic_labels).reshape(-1).astype(np.int64)
    if len(labels) != len(images) or labels.min() < 0 or labels.max() >= len(names):
        raise EvaluationError("synthetic_labels must be one class index per image")
    held_out = [r for r in real_manifest if r.split in ("val", "test")]
    rows = _write_synthetic(images, labels, names, out / "synthetic")
    tstr_data = Manifest(tuple(rows + held_out), real_manifest.classes)
    tstr_data.write(out / "tstr_data" / "manifest.csv")
    train = {"seed": seed, "epochs": epochs, "model": model, "config": config}
    image_size = int(images.shape[-1])
    result: dict[str, Any] = {
        "seed": seed,
        "classes": list(names),
        "model": _model(model, image_size),
        "epochs": epochs,
        "selection": "epoch chosen on the real validation split (the same for both runs)",
        "tstr": _train_and_test(
            out / "tstr_data", out / "tstr_run", image_size, n_bootstrap, train
        ),
        "trtr": None,
        "gap": None,
    }
    if baseline:
        trtr_dir = Path(baseline_dir) if baseline_dir else out / "trtr_run"
        result["trtr"] = _train_and_test(out / "real", trtr_dir, image_size, n_bootstrap, train)
        tstr_auc_, trtr_auc = result["tstr"]["roc_auc"]["value"], result["trtr"]["roc_auc"]["value"]
        if tstr_auc_ is not None and trtr_auc is not None:
            result["gap"] = trtr_auc - tstr_auc_
    write_json(out / "tstr.json", result)
    return result


def _real_manifest(real: str | Path, seed: int, folder: Path) -> Any:
    """The real data with every row in a split, written to ``folder/manifest.csv``."""
    from medlens.evaluation.generative_data import real_splits

    manifest = real_splits(real, seed=seed)
    manifest.write(folder / "manifest.csv")
    return manifest


def _write_synthetic(
    images: np.ndarray, labels: np.ndarray, classes: Sequence[str], folder: Path
) -> list[Any]:
    """8-bit PNGs under ``folder/<class>/``; training rows that name them synthetic."""
    from PIL import Image

    from medlens.data.manifest import Record
    from medlens.evaluation._io import atomic_write

    rows = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        pixels = np.round(image * 255).astype(np.uint8)
        array = pixels[0] if pixels.shape[0] == 1 else np.moveaxis(pixels, 0, -1)
        path = folder / classes[label] / f"synthetic_{i:06d}.png"
        if not path.is_file():
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="PNG")
            atomic_write(path, buffer.getvalue())
        rows.append(Record(str(path.resolve()), classes[label], f"synthetic/{i}", "train"))
    return rows


def _model(model: Mapping[str, Any] | None, image_size: int) -> dict[str, Any]:
    return {**TSTR_MODEL, "image_size": image_size, **(model or {})}


def _train_and_test(
    data: Path, run_dir: Path, image_size: int, n_bootstrap: int, train: Mapping[str, Any]
) -> dict[str, Any]:
    """Train (unless finished already) and evaluate on the real test split."""
    from medlens.config import parse_config
    from medlens.pipeline import evaluate_run
    from medlens.tasks import train_run

    if not (run_dir / "model.json").is_file():
        raw = {
            "data": {"manifest": str(data / "manifest.csv")},
            "model": _model(train["model"], image_size),
            "epochs": train["epochs"],
            "batch_size": 64,
            "seed": train["seed"],
            "output_dir": str(run_dir),
            **(train["config"] or {}),
        }
        train_run(parse_config(raw))
    metrics_file = run_dir / "eval" / "test" / "metrics.json"
    if not _reusable(metrics_file, run_dir / "model.json", n_bootstrap):
        metrics_file = evaluate_run(run_dir, split="test", n_bootstrap=n_bootstrap, examples=0)
        metrics_file = metrics_file / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    counts = json.loads((run_dir / "fingerprint.json").read_text()).get("counts", {})
    return {
        "roc_auc": metrics["metrics"]["roc_auc"],
        "n_train": sum(counts.get("train", {}).values()) if counts else None,
        "n_test": metrics["n_cases"],
        "run": str(run_dir),
    }


def _reusable(metrics_file: Path, card: Path, n_bootstrap: int) -> bool:
    """An evaluation written after the weights, with the same number of resamples."""
    try:
        if metrics_file.stat().st_mtime_ns < card.stat().st_mtime_ns:
            return False
        found = json.loads(metrics_file.read_text())
    except (OSError, ValueError):
        return False
    return found.get("bootstrap", {}).get("n_resamples") == n_bootstrap
