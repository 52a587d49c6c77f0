"""Segmentation metrics: Dice and 95% Hausdorff distance per class, per case and summarised.

:func:`case_metrics` scores one predicted label map against the truth (MONAI's
``compute_dice`` and ``compute_hausdorff_distance``, distances in mm with the voxel spacing).
Empty structures follow nnU-Net's convention: absent in both, Dice 1 and HD95 0; absent in one
of the two, Dice 0 and HD95 undefined (NaN, left out of the means and counted instead).
:func:`summarize_cases` gives the mean of each metric per class and over classes with
percentile bootstrap CIs over cases (:func:`medlens.evaluation.bootstrap.bootstrap`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medlens.errors import EvaluationError
from medlens.evaluation.bootstrap import DEFAULT_RESAMPLES, bootstrap, percentile_interval

__all__ = ["SEG_METRICS", "case_metrics", "evaluate_segmentations", "summarize_cases"]

SEG_METRICS = ("dice", "hd95")


def case_metrics(
    prediction: ArrayLike,
    truth: ArrayLike,
    *,
    num_classes: int,
    spacing: Sequence[float] | None = None,
) -> dict[str, list[float]]:
    """``{"dice": [...], "hd95": [...]}`` for the foreground classes 1..K-1 of one case.

    ``prediction`` and ``truth`` are label maps of class indices with the same shape;
    ``spacing`` (mm per voxel, array order) makes HD95 a physical distance.
    """
    pred, true = np.asarray(prediction), np.asarray(truth)
    if pred.shape != true.shape:
        raise EvaluationError(f"prediction shape {pred.shape} differs from truth {true.shape}")
    if spacing is not None and len(spacing) != true.ndim:
        raise EvaluationError(f"spacing {tuple(spacing)} does not fit a {true.ndim}D label map")
    dice, hd95 = [], []
    for k in range(1, num_classes):
        p, t = pred == k, true == k
        if not p.any() and not t.any():
            dice.append(1.0)
            hd95.append(0.0)
        elif not p.any() or not t.any():
            dice.append(0.0)
            hd95.append(float("nan"))
        else:
            d, h = _monai_scores(p, t, spacing)
            dice.append(d)
            hd95.append(h)
    return {"dice": dice, "hd95": hd95}


def _monai_scores(
    pred: np.ndarray, true: np.ndarray, spacing: Sequence[float] | None
) -> tuple[float, float]:
    import torch
    from monai.metrics import compute_dice, compute_hausdorff_distance

    def onehot(mask: np.ndarray) -> torch.Tensor:
        fg = torch.from_numpy(mask)[None, None].float()
        return torch.cat([1 - fg, fg], dim=1)

    y_pred, y = onehot(pred), onehot(true)
    dice = compute_dice(y_pred, y, include_background=False)
    with warnings.catch_warnings():  # MONAI 1.5+ passes a deprecated argument to itself
        warnings.simplefilter("ignore", FutureWarning)
        hd95 = compute_hausdorff_distance(
            y_pred,
            y,
            include_background=False,
            percentile=95,
            spacing=list(spacing) if spacing is not None else None,
        )
    return float(dice.reshape(-1)[0]), float(hd95.reshape(-1)[0])


def summarize_cases(
    cases: Sequence[dict[str, list[float]]],
    class_names: Sequence[str],
    *,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Means with CIs: ``{"metrics": {mean_dice, mean_hd95}, "per_class": {name: {...}}}``.

    ``cases`` are :func:`case_metrics` outputs; ``class_names`` the foreground classes.
    A case-level mean over classes skips NaN classes; CIs resample cases.
    """
    if not cases:
        raise EvaluationError("no cases to summarise")
    table = {m: np.array([case[m] for case in cases], dtype=float) for m in SEG_METRICS}
    if table["dice"].shape[1] != len(class_names):
        raise EvaluationError(
            f"{table['dice'].shape[1]} classes scored but {len(class_names)} class names given"
        )
    columns = {
        f"{m}/{name}": table[m][:, j] for m in SEG_METRICS for j, name in enumerate(class_names)
    }
    columns |= {f"mean_{m}": _row_nanmean(table[m]) for m in SEG_METRICS}
    samples = _bootstrap_means(columns, n_bootstrap, seed)

    def stat(key: str) -> dict[str, float | None]:
        return _with_ci(columns[key], samples.get(key), confidence)

    per_class = {
        name: {
            **{m: stat(f"{m}/{name}") for m in SEG_METRICS},
            "hd95_undefined_cases": int(np.isnan(table["hd95"][:, j]).sum()),
        }
        for j, name in enumerate(class_names)
    }
    return {
        "metrics": {f"mean_{m}": stat(f"mean_{m}") for m in SEG_METRICS},
        "per_class": per_class,
        "bootstrap": {
            "n_resamples": n_bootstrap,
            "seed": seed,
            "confidence": confidence,
            "method": "percentile bootstrap over cases",
        },
    }


def _row_nanmean(matrix: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(matrix)
    sums = np.where(valid, matrix, 0.0).sum(axis=1)
    counts = valid.sum(axis=1)
    return np.divide(sums, counts, out=np.full(len(matrix), np.nan), where=counts > 0)


def _weighted_nanmean(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(values)
    total = weights @ np.where(valid, values, 0.0)
    count = weights @ valid.astype(float)
    return np.divide(total, count, out=np.full(len(weights), np.nan), where=count > 0)


def _bootstrap_means(columns: dict[str, np.ndarray], n: int, seed: int) -> dict[str, np.ndarray]:
    if n == 0:
        return {}
    strata = np.zeros(len(next(iter(columns.values()))), dtype=int)
    return bootstrap(
        lambda w: {key: _weighted_nanmean(w, values) for key, values in columns.items()},
        strata,
        n_resamples=n,
        seed=seed,
    )


def _with_ci(
    values: np.ndarray, samples: np.ndarray | None, confidence: float
) -> dict[str, float | None]:
    valid = values[~np.isnan(values)]
    value = float(valid.mean()) if len(valid) else None
    if samples is None or value is None:
        return {"value": value, "ci_low": None, "ci_high": None}
    drawn = samples[~np.isnan(samples)]
    if not len(drawn):
        return {"value": value, "ci_low": None, "ci_high": None}
    low, high = percentile_interval(drawn, confidence)
    return {"value": value, "ci_low": float(low), "ci_high": float(high)}


def evaluate_segmentations(
    pairs: Sequence[tuple[str, ArrayLike, ArrayLike, Sequence[float] | None]],
    class_names: Sequence[str],
    *,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The ``metrics.json`` content for ``(case, prediction, truth, spacing)`` label maps.

    ``class_names`` include the background first (index 0), as in a model card.
    """
    names = list(class_names)
    if len(names) < 2:
        raise EvaluationError("segmentation needs a background and at least one class")
    cases = []
    for case, prediction, truth, spacing in pairs:
        scores = case_metrics(prediction, truth, num_classes=len(names), spacing=spacing)
        cases.append({"case": case, **scores})
    summary = summarize_cases(
        cases, names[1:], n_bootstrap=n_bootstrap, seed=seed, confidence=confidence
    )
    return {
        "schema_version": 1,
        "task": "segmentation",
        "class_names": names[1:],
        "n_cases": len(cases),
        **summary,
        "cases": [
            {
                "case": c["case"],
                **{m: dict(zip(names[1:], map(_finite, c[m]), strict=True)) for m in SEG_METRICS},
            }
            for c in cases
        ],
    }


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
