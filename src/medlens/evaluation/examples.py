"""Cases and pictures shown in the report: which to pick, and how they are carried."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medlens.evaluation import plots
from medlens.evaluation._checks import check_inputs, check_task
from medlens.evaluation.classification import Threshold, predict_labels


@dataclass(frozen=True)
class ReportImage:
    """A PNG picture with its caption (for example a Grad-CAM overlay)."""

    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class HeatmapGallery:
    """The report's explanation overlays with a note on what they show.

    ``images`` may be empty: then ``note`` says why there are none (the report prints it
    instead of leaving the section out silently).
    """

    images: Sequence[ReportImage] = ()
    note: str = ""


@dataclass(frozen=True)
class ExampleCase:
    """One evaluated case shown in the report: its picture, truth, call and probabilities."""

    png: bytes
    true_label: str
    predicted_label: str
    probabilities: Mapping[str, float] = field(default_factory=dict)
    caption: str = ""

    @property
    def correct(self) -> bool:
        return self.true_label == self.predicted_label

    @classmethod
    def from_array(cls, array: np.ndarray, **fields: Any) -> ExampleCase:
        """Build the PNG from a 2D (or RGB, or channels-first) array; see
        :func:`input_picture` for a model input (a volume, normalised channels)."""
        return cls(png=plots.image_png(array), **fields)


def input_picture(
    x: ArrayLike, mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,)
) -> np.ndarray:
    """A model input ``(C, H, W)`` or ``(C, D, H, W)`` as a 2D picture for :func:`image_png`.

    The normalisation ``(x - mean) / std`` is undone per channel. Three channels stay in
    colour (``(H, W, 3)``); otherwise the first channel is shown. A volume becomes its three
    middle slices (across axes 0, 1 and 2) side by side, ``NaN`` (drawn white) between them.
    """
    a = np.asarray(x, dtype=np.float32)
    if a.ndim not in (3, 4):
        raise ValueError(f"expected a (C, H, W) or (C, D, H, W) input, got shape {a.shape}")
    volume = a.ndim == 4
    shape = (-1,) + (1,) * (a.ndim - 1)
    a = a * np.asarray(std, np.float32).reshape(shape) + np.asarray(mean, np.float32).reshape(shape)
    a = np.moveaxis(a, 0, -1) if a.shape[0] == 3 else a[0]  # channels last, or one channel
    if volume:
        d, h, w = a.shape[:3]
        slices = [a[d // 2], a[:, h // 2], a[:, :, w // 2]]
        height = max(s.shape[0] for s in slices)
        gap = np.full((height, max(1, height // 16), *a.shape[3:]), np.nan, np.float32)
        padded = [_pad_rows(s, height) for s in slices]
        a = np.concatenate([padded[0], gap, padded[1], gap, padded[2]], axis=1)
    return a


def _pad_rows(picture: np.ndarray, height: int) -> np.ndarray:
    missing = height - picture.shape[0]
    pad = np.full((missing, *picture.shape[1:]), np.nan, np.float32)
    return np.concatenate([picture, pad], axis=0) if missing else picture


def select_examples(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    task: str = "binary",
    threshold: Threshold = 0.5,
    per_group: int = 4,
) -> dict[str, list[int]]:
    """Indices of the most confident correct and wrong cases, alternating between classes.

    Returns ``{"correct": [...], "wrong": [...]}``, at most ``per_group`` each: what the
    model gets right without doubt, and the errors it is surest about.
    """
    task_ = check_task(task)
    y, p = check_inputs(y_true, probs, task_)
    pred = predict_labels(p, task_, threshold)
    if task_ == "multiclass":
        right, margin, strata = pred == y, p.max(axis=1), y
    else:
        t = np.broadcast_to(np.asarray(0.5 if threshold is None else threshold), p.shape)
        right = (pred == y) if task_ == "binary" else (pred == y).all(axis=1)
        margin = np.abs(p - t) if task_ == "binary" else np.abs(p - t).mean(axis=1)
        strata = y if task_ == "binary" else np.zeros(len(y), dtype=int)
    return {
        "correct": _round_robin(np.flatnonzero(right), margin, strata, per_group),
        "wrong": _round_robin(np.flatnonzero(~right), margin, strata, per_group),
    }


def _round_robin(idx: np.ndarray, margin: np.ndarray, strata: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` of ``idx``, most confident first, taking one per stratum in turn."""
    queues = [
        list(idx[strata[idx] == s][np.argsort(-margin[idx][strata[idx] == s], kind="stable")])
        for s in np.unique(strata[idx])
    ]
    chosen: list[int] = []
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(int(queue.pop(0)))
    return chosen


