"""Evaluate and predict with a classification run; each writes its result to disk."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medlens.errors import DatasetError
from medlens.pipeline._records import evaluation_records

__all__ = ["evaluate_classification", "predict_classification"]


def evaluate_classification(
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    split: str = "test",
    n_bootstrap: int = 1000,
    examples: int = 4,
) -> Path:
    """Evaluate a classification run on one split (see :func:`medlens.pipeline.evaluate_run`)."""
    import numpy as np

    from medlens.evaluation import evaluate_predictions, write_metrics, write_report
    from medlens.evaluation._io import evaluation_dir
    from medlens.inference import Predictor
    from medlens.training.callbacks import read_metrics

    run_dir = Path(run_dir)
    predictor = Predictor.from_run(run_dir)
    records, classes = evaluation_records(run_dir, data, split)
    _check_classes(classes, predictor.classes, run_dir)
    images, raw, probs = _predict_records(predictor, [r.path for r in records])
    y = _targets(records, predictor.classes, predictor.task)
    out = evaluation_dir(run_dir, data, split)
    metrics = evaluate_predictions(
        y,
        _for_eval(probs, predictor.task),
        task=predictor.task,
        class_names=predictor.classes,
        threshold=predictor.threshold,
        n_bootstrap=n_bootstrap,
        raw_probs=_for_eval(raw, predictor.task),
        temperature=predictor.temperature,
    )
    if predictor.ordinal is not None:
        metrics["ordinal"] = _ordinal_metrics(y, probs, predictor, n_bootstrap)
    write_metrics(out / "metrics.json", metrics)
    _write_predictions(out / "predictions.csv", predictor, records, probs)
    cases = _examples(images, y, np.asarray(probs), predictor, examples)
    write_report(
        out / "report.html",
        metrics=metrics,
        title=f"{run_dir.name}: {split} split" + (f" of {Path(data).name}" if data else ""),
        history=read_metrics(run_dir / "metrics.jsonl"),
        fingerprint=_fingerprint(predictor.card.data_fingerprint),
        examples=cases,
        heatmap_gallery=_heatmap_gallery(predictor, [r.path for r in records], y, probs),
        model_card=predictor.card.model_dump(mode="json"),
    )
    return out


def predict_classification(
    run_dir: str | Path, inputs: Sequence[str | Path], output: str | Path | None = None
) -> Path:
    """Label every image under ``inputs`` (files or folders); write a CSV, return its path.

    Folders are searched recursively for PNG/JPEG/TIFF/BMP, NIfTI, NumPy and DICOM files;
    a 3D volume given to a 2D model is reduced to its middle slice.
    """
    from medlens.inference import Predictor

    run_dir = Path(run_dir)
    predictor = Predictor.from_run(run_dir)
    from medlens.data.sources import find_images

    volumes = len(predictor.preprocessing.spatial_size or ()) == 3
    paths = list(find_images(inputs, volumes=volumes))
    if not paths:
        raise DatasetError(f"no images found in {', '.join(str(p) for p in inputs)}")
    _, _, probs = _predict_records(predictor, [str(p) for p in paths])
    output = Path(output) if output is not None else run_dir / "predictions.csv"
    records = [_Row(str(p)) for p in paths]
    _write_predictions(output, predictor, records, probs, with_truth=False)
    return output


# -- helpers ------------------------------------------------------------------------------


class _Row:
    """A path without a label (prediction of unlabelled files)."""

    def __init__(self, path: str) -> None:
        self.path, self.labels = path, ()


def _check_classes(found: Sequence[str], expected: Sequence[str], run_dir: Path) -> None:
    unknown = sorted(set(found) - set(expected))
    if unknown:
        raise DatasetError(f"data has classes {unknown} that the model in {run_dir} never saw")


def _predict_records(
    predictor: Any, paths: Sequence[str], chunk: int = 256
) -> tuple[list[Any], list[list[float]], list[list[float]]]:
    """Pictures of the inputs (:func:`~medlens.evaluation.input_picture`: 2D, in colour
    for RGB, three middle slices of a volume), uncalibrated and calibrated probabilities,
    read and predicted in chunks."""
    from medlens.evaluation import input_picture
    from medlens.training.data import load_images

    images, raw, calibrated = [], [], []
    temperature, preprocessing = predictor.temperature, predictor.preprocessing
    for start in range(0, len(paths), chunk):
        batch = [_as_2d(image, predictor) for image in load_images(paths[start : start + chunk])]
        tensors = [predictor.preprocessing(image) for image in batch]
        calibrated += predictor.predict_proba(tensors)
        predictor.temperature = 1.0
        raw += predictor.predict_proba(tensors)
        predictor.temperature = temperature
        images += [input_picture(t, preprocessing.mean, preprocessing.std) for t in tensors]
    return images, raw, calibrated


def _as_2d(image: Any, predictor: Any) -> Any:
    """The middle slice of a volume for a 2D model (documented behaviour of ``predict``)."""
    wants_2d = len(predictor.preprocessing.spatial_size or (0, 0)) == 2
    if image.ndim == 3 and wants_2d:
        middle = image.array.shape[0] // 2
        return image.with_array(image.array[middle], spacing=image.spacing[1:])
    return image


def _heatmap_gallery(
    predictor: Any, paths: Sequence[str], y: Any, probs: Any, per_category: int = 3
) -> Any:
    """Grad-CAM overlays of a few telling cases of any task (binary: true/false positives
    and false negatives; multiclass and multilabel: per class, see
    :func:`~medlens.evaluation.select_heatmap_cases`); only those files are read again.
    A :class:`~medlens.evaluation.HeatmapGallery` without images says why there are none.
    """
    from medlens.errors import ConfigError
    from medlens.evaluation import (
        HEATMAP_NOTES,
        HeatmapGallery,
        ReportImage,
        select_heatmap_cases,
    )
    from medlens.explain import explain_images
    from medlens.training.data import load_images

    picks = select_heatmap_cases(
        y,
        _for_eval(probs, predictor.task),
        task=predictor.task,
        class_names=predictor.classes,
        threshold=predictor.threshold,
        per_group=per_category,
    )
    if not picks:
        return HeatmapGallery((), "no case of the kinds the gallery shows.")
    images = [_as_2d(im, predictor) for im in load_images([paths[c.index] for c in picks])]
    from medlens.explain.slices import is_slice_sequence

    if is_slice_sequence(predictor.model):  # which slices drove the decision, not Grad-CAM
        return _slice_gallery(predictor, images, picks)
    pngs: dict[int, bytes] = {}
    try:
        for target in dict.fromkeys(c.target for c in picks):  # None: the predicted class
            members = [i for i, c in enumerate(picks) if c.target == target]
            explained = explain_images(predictor, [images[i] for i in members], target=target)
            pngs.update(zip(members, (e.overlay_png() for e in explained), strict=True))
    except ConfigError as exc:  # no PyTorch model, no layer to explain, method unsupported
        return HeatmapGallery((), f"Grad-CAM cannot explain this model ({exc}).")
    overlays = [ReportImage(pngs[i], c.caption) for i, c in enumerate(picks)]
    return HeatmapGallery(tuple(overlays), HEATMAP_NOTES[predictor.task])


def _slice_gallery(predictor: Any, images: Sequence[Any], picks: Sequence[Any]) -> Any:
    """Ranked slice strips of a slice-sequence model's attention for the picked cases."""
    from medlens.errors import ConfigError
    from medlens.evaluation import HeatmapGallery, ReportImage
    from medlens.explain.slices import slice_attention, slice_strip_png

    try:
        items = slice_attention(predictor, images)
    except ConfigError as exc:
        return HeatmapGallery((), f"no per-slice view for this model ({exc}).")
    overlays = [
        ReportImage(slice_strip_png(item), f"{c.caption}: slices {item.ranked()[:3]} weigh most")
        for item, c in zip(items, picks, strict=True)
    ]
    note = (
        "Slice attention: the study's most-weighted slices, ranked, and every slice's "
        "attention weight (the weights sum to 1 over the study)."
    )
    return HeatmapGallery(tuple(overlays), note)


