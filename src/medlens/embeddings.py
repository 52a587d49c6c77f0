"""Embeddings of a dataset from any registry classifier, written to disk once.

An embedding is what every registry model gives before its last layer,
``model.forward_head(model.forward_features(x), pre_logits=True)``, so new backbones work
without changes here. :func:`embed` writes a folder::

    embeddings.npy   (N, D) float32 or float16, read back memory-mapped
    rows.csv         item,label,split,patient (the manifest rows, in the same order)
    identity.json    model, weights sha256, preprocessing, data fingerprint, dtype, dim

``identity.json`` is written last (atomically): a folder with it is complete. A rerun with
the same identity returns the folder as it is.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from medlens.errors import ConfigError, DatasetError
from medlens.training.checkpoint import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from medlens.data.manifest import Manifest, Record
    from medlens.transforms.preprocess import Preprocessing

__all__ = [
    "EmbeddingSet",
    "cached_embeddings",
    "Encoder",
    "data_fingerprint",
    "embed",
    "embed_tensors",
    "encoder_from_run",
    "encoder_from_model",
    "read_data",
]

Dtype = Literal["float32", "float16"]
ROW_COLUMNS = ("item", "label", "split", "patient")


@dataclass
class Encoder:
    """A model, its preprocessing and the identity of both."""

    model: torch.nn.Module
    preprocessing: Preprocessing
    name: str

    @cached_property
    def weights_sha256(self) -> str:
        """sha256 over the state dict (names, dtypes, shapes and bytes), in key order,
        without the classifier: it does not change the embedding."""
        digest = hashlib.sha256()
        head = f"{getattr(self.model, 'classifier_name', None)}."
        for key, tensor in sorted(self.model.state_dict().items()):
            if key.startswith(head):
                continue
            array = tensor.detach().cpu().contiguous()
            digest.update(f"{key}:{array.dtype}:{tuple(array.shape)};".encode())
            digest.update(array.reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()


def encoder_from_model(
    name: str,
    *,
    pretrained: bool | str | Path = "imagenet",
    in_chans: int = 3,
    image_size: int | None = None,
    preprocessing: dict[str, Any] | None = None,
    accept_license: Sequence[str] = (),
) -> Encoder:
    """A registry classifier with its own preprocessing (``preprocessing`` overrides it).

    ``accept_license`` names licences accepted for gated or non-commercial weights.
    """
    from medlens.models import create_model
    from medlens.transforms.preprocess import preprocessing_from_dict

    pretrained = str(pretrained) if isinstance(pretrained, Path) else pretrained
    model = create_model(
        name,
        num_classes=2,
        in_chans=in_chans,
        pretrained=pretrained,
        image_size=image_size,
        accept_license=accept_license,
    )
    cfg = model.default_cfg
    defaults = {
        "spatial_size": [cfg.input_size] * 2,
        "channels": in_chans,
        "mean": list(cfg.mean),
        "std": list(cfg.std),
    }
    return Encoder(model, preprocessing_from_dict({**defaults, **(preprocessing or {})}), name)


def encoder_from_run(run_dir: str | Path) -> Encoder:
    """The trained model of a run directory, with the preprocessing in its card."""
    from medlens.card import read_card
    from medlens.inference.engines import load_engine
    from medlens.transforms.preprocess import preprocessing_from_dict

    card = read_card(run_dir)
    if card.family != "classification":
        raise ConfigError(f"{run_dir}: embeddings need a classification run, not {card.task}")
    model = load_engine(Path(run_dir), card, "torch")
    preprocessing = preprocessing_from_dict(card.preprocessing, source=str(run_dir))
    return Encoder(model, preprocessing, card.architecture)


def read_data(data: str | Path) -> Manifest:
    """A manifest (CSV, or a folder holding ``manifest.csv``) or a dataset source."""
    from medlens.data import load_manifest, open_source

    path = Path(data)
    if (path.is_dir() and (path / "manifest.csv").is_file()) or path.suffix == ".csv":
        return load_manifest(path)
    return open_source(path)


def data_fingerprint(records: Sequence[Record]) -> str:
    """sha256 of the items, in order, with the size and mtime of the files behind them."""
    digest = hashlib.sha256()
    stats: dict[str, str] = {}
    for record in records:
        file = record.path.split("#", 1)[0]
        if file not in stats:
            try:
                stat = Path(file).stat()
                stats[file] = f"{stat.st_size}:{stat.st_mtime_ns}"
            except OSError:
                stats[file] = "missing"
        digest.update(f"{record.path}|{stats[file]}\n".encode())
    return digest.hexdigest()


def embed_tensors(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Pre-logit features of a preprocessed batch (the shared classifier interface)."""
    with torch.inference_mode():
        return model.forward_head(model.forward_features(batch), pre_logits=True).float()


