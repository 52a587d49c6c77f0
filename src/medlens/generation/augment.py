"""Mixing synthetic images into a training split (``data.augment_with``).

``source`` is a generation run (images are generated on the fly into the training run's
``synthetic/`` folder, with provenance) or a folder of class sub-folders written by
``medlens generate`` (every image must be marked synthetic). Per class,
``round(fraction * real training images)`` synthetic rows join the training split; they have
no patient ID and never enter validation or test.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medlens.data.manifest import Manifest, Record
from medlens.errors import ConfigError

if TYPE_CHECKING:
    from medlens.config import DataConfig

__all__ = ["add_synthetic", "synthetic_counts", "synthetic_summary"]


def synthetic_counts(manifest: Manifest, fraction: float, split: str = "train") -> dict[str, int]:
    """How many synthetic images each class gets: ``round(fraction * real ones)``."""
    real = manifest.split(split)
    return {c: round(fraction * sum(r.labels == (c,) for r in real)) for c in manifest.classes}


def add_synthetic(
    manifest: Manifest,
    source: str | Path,
    fraction: float,
    *,
    split: str = "train",
    seed: int = 0,
    out_dir: str | Path,
) -> Manifest:
    """``manifest`` with synthetic training rows appended (see the module docstring)."""
    counts = synthetic_counts(manifest, fraction, split)
    source = Path(source)
    if (source / "model.json").is_file():
        folder = _generate_into(source, counts, seed, Path(out_dir))
    elif source.is_dir():
        folder = source
    else:
        raise ConfigError(f"data.augment_with: {source} is neither a generation run nor a folder")
    available = _synthetic_by_class(folder)
    rows = []
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        have = available.get(name, [])
        if count > len(have):
            raise ConfigError(
                f"data.augment_with: {count} synthetic '{name}' images needed, "
                f"{len(have)} marked synthetic in {folder}"
            )
        chosen = sorted(rng.choice(len(have), size=count, replace=False).tolist()) if count else []
        rows += [Record(path=have[i], label=name, split=split) for i in chosen]
    return manifest.with_records((*manifest.records, *rows))


def _generate_into(run_dir: Path, counts: dict[str, int], seed: int, out_dir: Path) -> Path:
    """Generate each class's count from ``run_dir`` (reused when already generated)."""
    from medlens.card import read_card
    from medlens.generation.sample import generate

    card = read_card(run_dir)
    missing = sorted(set(counts) - set(card.classes))
    if missing:
        raise ConfigError(f"data.augment_with: the generator {run_dir} has no class {missing}")
    have = _synthetic_by_class(out_dir) if out_dir.is_dir() else {}
    for name, count in counts.items():
        if count and len(have.get(name, [])) < count:
            generate(run_dir, count, name, out_dir, seed=seed)
    return out_dir


def _synthetic_by_class(folder: Path) -> dict[str, list[str]]:
    """``{class: sorted absolute paths}`` of the images under ``folder/<class>/``."""
    from medlens.data.sources import find_images
    from medlens.data.synthetic import synthetic_rows

    out: dict[str, list[str]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        paths = [str(p.resolve()) for p in find_images([sub])]
        marked = synthetic_rows(paths)
        if len(marked) != len(paths):
            raise ConfigError(
                f"data.augment_with: {len(paths) - len(marked)} image(s) in {sub} are not "
                "marked synthetic (no provenance.csv row, no PNG marker): refusing to mix "
                "images of unknown origin into training"
            )
        out[sub.name] = sorted(paths)
    return out


def synthetic_summary(manifest: Manifest, data: DataConfig, run_dir: Path) -> dict[str, Any]:
    """The card's ``synthetic_data``: source, fraction and the synthetic rows per class."""
    from medlens.data.synthetic import synthetic_rows

    train = manifest.split(data.train_split)
    marked = synthetic_rows(r.path for r in train)
    counts: dict[str, int] = {c: 0 for c in manifest.classes}
    for i in marked:
        counts[train.records[i].labels[0]] += 1
    source = Path(str(data.augment_with))
    kind = "run" if (source / "model.json").is_file() else "folder"
    return {
        "source": str(source.resolve()),
        "kind": kind,
        "fraction": data.synthetic_fraction,
        "train_counts": counts,
        "real_train_images": len(train) - len(marked),
        "provenance": str((run_dir / "synthetic" if kind == "run" else source) / "provenance.csv"),
        "splits": "training only; never validation or test",
    }
