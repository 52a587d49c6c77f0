"""``evaluate_run`` for a generation run: sample each class, then score against real images.

The generator writes ``n`` images per class (by default as many as the real images of that
class in ``split``, at most 2,000) into ``eval/<split>/samples/`` with their provenance,
and :func:`medlens.evaluation.generative.evaluate_generation` compares them with ``split`` of
the run's own data (or ``data``), memorisation against its training split. ``metrics.json``
and ``report.html`` land beside the samples; the features of the real images are kept in
``eval/feature-cache/`` for the next evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["MAX_PER_CLASS", "evaluate_generation_run"]

MAX_PER_CLASS = 2000


def evaluate_generation_run(
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    split: str = "test",
    n_per_class: int | None = None,
    seed: int = 0,
    features: str = "lite0",
    tstr: bool = False,
    **options: Any,
) -> Path:
    """Sample the run, evaluate the samples against real ``split``; return the folder."""
    from medlens.card import read_card
    from medlens.evaluation._io import evaluation_dir
    from medlens.evaluation.generative import evaluate_generation, real_splits
    from medlens.generation import generate

    run_dir = Path(run_dir)
    real = Path(data) if data is not None else run_dir
    out = evaluation_dir(run_dir, data, split)
    card = read_card(run_dir)
    manifest = real_splits(real, seed=seed)
    samples = out / "samples"
    options.setdefault("feature_cache", run_dir / "eval" / "feature-cache")
    for name in card.classes:
        count = n_per_class or min(MAX_PER_CLASS, _count(manifest, split, name))
        if count:
            generate(run_dir, count, name, samples, seed=seed)
    return evaluate_generation(
        samples, real, out, features=features, split=split, seed=seed, tstr=tstr,
        title=f"{run_dir.name}: {card.generation.method if card.generation else ''} samples "
        f"vs real {split}",
        **options,
    )  # fmt: skip


def _count(manifest: Any, split: str, name: str) -> int:
    return sum(record.labels == (name,) for record in manifest.split(split))