def _targets(records: Sequence[Any], classes: Sequence[str], task: str) -> Any:
    from medlens.training.data import encode_targets

    return encode_targets(records, classes, task).numpy()


def _ordinal_metrics(y: Any, probs: list[list[float]], predictor: Any, n_bootstrap: int) -> Any:
    """QWK, MAE, accuracy, confusion matrix and cut-point AUCs under the card's decision."""
    from medlens.evaluation.ordinal import ordinal_metrics

    return ordinal_metrics(
        y,
        probs,
        cut_points=predictor.ordinal.cut_points,
        rule="argmax" if predictor.ordinal.cut_points else predictor.ordinal.decision,
        class_names=predictor.classes,
        n_bootstrap=n_bootstrap,
    )


def _for_eval(probs: list[list[float]], task: str) -> Any:
    """Evaluation takes the positive-class column for binary tasks."""
    import numpy as np

    array = np.asarray(probs, dtype=np.float64)
    return array[:, 1] if task == "binary" else array


def _write_predictions(
    path: Path,
    predictor: Any,
    records: Sequence[Any],
    probs: list[list[float]],
    *,
    with_truth: bool = True,
) -> None:
    from medlens.training.checkpoint import atomic_write_text

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    ordinal = getattr(predictor, "ordinal", None) is not None
    header = ["path", *(["true_label"] if with_truth else []), "predicted_label"]
    header += ["grade", "expected_grade"] if ordinal else []
    writer.writerow(header + [f"p_{name}" for name in predictor.classes])
    for record, row in zip(records, probs, strict=True):
        label = predictor.decide(row)
        truth = ["|".join(record.labels)] if with_truth else []
        grades = [predictor.grade(row), f"{_expected(row):.4f}"] if ordinal else []
        writer.writerow([record.path, *truth, label, *grades, *(f"{p:.6f}" for p in row)])
    atomic_write_text(path, buffer.getvalue())


def _expected(probs: Sequence[float]) -> float:
    return sum(k * p for k, p in enumerate(probs))


def _examples(images: list, y: Any, probs: Any, predictor: Any, per_group: int) -> list:
    from medlens.evaluation import ExampleCase, select_examples

    if per_group == 0:
        return []
    picked = select_examples(
        y,
        _for_eval(probs.tolist(), predictor.task),
        task=predictor.task,
        threshold=predictor.threshold,
        per_group=per_group,
    )
    volume = len(predictor.preprocessing.spatial_size or ()) == 3
    cases = []
    for index in picked["correct"] + picked["wrong"]:
        truth = _label_of(y[index], predictor)
        cases.append(
            ExampleCase.from_array(
                images[index],
                true_label=truth,
                predicted_label=predictor.decide(list(probs[index])),
                probabilities=dict(zip(predictor.classes, map(float, probs[index]), strict=True)),
                caption="middle slices across axes 0 | 1 | 2" if volume else "",
            )
        )
    return cases


def _fingerprint(value: dict[str, Any] | str | None) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"manifest_sha256": value}


def _label_of(target: Any, predictor: Any) -> str:
    if predictor.task == "multilabel":
        return "|".join(c for c, t in zip(predictor.classes, target, strict=True) if t)
    return predictor.classes[int(target)]
