"""Explanations for a trained run: the predictor's own preprocessing, prediction and classes.

:func:`explain_images` returns :class:`Explanation` objects (heatmap, windowed image,
prediction); :func:`save_explanation` writes the overlay PNG and the raw heatmap; :func:`gallery`
picks true positives, false positives and false negatives for the evaluation report.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medlens.errors import ConfigError, DatasetError
from medlens.explain.cam import DEFAULT_METHOD, Explainer, Method
from medlens.explain.overlay import overlay_png
from medlens.io import Image

GALLERY_CATEGORIES = ("true positive", "false positive", "false negative")


@dataclass(frozen=True)
class Explanation:
    """One image explained.

    Attributes:
        heatmap: the method's raw output on the model's input grid, values in [0, 1].
        display: the windowed image in [0, 1] for display (the original grid when the
            preprocessing only resizes, else the model's input grid).
        display_heatmap: ``heatmap`` on the grid of ``display``.
        prediction: the predictor's :class:`~medlens.inference.Prediction`.
        target: the class explained.
        method: the explanation method.
    """

    heatmap: np.ndarray
    display: np.ndarray
    display_heatmap: np.ndarray
    prediction: Any
    target: str
    method: str

    @property
    def title(self) -> str:
        probabilities = getattr(self.prediction, "probabilities", None)
        if probabilities is None:  # a segmentation
            found = self.prediction.label or "nothing"
            return f"segmented {found} | {self.method} for {self.target}"
        probability = probabilities.get(self.target, float("nan"))
        return (
            f"predicted {self.prediction.label or '(none)'} | {self.method} for {self.target} "
            f"(p={probability:.2f})"
        )

    def overlay_png(self) -> bytes:
        return overlay_png(self.display, self.display_heatmap, self.title)


@dataclass(frozen=True)
class SavedExplanation:
    """Where one explanation was written, and what it explains."""

    overlay: Path
    heatmap: Path
    label: str
    target: str
    probability: float


def explain_images(
    predictor: Any,
    images: Sequence[Image],
    *,
    method: Method = DEFAULT_METHOD,
    target: str | int | None = None,
    target_layer: str | None = None,
) -> list[Explanation]:
    """Explain each image's prediction (or the class ``target``, a name or an index)."""
    model = predictor.model
    if not isinstance(model, nn.Module):
        raise ConfigError("explanations need the PyTorch engine: Predictor.from_run(run_dir)")
    classes = list(predictor.classes)
    fixed = None if target is None else _class_index(target, classes)
    predictions = predictor.predict(list(images))
    segmenter = getattr(predictor, "family", "") == "segmentation"
    if segmenter and method not in ("gradcam", "gradcam++"):
        raise ConfigError(f"{method} does not explain a segmentation; use gradcam")
    results = []
    with Explainer(model, method, target_layer=target_layer) as explainer:
        for image, prediction in zip(images, predictions, strict=True):
            tensor = predictor.preprocessing(image).unsqueeze(0)
            if segmenter:
                index = _segmented_index(prediction, classes) if fixed is None else fixed
                heatmap = _segmenter_heatmap(explainer, tensor, index, predictor.plan)
            else:
                index = _predicted_index(prediction, classes) if fixed is None else fixed
                heatmap = explainer(tensor, index)[0]
            display, display_heatmap = _display(image, tensor[0], heatmap, predictor.preprocessing)
            results.append(
                Explanation(heatmap, display, display_heatmap, prediction, classes[index], method)
            )
    return results


def explain_files(
    run_dir: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    method: Method = DEFAULT_METHOD,
    target: str | int | None = None,
    target_layer: str | None = None,
    chunk: int = 16,
) -> list[SavedExplanation]:
    """Explain every image under ``inputs`` with the run's model; write overlays and heatmaps.

    Folders are searched recursively; a volume given to a 2D model is reduced to its middle
    slice (as ``medlens predict`` does). Files: ``<name>.<method>.png`` and ``.npy``; for a
    slice-sequence model, ``<name>.slices.png`` and ``.json`` (per-slice attention weights).
    A folder of DICOM files given to a 3D model is one series.
    """
    from medlens.data.sources import find_images
    from medlens.inference import Predictor
    from medlens.io import read_image

    predictor = Predictor.from_run(run_dir)
    paths = list(find_images(inputs, volumes=_wants_volumes(predictor)))
    if not paths:
        raise DatasetError(f"no images found in {', '.join(str(p) for p in inputs)}")
    from medlens.explain.slices import explain_slice_files, is_slice_sequence

    if is_slice_sequence(predictor.model):  # per-slice attention instead of Grad-CAM
        stems = [f"{_name_of(p)}.slices" for p in paths]
        return explain_slice_files(predictor, paths, out_dir, _unique(stems))
    results = []
    for start in range(0, len(paths), chunk):
        images = [_for_model(read_image(p), predictor) for p in paths[start : start + chunk]]
        explained = explain_images(
            predictor, images, method=method, target=target, target_layer=target_layer
        )
        for stem, item in zip(output_stems(images, method), explained, strict=True):
            png, npy = save_explanation(item, out_dir, stem)
            probabilities = getattr(item.prediction, "probabilities", {})
            probability = probabilities.get(item.target, float("nan"))
            results.append(
                SavedExplanation(png, npy, item.prediction.label, item.target, probability)
            )
    return results


def save_explanation(explanation: Explanation, out_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """Write ``<stem>.png`` (overlay) and ``<stem>.npy`` (raw heatmap) atomically."""
    from medlens.training.checkpoint import atomic_write_bytes

    out_dir = Path(out_dir)
    png, npy = out_dir / f"{stem}.png", out_dir / f"{stem}.npy"
    atomic_write_bytes(png, explanation.overlay_png())
    buffer = io.BytesIO()
    np.save(buffer, explanation.heatmap.astype(np.float32))
    atomic_write_bytes(npy, buffer.getvalue())
    return png, npy


def _wants_volumes(predictor: Any) -> bool:
    size = getattr(predictor.preprocessing, "spatial_size", None)
    return size is not None and len(size) == 3


def _name_of(path: Path) -> str:
    from medlens.data.sources import image_stem

    return image_stem(path.name)


def _unique(stems: Sequence[str]) -> list[str]:
    counts, seen, out = Counter(stems), Counter[str](), []
    for stem in stems:
        seen[stem] += 1
        out.append(f"{stem}-{seen[stem]}" if counts[stem] > 1 else stem)
    return out


def output_stems(images: Sequence[Image], method: str) -> list[str]:
    """File stems ``<input name>.<method>``, made unique with a counter when names repeat."""
    names = [_name(image, i) for i, image in enumerate(images)]
    counts, seen = Counter(names), Counter[str]()
    stems = []
    for name in names:
        seen[name] += 1
        stems.append(f"{name}-{seen[name]}" if counts[name] > 1 else name)
    return [f"{stem}.{method}" for stem in stems]


def gallery(
    predictor: Any,
    images: Sequence[Image],
    labels: Sequence[str | int],
    *,
    method: Method = DEFAULT_METHOD,
    per_category: int = 4,
    positive: str | None = None,
) -> list[tuple[str, bytes]]:
    """Overlays of the most confident true positives, false positives and false negatives.

    ``labels`` are the true classes (names or indices); ``positive`` defaults to the last
    class (the positive class of a binary run). Each overlay explains the predicted class.
    Returns ``(category, PNG bytes)`` pairs, category in :data:`GALLERY_CATEGORIES`.
    """
    classes = list(predictor.classes)
    positive = positive or classes[-1]
    if positive not in classes or len(labels) != len(images):
        raise ConfigError(f"gallery: positive class {positive!r} unknown or labels/images differ")
    truth = [classes[v] if isinstance(v, int) else str(v) for v in labels]
    predictions = predictor.predict(list(images))
    chosen: list[tuple[str, int]] = []
    for category in GALLERY_CATEGORIES:
        members = [
            i
            for i, (t, p) in enumerate(zip(truth, predictions, strict=True))
            if _category(positive in t.split("|"), positive in p.label.split("|")) == category
        ]
        confidence = [predictions[i].probabilities[positive] for i in members]
        order = np.argsort(confidence, kind="stable")
        ranked = order if category == "false negative" else order[::-1]
        chosen += [(category, members[k]) for k in ranked[:per_category]]
    picked = [images[i] for _, i in chosen]
    explained = explain_images(predictor, picked, method=method)
    return [(category, e.overlay_png()) for (category, _), e in zip(chosen, explained, strict=True)]


def _for_model(image: Image, predictor: Any) -> Image:
    """The middle slice of a volume given to a 2D model."""
    size = getattr(predictor.preprocessing, "spatial_size", None)
    if image.ndim == 3 and size is not None and len(size) == 2:
        return image.with_array(image.array[image.array.shape[0] // 2], spacing=image.spacing[1:])
    return image


def _category(is_positive: bool, called_positive: bool) -> str | None:
    if called_positive:
        return "true positive" if is_positive else "false positive"
    return "false negative" if is_positive else None


def _class_index(target: str | int, classes: list[str]) -> int:
    if isinstance(target, str) and target in classes:
        return classes.index(target)
    if isinstance(target, int) or str(target).isdigit():
        if 0 <= int(target) < len(classes):
            return int(target)
    raise ConfigError(f"unknown target class {target!r}: the model's classes are {classes}")


def _predicted_index(prediction: Any, classes: list[str]) -> int:
    first = prediction.label.split("|")[0] if prediction.label else ""
    if first in classes:
        return classes.index(first)
    probabilities = prediction.probabilities  # multi-label with no label called: the likeliest
    return classes.index(max(probabilities, key=probabilities.get))


def _segmented_index(prediction: Any, classes: list[str]) -> int:
    """The foreground class with the largest predicted volume (the first when none)."""
    volumes = prediction.volumes
    found = max(volumes, key=volumes.get) if volumes else None
    return classes.index(found) if found is not None and volumes[found] > 0 else 1


def _segmenter_heatmap(
    explainer: Explainer, tensor: torch.Tensor, index: int, plan: Any
) -> np.ndarray:
    """Grad-CAM of a whole preprocessed image, padded so every pooling step divides it."""
    shape = tensor.shape[2:]
    divisors = [int(np.prod([s[axis] for s in plan.strides])) for axis in range(len(shape))]
    short = [(-n) % d for n, d in zip(shape, divisors, strict=True)]
    pad = [v for amount in reversed(short) for v in (0, amount)]
    padded = nn.functional.pad(tensor, pad, value=float(tensor.min()))
    heatmap = explainer(padded, index)[0]
    return heatmap[tuple(slice(0, n) for n in shape)]


def _display(
    image: Image, tensor: torch.Tensor, heatmap: np.ndarray, preprocessing: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The windowed picture and the heatmap on one grid (see :class:`Explanation`)."""
    if getattr(preprocessing, "size_mode", "resize") == "resize":
        from medlens.transforms.intensity import display_array

        display = display_array(image, getattr(preprocessing, "window", None) or "auto")
        return display, _resize(heatmap, image.spatial_shape)
    mean = torch.tensor(preprocessing.mean).view(-1, *[1] * image.ndim)
    std = torch.tensor(preprocessing.std).view(-1, *[1] * image.ndim)
    display = (tensor * std + mean).mean(0).clamp(0, 1).numpy()
    return display, heatmap


def _resize(heatmap: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if heatmap.shape == tuple(shape):
        return heatmap
    mode = "bilinear" if heatmap.ndim == 2 else "trilinear"
    tensor = torch.from_numpy(heatmap)[None, None]
    out = nn.functional.interpolate(tensor, size=tuple(shape), mode=mode, align_corners=False)
    return out[0, 0].clamp(0, 1).numpy()


def _name(image: Image, index: int) -> str:
    if image.source is None:
        return f"image{index:04d}"
    name = Path(image.source).name
    for suffix in (".nii.gz", ".nii", ".dcm", ".png", ".jpg", ".jpeg", ".npz", ".npy"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or f"image{index:04d}"
    return name
