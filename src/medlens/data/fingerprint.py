"""The fingerprint of a dataset: what it holds, saved as ``fingerprint.json``.

Counts per split and class and patients per split come from every row; image sizes,
spacing, modality and intensity statistics from a seeded random sample of images (reading
them all would take minutes on a large DICOM set). ``manifest_sha256`` identifies the data a
model was trained on (it goes into the run's ``model.json``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from medlens.data.manifest import Manifest
from medlens.data.splits import patients_in_several_splits
from medlens.errors import DatasetError, InvalidImageError

__all__ = [
    "compute_fingerprint",
    "image_channels",
    "infer_channels",
    "load_fingerprint",
    "save_fingerprint",
]

_VOXELS_PER_IMAGE = 20_000


def compute_fingerprint(
    manifest: Manifest, *, sample_size: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Counts over all rows; image statistics over ``sample_size`` images drawn with ``seed``."""
    from medlens import __version__

    patients: dict[str, set[str]] = {}
    for record in manifest:
        patients.setdefault(record.split or "unsplit", set()).add(record.patient_id or record.path)
    return {
        "medlens_version": __version__,
        "manifest_sha256": manifest.sha256(),
        "task": manifest.task,
        "classes": list(manifest.classes),
        "num_images": len(manifest),
        "counts": manifest.counts(),
        "patients": {split: len(ids) for split, ids in sorted(patients.items())},
        "patients_in_several_splits": len(patients_in_several_splits(manifest)),
        **_image_statistics(manifest, sample_size, seed),
    }


def _image_statistics(manifest: Manifest, sample_size: int, seed: int) -> dict[str, Any]:
    from medlens.data.reading import load_record_image

    rng = np.random.default_rng(seed)
    count = min(sample_size, len(manifest))
    chosen = sorted(rng.choice(len(manifest), size=count, replace=False).tolist()) if count else []
    shapes, spacings, modalities, voxels, unreadable = [], [], Counter(), [], 0
    channels: Counter[int] = Counter()
    for index in chosen:
        try:
            image = load_record_image(manifest.records[index].path)
        except (InvalidImageError, DatasetError, OSError):
            unreadable += 1
            continue
        shapes.append(image.array.shape)
        spacings.append(image.spacing)
        modalities[image.modality] += 1
        channels[image_channels(image)] += 1
        flat = image.array.reshape(-1)
        step = max(1, flat.size // _VOXELS_PER_IMAGE)
        voxels.append(flat[::step].astype(np.float64))
    return {
        "sample": {"size": count, "seed": seed, "unreadable": unreadable},
        "shapes": _shape_summary(shapes),
        "spacing": _axis_summary(spacings),
        "modalities": dict(modalities.most_common()),
        "channels": channels.most_common(1)[0][0] if channels else 1,
        "intensity": _intensity_summary(voxels),
    }


def image_channels(image: Any) -> int:
    """3 for colour pixels, else 1: an RGB file whose channels are all equal (a grey X-ray
    saved as RGB JPEG) is grey."""
    if not image.is_rgb or image.array.shape[-1] < 3:
        return 1
    flat = image.array.reshape(-1, image.array.shape[-1])[:, :3]
    flat = flat[:: max(1, len(flat) // _VOXELS_PER_IMAGE)]
    return 3 if bool((flat != flat[:, :1]).any()) else 1


def infer_channels(manifest: Manifest, *, sample_size: int = 16, seed: int = 0) -> int:
    """The input channels the data call for: 3 when most sampled images are colour, else 1."""
    from medlens.data.reading import load_record_image

    records = manifest.records
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(records), size=min(sample_size, len(records)), replace=False)
    votes = Counter(image_channels(load_record_image(records[i].path)) for i in sorted(chosen))
    return votes.most_common(1)[0][0] if votes else 1


def _shape_summary(shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    common = Counter(shapes).most_common(5)
    return {
        **{key: [int(v) for v in values] for key, values in _axis_summary(shapes).items()},
        "most_common": [{"shape": list(shape), "count": n} for shape, n in common],
    }


def _axis_summary(rows: list[tuple[float, ...]]) -> dict[str, Any]:
    """Per-axis min/median/max of rows of equal length (the most common length)."""
    if not rows:
        return {}
    length = Counter(len(row) for row in rows).most_common(1)[0][0]
    table = np.array([row for row in rows if len(row) == length], dtype=float)
    return {
        key: [round(float(v), 4) for v in func(table, axis=0)]
        for key, func in (("min", np.min), ("median", np.median), ("max", np.max))
    }


def _intensity_summary(voxels: list[np.ndarray]) -> dict[str, float]:
    if not voxels:
        return {}
    values = np.concatenate(voxels)
    stats = {"min": values.min(), "max": values.max(), "mean": values.mean(), "std": values.std()}
    stats |= {f"p{q}": np.percentile(values, q) for q in (0.5, 50, 99.5)}
    return {key: round(float(value), 4) for key, value in stats.items()}


def save_fingerprint(fingerprint: dict[str, Any], path: str | Path) -> Path:
    """Write the fingerprint as indented JSON, atomically."""
    from medlens.io.base import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(fingerprint, indent=2) + "\n", encoding="utf-8")
    return path


def load_fingerprint(path: str | Path) -> dict[str, Any]:
    """Read ``fingerprint.json`` (or the one in a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "fingerprint.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(
            f"no fingerprint at {path}; build it with `medlens data SOURCE -o DIR`"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DatasetError(f"{path}: not a valid fingerprint JSON") from None
    if not isinstance(data, dict) or "counts" not in data:
        raise DatasetError(f"{path}: not a medlens fingerprint (no 'counts')")
    return data
