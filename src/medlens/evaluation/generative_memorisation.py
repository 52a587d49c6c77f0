"""Memorisation check: each synthetic image's nearest training image, flagged by a rule.

In feature space and in pixel space (RMS difference per pixel, images in [0, 1]); the
threshold of each space comes from the training set itself (:data:`MEMORISATION_RULE`).
Indices point into the arrays given, so a report can show the pairs side by side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medlens.errors import EvaluationError
from medlens.evaluation.generative_features import as_image_batch

__all__ = ["MEMORISATION_RULE", "memorisation", "nearest_neighbours"]

MEMORISATION_RULE = (
    "A sample is flagged when its nearest training image is no farther than percentile "
    "{percentile:g} of the training images' leave-one-out nearest-neighbour distances (in "
    "that space): closer to a training image than all but {percentile:g}% of training "
    "images are to each other."
)


def nearest_neighbours(
    queries: ArrayLike, reference: ArrayLike, *, exclude_self: bool = False, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Index and Euclidean distance of each query's nearest reference row.

    ``exclude_self``: queries are the reference itself; a row is not its own neighbour.
    """
    q, r = _flat(queries), _flat(reference)
    index, distance = np.empty(len(q), np.int64), np.empty(len(q))
    r_sq = (r**2).sum(1)
    for start in range(0, len(q), chunk):
        block = squared_distances(q[start : start + chunk], r, r_sq)
        if exclude_self:
            rows = np.arange(block.shape[0])
            block[rows, start + rows] = np.inf
        index[start : start + chunk] = block.argmin(1)
        distance[start : start + chunk] = np.sqrt(block.min(1))
    return index, distance


def memorisation(
    train_features: ArrayLike,
    fake_features: ArrayLike,
    train_images: ArrayLike,
    fake_images: ArrayLike,
    *,
    percentile: float = 1.0,
    max_reference: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """Each sample's nearest training image in feature and pixel space, flagged by
    :data:`MEMORISATION_RULE`; ``max_reference`` training rows (seeded) set the threshold.

    Returns per space ``{"threshold", "nearest_index", "distance", "flagged", "rate"}``
    (indices into the training set; pixel distances are RMS differences per pixel, images
    in [0, 1]) and ``flagged`` / ``rate`` for either space.
    """
    train_px = _pixels(train_images)
    fake_px = _pixels(fake_images, like=train_px.shape[1:])
    rng = np.random.default_rng(seed)
    spaces = {
        "feature": (as_features(train_features, "train"), as_features(fake_features, "fake")),
        "pixel": (_rms(train_px), _rms(fake_px)),
    }
    out: dict[str, Any] = {
        "percentile": percentile,
        "rule": MEMORISATION_RULE.format(percentile=percentile),
    }
    for space, (train, fake) in spaces.items():
        out[space] = _memorisation_space(train, fake, percentile, max_reference, rng)
    flagged = np.asarray(out["feature"]["flagged"]) | np.asarray(out["pixel"]["flagged"])
    out["flagged"] = flagged.tolist()
    out["rate"] = float(flagged.mean())
    return out


def _memorisation_space(
    train: np.ndarray, fake: np.ndarray, percentile: float, max_ref: int, rng: Any
) -> dict[str, Any]:
    queries = rng.choice(len(train), min(max_ref, len(train)), replace=False)
    loo = _leave_one_out(train, queries)
    threshold = float(np.percentile(loo, percentile))
    index, distance = nearest_neighbours(fake, train)
    flagged = distance <= threshold
    return {
        "threshold": threshold,
        "nearest_index": index.tolist(),
        "distance": distance.tolist(),
        "flagged": flagged.tolist(),
        "rate": float(flagged.mean()),
    }


def _leave_one_out(train: np.ndarray, queries: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Distance from each ``train[queries]`` row to its nearest other training row."""
    r_sq = (train**2).sum(1)
    out = np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        rows = queries[start : start + chunk]
        block = squared_distances(train[rows], train, r_sq)
        block[np.arange(len(rows)), rows] = np.inf
        out[start : start + chunk] = np.sqrt(block.min(1))
    return out


def as_features(values: ArrayLike, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or len(array) < 2:
        raise EvaluationError(f"{what} features must be (N >= 2, D), got {array.shape}")
    if not np.isfinite(array).all():
        raise EvaluationError(f"{what} features hold NaN or infinite values")
    return array


def _flat(values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array.reshape(len(array), -1)


def _pixels(images: ArrayLike, like: tuple[int, ...] | None = None) -> np.ndarray:
    """Images at the training images' channels and size (grey mean, bilinear resize)."""
    array = as_image_batch(images)
    if like is None or array.shape[1:] == tuple(like):
        return array
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(array)
    if x.shape[1] != like[0]:
        x = x.mean(1, keepdim=True).expand(-1, like[0], -1, -1)
    if tuple(x.shape[-2:]) != tuple(like[1:]):
        x = F.interpolate(x, size=tuple(like[1:]), mode="bilinear", antialias=True)
    return x.contiguous().numpy()


def _rms(images: np.ndarray) -> np.ndarray:
    """Flattened images scaled so that Euclidean distances are RMS pixel differences."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    return flat / np.sqrt(flat.shape[1])


def squared_distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    return np.maximum((a**2).sum(1)[:, None] + b_sq[None] - 2 * a @ b.T, 0.0)