@dataclass(frozen=True)
class HeatmapCase:
    """A case picked for the heatmap gallery: which, the class to explain, its caption.

    ``target`` is a class index, or ``None`` for the class the model predicted.
    """

    index: int
    target: int | None
    caption: str


#: What the gallery of each task shows (the report prints it above the overlays).
HEATMAP_NOTES = {
    "binary": "The most confident true positives, false positives and false negatives; "
    "each overlay explains the predicted class.",
    "multiclass": "Per class: the most confident correct call and the most confident wrong "
    "calls of that class; each overlay explains the predicted class.",
    "multilabel": "Per label: the most confident true positive and the most confident false "
    "positives of that label; each overlay explains that label.",
}


def select_heatmap_cases(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    task: str,
    class_names: Sequence[str],
    threshold: Threshold = 0.5,
    per_group: int = 3,
    max_classes: int = 12,
) -> list[HeatmapCase]:
    """The cases the heatmap gallery explains (see :data:`HEATMAP_NOTES`), most confident
    first, with the calls of :func:`~medlens.evaluation.classification.predict_labels`.

    * binary (``probs`` of the positive class): up to ``per_group`` true positives, false
      positives and false negatives.
    * multiclass: per class, the most confident correct call and the ``per_group - 1`` most
      confident wrong calls of that class (cases the model called that class).
    * multilabel: per label, the most confident true positive and the ``per_group - 1``
      most confident false positives of that label.

    Multiclass and multilabel stop after the first ``max_classes`` classes.
    """
    task_ = check_task(task)
    y, p = check_inputs(y_true, probs, task_)
    pred = predict_labels(p, task_, threshold)
    if task_ == "binary":
        groups = (
            ("true positive", (y == 1) & (pred == 1), -p),
            ("false positive", (y == 0) & (pred == 1), -p),
            ("false negative", (y == 1) & (pred == 0), p),
        )
        return [
            HeatmapCase(int(i), None, f"{name} (p={p[i]:.2f})")
            for name, mask, key in groups
            for i in _most(mask, key, per_group)
        ]
    cases = []
    for k, name in list(enumerate(class_names))[:max_classes]:
        score = p[:, k]
        multiclass = task_ == "multiclass"
        called, true = (pred == k, y == k) if multiclass else (pred[:, k] == 1, y[:, k] == 1)
        target = None if multiclass else k
        right, wrong = called & true, called & ~true
        for i in _most(right, -score, 1):
            label = "correct" if multiclass else "true positive"
            cases.append(HeatmapCase(int(i), target, f"{name}: {label} (p={score[i]:.2f})"))
        for i in _most(wrong, -score, per_group - 1):
            truth = class_names[int(y[i])] if multiclass else None
            caption = f"called {name}, truly {truth}" if truth else f"{name}: false positive"
            cases.append(HeatmapCase(int(i), target, f"{caption} (p={score[i]:.2f})"))
    return cases


def _most(mask: np.ndarray, key: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` indices where ``mask`` holds, in ascending order of ``key``."""
    idx = np.flatnonzero(mask)
    return idx[np.argsort(key[idx], kind="stable")][: max(n, 0)].tolist()
