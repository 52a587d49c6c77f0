"""Evaluation of generative models: how close, how varied and how novel synthetic images are.

>>> m = generation_metrics(real_test, y_test, fake, y_fake, extractor="lite0",
...                        classes=("normal", "pneumonia"), train=real_train,
...                        train_labels=y_train, seed=0)                   # doctest: +SKIP

Images are ``(N, C, H, W)`` float32 in ``[0, 1]``; labels are class indices into
``classes``. Overall and per class:

* ``fid``: Fréchet distance between Gaussian fits of real and synthetic features (MONAI's
  ``FIDMetric``); biased upwards at small ``n``: compare figures at equal sample counts.
* ``kid``: kernel inception distance, the unbiased MMD² with the cubic polynomial kernel
  ``(x·y / d + 1)³``, mean and std over random subsets (Bińkowski et al. 2018).
* ``precision`` / ``recall``: k-NN manifold estimates (Kynkäänniemi et al. 2019): the share
  of synthetic samples inside the real manifold, and of real samples inside the synthetic one.
* ``ms_ssim``: mean MS-SSIM between random pairs of synthetic images of a class (lower is
  more varied; 1 means duplicates), beside the same figure for the real images.
* memorisation: each sample's nearest training image in feature and pixel space, flagged
  when closer than the ``percentile``-th percentile (default 1st) of the training images'
  own leave-one-out nearest-neighbour distances (:data:`MEMORISATION_RULE`).

:func:`tstr_auc` (train on synthetic, test on real) lives in :mod:`.generative_tstr`.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medlens.errors import EvaluationError
from medlens.evaluation.generative_data import evaluate_generation, read_image_folder, real_splits
from medlens.evaluation.generative_features import (
    FEATURE_EXTRACTORS,
    FeatureExtractor,
    as_image_batch,
    feature_extractor,
    register_feature_extractor,
)
from medlens.evaluation.generative_memorisation import (
    MEMORISATION_RULE,
    as_features,
    memorisation,
    nearest_neighbours,
    squared_distances,
)
from medlens.evaluation.generative_tstr import tstr_auc

__all__ = [
    "FEATURE_EXTRACTORS",
    "FeatureExtractor",
    "MEMORISATION_RULE",
    "MsSsimSettings",
    "as_image_batch",
    "evaluate_generation",
    "feature_extractor",
    "frechet_distance",
    "generation_metrics",
    "kernel_inception_distance",
    "memorisation",
    "ms_ssim_diversity",
    "ms_ssim_settings",
    "nearest_neighbours",
    "precision_recall",
    "read_image_folder",
    "real_splits",
    "register_feature_extractor",
    "tstr_auc",
]

SCHEMA_VERSION = 1
_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003


# -- distribution distances ------------------------------------------------------------------
def frechet_distance(real_features: ArrayLike, fake_features: ArrayLike) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (MONAI ``FIDMetric``).

    When the covariance product is too singular for a real square root (fewer samples than
    dimensions), both covariances get ``1e-6 x mean variance`` on the diagonal.
    """
    import torch
    from monai.metrics import FIDMetric
    from monai.metrics.fid import _cov, compute_frechet_distance

    real, fake = as_features(real_features, "real"), as_features(fake_features, "fake")
    y, y_pred = torch.from_numpy(real), torch.from_numpy(fake)
    with _quiet_monai():
        try:
            value = float(FIDMetric()(y_pred, y))
        except ValueError:  # imaginary part too large: regularise and retry
            sx, sy = _cov(y_pred, rowvar=False), _cov(y, rowvar=False)
            eps = 1e-6 * float(torch.diagonal(sx).mean() + torch.diagonal(sy).mean()) / 2
            eye = torch.eye(sx.shape[0], dtype=sx.dtype)
            mx, my = y_pred.mean(0), y.mean(0)
            value = float(compute_frechet_distance(mx, sx + eps * eye, my, sy + eps * eye))
    return max(value, 0.0)