class EmbeddingSet:
    """A folder written by :func:`embed`: memory-mapped vectors plus their rows."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not (self.folder / "identity.json").is_file():
            raise DatasetError(f"{self.folder}: no complete embeddings (identity.json missing)")
        self.identity: dict[str, Any] = json.loads((self.folder / "identity.json").read_text())
        self.vectors: np.ndarray = np.load(self.folder / "embeddings.npy", mmap_mode="r")
        with open(self.folder / "rows.csv", newline="") as handle:
            self.rows: list[dict[str, str]] = list(csv.DictReader(handle))
        if len(self.rows) != len(self.vectors):
            raise DatasetError(f"{self.folder}: rows.csv and embeddings.npy differ in length")

    def __len__(self) -> int:
        return len(self.rows)

    def select(self, items: Sequence[str]) -> np.ndarray:
        """The vectors of ``items`` (manifest paths), in that order, as float32."""
        index = {row["item"]: i for i, row in enumerate(self.rows)}
        missing = [item for item in items if item not in index]
        if missing:
            raise DatasetError(f"{self.folder}: {len(missing)} item(s) have no embedding")
        return np.asarray(self.vectors[[index[item] for item in items]], dtype=np.float32)


def embed(
    encoder: Encoder,
    manifest: Manifest,
    out_dir: str | Path,
    *,
    dtype: Dtype = "float32",
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[EmbeddingSet, dict[str, Any]]:
    """Embed every row of ``manifest`` into ``out_dir`` (reused when the identity matches).

    Returns the set and ``{"reused": bool, "images": n, "seconds": wall, "images_per_s": r}``.
    """
    if dtype not in ("float32", "float16"):
        raise ConfigError(f"embedding dtype must be float32 or float16, not {dtype!r}")
    records = list(manifest)
    if not records:
        raise DatasetError("no images to embed")
    out_dir = Path(out_dir)
    identity = _identity(encoder, records, dtype)
    if _matches(out_dir, identity):
        return EmbeddingSet(out_dir), {"reused": True, "images": len(records)}
    start = time.perf_counter()
    vectors = _compute(encoder, records, batch_size, progress).astype(dtype)
    seconds = time.perf_counter() - start
    _write(out_dir, vectors, records, {**identity, "dim": int(vectors.shape[1])})
    stats = {"reused": False, "images": len(records), "seconds": seconds}
    return EmbeddingSet(out_dir), {**stats, "images_per_s": len(records) / max(seconds, 1e-9)}


def cached_embeddings(encoder: Encoder, manifest: Manifest, cache_root: str | Path) -> EmbeddingSet:
    """Embeddings in ``cache_root/<identity hash>/``, computed on the first call only."""
    identity = _identity(encoder, list(manifest), "float32")
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return embed(encoder, manifest, Path(cache_root) / key)[0]


def _identity(encoder: Encoder, records: list[Record], dtype: str) -> dict[str, Any]:
    return {
        "model": encoder.name,
        "weights_sha256": encoder.weights_sha256,
        "preprocessing": encoder.preprocessing.model_dump(mode="json"),
        "data_fingerprint": data_fingerprint(records),
        "images": len(records),
        "dtype": dtype,
        "embedding": "forward_head(forward_features(x), pre_logits=True)",
    }


def _matches(out_dir: Path, identity: dict[str, Any]) -> bool:
    try:
        found = json.loads((out_dir / "identity.json").read_text())
    except (OSError, ValueError):
        return False
    return {k: found.get(k) for k in identity} == identity


def _compute(
    encoder: Encoder,
    records: list[Record],
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> np.ndarray:
    from medlens.training.data import load_images

    model = encoder.model.eval()
    parts = []
    for start in range(0, len(records), batch_size):
        images = load_images([r.path for r in records[start : start + batch_size]])
        batch = torch.stack([encoder.preprocessing(image) for image in images])
        parts.append(embed_tensors(model, batch).numpy())
        if progress is not None:
            progress(min(start + batch_size, len(records)), len(records))
    return np.concatenate(parts)


def _write(out_dir: Path, vectors: np.ndarray, records: list[Record], identity: dict) -> None:
    """Vectors and rows first, the identity (the completeness marker) last."""
    (out_dir / "identity.json").unlink(missing_ok=True)
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    atomic_write_bytes(out_dir / "embeddings.npy", buffer.getvalue())
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(ROW_COLUMNS)
    for r in records:
        writer.writerow([r.path, r.label, r.split, r.patient_id])
    atomic_write_text(out_dir / "rows.csv", text.getvalue())
    atomic_write_text(out_dir / "identity.json", json.dumps(identity, indent=2) + "\n")
