"""One batch of manifest items -> rows: read, predict, and catch each item's typed error.

Shared by both engines: the local one reads items in DataLoader workers
(:class:`ItemDataset`), Ray Data calls :class:`RayPredictor` on each block.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medlens.errors import InvalidImageError, MedlensError

__all__ = [
    "ItemDataset",
    "RayPredictor",
    "classify",
    "collate_loaded",
    "load_item",
    "segment_rows",
    "uncollate_loaded",
]

log = logging.getLogger("medlens.batch")

Loaded = tuple[int, str, Any, str | None, str | None]
"""``(index, item, tensor or image or None, error type, error message)``."""


def read_item(item: str) -> Any:
    """The :class:`~medlens.io.Image` of a manifest item (a path, or a registered URI)."""
    from medlens.batch.manifest import ITEM_READERS, scheme_of
    from medlens.io import read_image

    scheme = scheme_of(item)
    if scheme is not None:
        return ITEM_READERS[scheme](item)
    try:
        return read_image(item)
    except OSError as exc:  # missing or unreadable file: that item's error, typed
        raise InvalidImageError(f"{item}: cannot be read ({exc.strerror or 'I/O error'})") from exc


def load_item(index: int, item: str, preprocessing: Any, wants_2d: bool) -> Loaded:
    """Read and (for a classifier) preprocess one item; a :class:`MedlensError` is kept."""
    try:
        image = read_item(item)
        if preprocessing is None:
            return index, item, image, None, None
        if wants_2d and image.ndim == 3:  # a volume to a 2D model: its middle slice
            middle = image.array.shape[0] // 2
            image = image.with_array(image.array[middle], spacing=image.spacing[1:])
        return index, item, preprocessing(image), None, None
    except MedlensError as exc:
        return index, item, None, type(exc).__name__, str(exc)


def collate_loaded(batch: Sequence[Loaded]) -> tuple[list[Loaded], Any]:
    """In a loader worker: the good items' tensors stacked into one.

    A worker hands each tensor to the main process through its own shared-memory block;
    one block per batch instead of one per image is what keeps workers worth having for
    small images. Tensors of different shapes stay separate.
    """
    import torch

    good = [entry[2] for entry in batch if entry[3] is None]
    try:
        stacked = torch.stack(good) if good else None
    except RuntimeError:  # different shapes: no stacking
        return list(batch), None
    return [(i, item, None, kind, error) for i, item, _, kind, error in batch], stacked


def uncollate_loaded(collated: tuple[list[Loaded], Any]) -> list[Loaded]:
    """The entries of :func:`collate_loaded` again, each with its tensor (a view)."""
    entries, stacked = collated
    if stacked is None:
        return entries
    tensors = iter(stacked)
    return [(i, item, next(tensors) if kind is None else None, kind, error)
            for i, item, _, kind, error in entries]  # fmt: skip


def classify(predictor: Any, loaded: Sequence[Loaded]) -> list[dict[str, Any]]:
    """Rows for a batch of loaded items: label and ``p_<class>`` (``None`` for failed items)."""
    good = [entry for entry in loaded if entry[3] is None]
    probs = iter(predictor.predict_proba([entry[2] for entry in good]) if good else [])
    rows = []
    for index, item, _, error_type, error in loaded:
        row = _row(index, item, error_type, error)
        p = next(probs) if error_type is None else [None] * len(predictor.classes)
        row["label"] = predictor.decide(p) if error_type is None else None
        row.update({f"p_{name}": value for name, value in zip(predictor.classes, p, strict=True)})
        rows.append(row)
    return rows


def segment_rows(predictor: Any, loaded: Sequence[Loaded], mask_dir: Path) -> list[dict[str, Any]]:
    """Rows for a batch of loaded images: per-class volumes and the written mask's path."""
    import numpy as np

    rows = []
    names, values = predictor.classes[1:], predictor.label_values[1:]
    for index, item, image, error_type, error in loaded:
        row = _row(index, item, error_type, error)
        volumes: list[float | None] = [None] * len(names)
        row["label"], row["mask_path"] = None, None
        if error_type is None:
            try:
                labels = predictor.segment(image)
                row["mask_path"] = _write_mask(labels, image, index, mask_dir)
                voxel = float(np.prod(labels.spacing))
                volumes = [float((labels.array == v).sum()) * voxel for v in values]
                row["label"] = "|".join(n for n, v in zip(names, volumes, strict=True) if v)
            except MedlensError as exc:
                row["error_type"], row["error"] = type(exc).__name__, str(exc)
        row.update({f"volume_mm3_{n}": v for n, v in zip(names, volumes, strict=True)})
        rows.append(row)
    return rows


