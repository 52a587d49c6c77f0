"""Similar-case search: the nearest training cases of an image, by embedding cosine similarity.

The index of a run is built once into ``<run>/similar/``: the training split's embeddings
(:mod:`medlens.embeddings`), small thumbnails rendered from the preprocessed pixels, and,
above :data:`FAISS_THRESHOLD` cases, a FAISS inner-product index. Search is exact: numpy for
small sets, FAISS's flat index beyond. Results carry a training case's position, label and
similarity only: never its file name, patient ID or any header field.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from medlens.errors import DatasetError
from medlens.training.checkpoint import atomic_write_bytes

if TYPE_CHECKING:
    from medlens.embeddings import EmbeddingSet, Encoder
    from medlens.io import Image

__all__ = ["FAISS_THRESHOLD", "SimilarCase", "SimilarIndex"]

FAISS_THRESHOLD = 20_000
THUMBNAIL = 64
INDEX_DIR = "similar"


@dataclass(frozen=True)
class SimilarCase:
    """One neighbour: its rank, index in the training set, label and cosine similarity."""

    rank: int
    case: int
    label: str
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SimilarIndex:
    """The training cases of a run, searchable by image (see the module docstring)."""

    def __init__(self, encoder: Encoder, embeddings: EmbeddingSet, folder: Path) -> None:
        self.encoder, self.folder = encoder, folder
        self.labels = [row["label"] for row in embeddings.rows]
        self.vectors = _normalised(np.asarray(embeddings.vectors, dtype=np.float32))
        self.thumbnails: np.ndarray = np.load(folder / "thumbnails.npy", mmap_mode="r")
        self._faiss = _read_faiss(folder / "index.faiss")

    @classmethod
    def build(cls, run_dir: str | Path, *, faiss_threshold: int = FAISS_THRESHOLD) -> SimilarIndex:
        """The run's index, built on the first call (the same identity: reused)."""
        from medlens.data import load_manifest
        from medlens.embeddings import embed, encoder_from_run

        run_dir = Path(run_dir)
        train = load_manifest(run_dir / "manifest.csv").split("train")
        if len(train) == 0:
            raise DatasetError(f"{run_dir}: the run has no training cases to search")
        encoder = encoder_from_run(run_dir)
        folder = run_dir / INDEX_DIR
        embeddings, stats = embed(encoder, train, folder)
        if not stats["reused"] or not (folder / "thumbnails.npy").is_file():
            _write_array(folder / "thumbnails.npy", _thumbnails(encoder, list(train)))
        faiss_file = folder / "index.faiss"
        if len(embeddings) > faiss_threshold and (not stats["reused"] or not faiss_file.exists()):
            _write_faiss(faiss_file, _normalised(np.asarray(embeddings.vectors, np.float32)))
        elif len(embeddings) <= faiss_threshold:
            faiss_file.unlink(missing_ok=True)
        return cls(encoder, embeddings, folder)

    @property
    def backend(self) -> str:
        return "faiss" if self._faiss is not None else "numpy"

    def search(self, image: Image, k: int = 5) -> list[SimilarCase]:
        """The ``k`` most similar training cases of ``image``, most similar first."""
        from medlens.embeddings import embed_tensors

        query = embed_tensors(self.encoder.model, self.encoder.preprocessing(image)[None])
        return self.search_vector(query.numpy()[0], k)

    def search_vector(self, vector: np.ndarray, k: int = 5) -> list[SimilarCase]:
        """As :meth:`search`, for an embedding vector."""
        k = max(1, min(int(k), len(self.labels)))
        query = _normalised(np.asarray(vector, dtype=np.float32)[None])
        if self._faiss is not None:
            scores, found = self._faiss.search(query, k)
            pairs = list(zip(found[0].tolist(), scores[0].tolist(), strict=True))
        else:
            sims = self.vectors @ query[0]
            top = np.argsort(-sims, kind="stable")[:k]
            pairs = [(int(i), float(sims[i])) for i in top]
        return [
            SimilarCase(rank, case, self.labels[case], round(score, 6))
            for rank, (case, score) in enumerate(pairs, start=1)
        ]

    def thumbnail_png(self, case: int, size: int = 96) -> bytes:
        """A PNG of training case ``case``, drawn from its pixels only (no header, no name)."""
        from medlens.evaluation.plots import image_png

        return image_png(np.asarray(self.thumbnails[case]), size=size)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _thumbnails(encoder: Encoder, records: list[Any], chunk: int = 256) -> np.ndarray:
    """(N, 64, 64) uint8: the first channel of each preprocessed image (mid slice of 3D)."""
    from medlens.training.data import load_images

    parts = []
    for start in range(0, len(records), chunk):
        images = load_images([r.path for r in records[start : start + chunk]])
        tensors = [encoder.preprocessing(image)[0] for image in images]
        planes = torch.stack([t[t.shape[0] // 2] if t.ndim == 3 else t for t in tensors])
        small = torch.nn.functional.interpolate(planes[:, None].float(), size=(THUMBNAIL,) * 2)
        parts.append(_to_uint8(small[:, 0].numpy()))
    return np.concatenate(parts)


def _to_uint8(planes: np.ndarray) -> np.ndarray:
    low = planes.min(axis=(1, 2), keepdims=True)
    high = planes.max(axis=(1, 2), keepdims=True)
    return np.round(255 * (planes - low) / np.maximum(high - low, 1e-6)).astype(np.uint8)


def _write_array(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())


def _write_faiss(path: Path, vectors: np.ndarray) -> None:
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    atomic_write_bytes(path, faiss.serialize_index(index).tobytes())


def _read_faiss(path: Path) -> Any:
    if not path.is_file():
        return None
    import faiss

    return faiss.deserialize_index(np.frombuffer(path.read_bytes(), dtype=np.uint8))