@contextlib.contextmanager
def _quiet_monai() -> Iterator[None]:
    """MONAI's FID passes SciPy's deprecated ``disp`` argument, and SciPy warns (MONAI
    prints) on singular products, usual when samples are fewer than feature dimensions;
    keep them out of our warnings and stdout (the report notes ``n`` against ``D``)."""
    from scipy.linalg import LinAlgWarning

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", "The `disp` argument", DeprecationWarning)
        warnings.filterwarnings("ignore", "Matrix is singular", LinAlgWarning)
        yield


def kernel_inception_distance(
    real_features: ArrayLike,
    fake_features: ArrayLike,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Unbiased MMD² with the kernel ``(x·y / d + 1)³`` over random subsets: mean and std.

    Subsets hold ``subset_size`` rows, at most half the smaller set (so that they differ).
    """
    real, fake = as_features(real_features, "real"), as_features(fake_features, "fake")
    m = max(2, min(subset_size, min(len(real), len(fake)) // 2))
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(within - 2 * kxy.mean())
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "subsets": subsets,
        "subset_size": m,
    }


def precision_recall(
    real_features: ArrayLike,
    fake_features: ArrayLike,
    *,
    k: int = 3,
    max_samples: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """k-NN manifold precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its points, of radius the distance
    to the point's ``k``-th nearest neighbour in the same set. Precision: the share of
    synthetic points inside the real manifold; recall: of real points inside the synthetic.
    """
    rng = np.random.default_rng(seed)
    real = _subsample(as_features(real_features, "real"), max_samples, rng)
    fake = _subsample(as_features(fake_features, "fake"), max_samples, rng)
    if min(len(real), len(fake)) <= k:
        raise EvaluationError(f"precision/recall with k={k} needs more than {k} samples per set")
    real_radii, fake_radii = _kth_distance(real, k), _kth_distance(fake, k)
    return {
        "precision": float(np.mean(_inside(fake, real, real_radii))),
        "recall": float(np.mean(_inside(real, fake, fake_radii))),
        "k": k,
    }


# -- diversity ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class MsSsimSettings:
    """Scales, kernel and weights of MS-SSIM that fit the image size, with the reason."""

    scales: int
    kernel_size: int
    kernel_sigma: float
    weights: tuple[float, ...]
    note: str


def ms_ssim_settings(height: int, width: int) -> MsSsimSettings:
    """The standard 5 scales with an 11-px kernel where they fit, else fewer and smaller.

    Rule: the most scales (5 down to 1) and, for that, the largest kernel of 11, 7 or 5 px
    (3 px at one scale as the last resort) such that the coarsest scale (the side halved
    ``scales - 1`` times) is still at least the kernel and MONAI's own size check passes.
    The Gaussian sigma keeps the standard ratio 1.5 / 11; the weights are the standard ones
    of the first scales, renormalised. 28 px: 3 scales, 7 px kernel.
    """
    side = min(height, width)
    candidates = [(s, k) for s in (5, 4, 3, 2, 1) for k in (11, 7, 5)] + [(1, 3)]
    for scales, kernel in candidates:
        monai_div = max(1, scales - 1) ** 2  # MONAI's check divides by (scales - 1) squared
        if side // 2 ** (scales - 1) >= kernel and side // monai_div > kernel - 1:
            weights = np.asarray(_MS_SSIM_WEIGHTS[:scales])
            note = (
                "standard MS-SSIM (5 scales, 11 px kernel)"
                if (scales, kernel) == (5, 11)
                else f"{side} px is too small for the standard 5 scales with an 11 px "
                f"kernel: {scales} scale(s), {kernel} px kernel, weights renormalised"
            )
            return MsSsimSettings(
                scales,
                kernel,
                round(1.5 * kernel / 11, 4),
                tuple(float(w) for w in weights / weights.sum()),
                note,
            )
    raise EvaluationError(f"images of {height}x{width} px are too small for MS-SSIM")


def ms_ssim_diversity(
    images: ArrayLike, *, n_pairs: int = 200, seed: int = 0
) -> dict[str, Any] | None:
    """Mean MS-SSIM between random distinct pairs of ``images`` (None for fewer than 2)."""
    import torch
    from monai.metrics import MultiScaleSSIMMetric

    array = as_image_batch(images)
    if len(array) < 2:
        return None
    settings = ms_ssim_settings(*array.shape[-2:])
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(array), n_pairs)
    second = (first + rng.integers(1, len(array), n_pairs)) % len(array)  # never the same
    metric = MultiScaleSSIMMetric(
        spatial_dims=2,
        data_range=1.0,
        kernel_size=settings.kernel_size,
        kernel_sigma=settings.kernel_sigma,
        weights=settings.weights,
        reduction="none",
    )
    x, y = torch.from_numpy(array[first]), torch.from_numpy(array[second])
    values = metric(x, y).reshape(-1).double().numpy()
    return {"mean": float(values.mean()), "std": float(values.std()), "n_pairs": n_pairs}


# -- everything at once --------------------------------------------------------------------------
def generation_metrics(
    real: ArrayLike,
    real_labels: ArrayLike,
    fake: ArrayLike,
    fake_labels: ArrayLike,
    *,
    extractor: str | FeatureExtractor = "lite0",
    classes: Sequence[str],
    seed: int = 0,
    train: ArrayLike | None = None,
    train_labels: ArrayLike | None = None,
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    ms_ssim_pairs: int = 200,
    memorisation_percentile: float = 1.0,
    max_samples: int = 5000,
    features: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """FID, KID, precision/recall and MS-SSIM overall and per class, plus memorisation.

    ``real`` is held-out real data (the test split) to compare with; ``train`` the
    generator's training images for the memorisation check (default: ``real``, noted).
    ``features`` may hold precomputed ``{"real", "fake", "train"}`` features of the same
    extractor (a benchmark reuses them across comparisons). JSON-ready.
    """
    extract = feature_extractor(extractor)
    real_x, fake_x = as_image_batch(real), as_image_batch(fake)
    real_y = _labels(real_labels, len(real_x), classes, "real")
    fake_y = _labels(fake_labels, len(fake_x), classes, "fake")
    notes = []
    if train is None:
        train_x, train_y = real_x, real_y
        notes.append("no training set given: memorisation is checked against the real set")
    else:
        train_x = as_image_batch(train)
        train_y = (
            None if train_labels is None else _labels(train_labels, len(train_x), classes, "train")
        )
    feats = dict(features or {})
    for key, images in (("real", real_x), ("fake", fake_x), ("train", train_x)):
        if key not in feats:
            feats[key] = feats["real"] if key == "train" and train is None else extract(images)
    options = {
        "k": k,
        "kid_subsets": kid_subsets,
        "kid_subset_size": kid_subset_size,
        "ms_ssim_pairs": ms_ssim_pairs,
        "max_samples": max_samples,
        "seed": seed,
    }
    memo = memorisation(
        feats["train"],
        feats["fake"],
        train_x,
        fake_x,
        percentile=memorisation_percentile,
        seed=seed,
    )
    flagged = np.asarray(memo["flagged"])
    overall = _group(feats["real"], feats["fake"], real_x, fake_x, real_y, fake_y, options)
    overall["memorisation_rate"] = memo["rate"]
    per_class = _per_class(feats, real_x, fake_x, real_y, fake_y, flagged, classes, options)
    settings = ms_ssim_settings(*fake_x.shape[-2:])
    notes += _size_notes(feats["fake"].shape[1], real_y, fake_y, classes)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "generation",
        "extractor": getattr(extract, "name", type(extract).__name__),
        "feature_dim": int(feats["fake"].shape[1]),
        "classes": list(classes),
        "seed": seed,
        "counts": {
            "real": _counts(real_y, classes),
            "fake": _counts(fake_y, classes),
            "train": {"all": len(train_x)} if train_y is None else _counts(train_y, classes),
        },
        "overall": overall,
        "per_class": per_class,
        "memorisation": memo,
        "ms_ssim_settings": asdict(settings),
        "options": options,
        "notes": notes,
    }


def _per_class(
    feats: dict[str, np.ndarray],
    real_x: np.ndarray,
    fake_x: np.ndarray,
    real_y: np.ndarray,
    fake_y: np.ndarray,
    flagged: np.ndarray,
    classes: Sequence[str],
    options: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    out = {}
    for c, name in enumerate(classes):
        r, f = real_y == c, fake_y == c
        entry = _group(
            feats["real"][r], feats["fake"][f], real_x[r], fake_x[f], None, None, options
        )
        entry["memorisation_rate"] = float(flagged[f].mean()) if f.any() else None
        out[name] = entry
    return out


def _size_notes(
    dim: int, real_y: np.ndarray, fake_y: np.ndarray, classes: Sequence[str]
) -> list[str]:
    fewest = min(min(_counts(y, classes).values()) for y in (real_y, fake_y))
    if fewest >= dim:
        return []
    return [
        f"a class has {fewest} images for {dim}-d features: its covariance is rank-deficient "
        "and its FID is biased upwards"
    ]


def _group(
    real_f: np.ndarray,
    fake_f: np.ndarray,
    real_x: np.ndarray,
    fake_x: np.ndarray,
    real_y: np.ndarray | None,
    fake_y: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The metrics of one group (all, or one class); None where too few samples."""
    n_real, n_fake, seed = len(real_f), len(fake_f), options["seed"]
    entry: dict[str, Any] = {"n_real": n_real, "n_fake": n_fake}
    enough = min(n_real, n_fake) > options["k"]
    entry["fid"] = frechet_distance(real_f, fake_f) if enough else None
    entry["kid"] = (
        kernel_inception_distance(
            real_f,
            fake_f,
            subsets=options["kid_subsets"],
            subset_size=options["kid_subset_size"],
            seed=seed,
        )
        if enough
        else None
    )
    pr = (
        precision_recall(
            real_f, fake_f, k=options["k"], max_samples=options["max_samples"], seed=seed
        )
        if enough
        else {}
    )
    entry["precision"], entry["recall"] = pr.get("precision"), pr.get("recall")
    pairs = options["ms_ssim_pairs"]
    entry["ms_ssim"] = _class_diversity(fake_x, fake_y, pairs, seed)
    entry["ms_ssim_real"] = _class_diversity(real_x, real_y, pairs, seed)
    return entry


def _class_diversity(
    images: np.ndarray, labels: np.ndarray | None, pairs: int, seed: int
) -> dict[str, Any] | None:
    """MS-SSIM diversity of one class, or (labels given) the mean over classes."""
    if labels is None:
        return ms_ssim_diversity(images, n_pairs=pairs, seed=seed)
    parts = [
        ms_ssim_diversity(images[labels == c], n_pairs=pairs, seed=seed) for c in np.unique(labels)
    ]
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return {
        "mean": float(np.mean([p["mean"] for p in parts])),
        "std": float(np.mean([p["std"] for p in parts])),
        "n_pairs": int(sum(p["n_pairs"] for p in parts)),
        "within": "class (mean over classes)",
    }


# -- helpers --------------------------------------------------------------------------------
def _labels(values: ArrayLike, n: int, classes: Sequence[str], what: str) -> np.ndarray:
    labels = np.asarray(values).reshape(-1).astype(np.int64)
    if len(labels) != n:
        raise EvaluationError(f"{what}: {len(labels)} labels for {n} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise EvaluationError(f"{what}: labels must be class indices 0..{len(classes) - 1}")
    return labels


def _counts(labels: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    return {name: int((labels == c).sum()) for c, name in enumerate(classes)}


def _kth_distance(x: np.ndarray, k: int, chunk: int = 512) -> np.ndarray:
    """Distance of each row to its ``k``-th nearest other row."""
    x_sq = (x**2).sum(1)
    out = np.empty(len(x))
    for start in range(0, len(x), chunk):
        block = squared_distances(x[start : start + chunk], x, x_sq)
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = np.inf
        out[start : start + chunk] = np.sqrt(np.partition(block, k - 1, axis=1)[:, k - 1])
    return out


def _inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 512):
    """Whether each point lies in at least one ball ``(centre, radius)``."""
    c_sq = (centres**2).sum(1)
    out = np.empty(len(points), bool)
    for start in range(0, len(points), chunk):
        dist = np.sqrt(squared_distances(points[start : start + chunk], centres, c_sq))
        out[start : start + chunk] = (dist <= radii[None] * (1 + 1e-9) + 1e-12).any(1)
    return out


def _subsample(x: np.ndarray, n: int, rng: Any) -> np.ndarray:
    return x if len(x) <= n else x[np.sort(rng.choice(len(x), n, replace=False))]