def _row(index: int, item: str, error_type: str | None, error: str | None) -> dict[str, Any]:
    if error_type is not None:  # no path or image content in the log: index and type only
        log.warning("item %d skipped: %s", index, error_type)
    return {"index": index, "item": item, "error_type": error_type, "error": error}


def _write_mask(labels: Any, image: Any, index: int, mask_dir: Path) -> str:
    """The label map as ``<index>_seg.png`` (2D raster input) or ``.nii.gz``, atomically."""
    from medlens.io import write_image

    raster = str(image.meta.get("format", "")).upper() in ("PNG", "JPEG", "TIFF", "BMP")
    target = mask_dir / f"{index:08d}_seg{'.png' if raster else '.nii.gz'}"
    mask_dir.mkdir(parents=True, exist_ok=True)
    tmp = mask_dir / f".tmp-{os.getpid()}-{target.name}"
    write_image(labels, tmp)
    os.replace(tmp, target)
    return str(target)


class ItemDataset:
    """A map-style dataset of ``(index, item)`` pairs, loaded by :func:`load_item`."""

    def __init__(self, indexed: Sequence[tuple[int, str]], preprocessing: Any, wants_2d: bool):
        self.indexed, self.preprocessing, self.wants_2d = indexed, preprocessing, wants_2d

    def __len__(self) -> int:
        return len(self.indexed)

    def __getitem__(self, i: int) -> Loaded:
        index, item = self.indexed[i]
        return load_item(index, item, self.preprocessing, self.wants_2d)


class RayPredictor:
    """Ray Data ``map_batches`` callable: one predictor per actor, rows as columns.

    A batch may span shards (``shard_size`` items each): masks go to each row's shard
    folder under ``out/masks/``.
    """

    def __init__(self, run_dir: str, out: str) -> None:
        from medlens.inference import Predictor

        self.predictor = Predictor.from_run(run_dir, engine="torch")
        self.out = Path(out)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        pairs = list(zip((int(i) for i in batch["index"]), (str(p) for p in batch["item"]),
                         strict=True))  # fmt: skip
        shard_of = [int(s) for s in batch["shard"]]
        rows: list[dict[str, Any]] = []
        for shard in sorted(set(shard_of)):
            mine = [pair for pair, s in zip(pairs, shard_of, strict=True) if s == shard]
            rows += predict_batch(self.predictor, mine, self.out / "masks" / f"shard-{shard:05d}")
        rows.sort(key=lambda row: row["index"])
        return {key: [row[key] for row in rows] for key in rows[0]}


def predict_batch(
    predictor: Any, indexed: Sequence[tuple[int, str]], mask_dir: Path
) -> list[dict[str, Any]]:
    """Load and predict ``(index, item)`` pairs in this process."""
    preprocessing, wants_2d = loader_options(predictor)
    loaded = [load_item(i, item, preprocessing, wants_2d) for i, item in indexed]
    if predictor.family == "segmentation":
        return segment_rows(predictor, loaded, mask_dir)
    return classify(predictor, loaded)


def loader_options(predictor: Any) -> tuple[Any, bool]:
    """The preprocessing to run while loading (classifiers only) and whether it wants 2D."""
    if predictor.family == "segmentation":
        return None, False
    return predictor.preprocessing, len(predictor.preprocessing.spatial_size or (0, 0)) == 2
