"""Evaluate and predict with a segmentation run; each writes its result to disk.

>>> evaluate_segmentation("runs/hippo", split="test")   # eval/test/{metrics.json, ...}
>>> evaluate_segmentation("runs/hippo", data="other/")  # eval/other-test/
>>> predict_volumes("runs/hippo", ["scans/ct_series/"], "out/predictions.csv")

``medlens evaluate`` and ``medlens predict`` dispatch here for segmentation runs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medlens.errors import DatasetError
from medlens.pipeline._records import evaluation_records

__all__ = ["evaluate_segmentation", "predict_volumes"]


def evaluate_segmentation(
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    split: str = "test",
    n_bootstrap: int = 1000,
    examples: int = 2,
) -> Path:
    """Predict every case of ``split``; write metrics, CSV and report; return the folder.

    ``data``: a manifest (CSV or folder with ``manifest.csv``), a Decathlon folder or an
    ``images/`` + ``masks/`` folder; default the run's ``manifest.csv``. The folder is
    ``eval/<split>/`` for the run's own data and ``eval/<data name>-<split>/`` for other
    data (the sanitised folder name; see :func:`medlens.evaluation._io.evaluation_dir`).
    """
    from medlens.data import load_record_image
    from medlens.evaluation._io import evaluation_dir, write_json
    from medlens.evaluation.segmentation import evaluate_segmentations
    from medlens.inference import SegmentationPredictor

    run_dir = Path(run_dir)
    predictor = SegmentationPredictor.from_run(run_dir)
    records = _records(run_dir, data, split)
    lookup = {v: i for i, v in enumerate(predictor.label_values)}
    pairs, shown = [], []
    for record in records:
        image = load_record_image(record.path)
        truth = load_record_image(record.label_path, kind="label").array
        predicted = predictor.segment(image).array
        name = record.patient_id or Path(record.path).name
        pairs.append((name, _indices(predicted, lookup), _indices(truth, lookup), image.spacing))
        shown.append(image.array)
    metrics = evaluate_segmentations(pairs, predictor.classes, n_bootstrap=n_bootstrap)
    out = evaluation_dir(run_dir, data, split)
    write_json(out / "metrics.json", metrics)
    _write_case_csv(out / "predictions.csv", records, metrics)
    label = f"{split} split" + (f" of {Path(data).name}" if data else "")
    _write_report(out / "report.html", run_dir, label, metrics, pairs, shown, predictor, examples)
    return out


def _records(run_dir: Path, data: str | Path | None, split: str) -> list[Any]:
    records, _ = evaluation_records(run_dir, data, split)
    unlabelled = [r.path for r in records if not r.label_path]
    if unlabelled:
        raise DatasetError(f"{unlabelled[0]}: no label map to evaluate against")
    return records


def _indices(labels: np.ndarray, lookup: dict[int, int]) -> np.ndarray:
    """Label values to class indices; values the model does not know become background."""
    out = np.zeros(labels.shape, dtype=np.uint8)
    for value, index in lookup.items():
        out[labels == value] = index
    return out


def _write_case_csv(path: Path, records: Sequence[Any], metrics: dict[str, Any]) -> None:
    from medlens.training.checkpoint import atomic_write_text

    names = metrics["class_names"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["case", "path", *(f"dice_{n}" for n in names), *(f"hd95_{n}" for n in names)])
    for record, case in zip(records, metrics["cases"], strict=True):
        scores = [case["dice"][n] for n in names] + [case["hd95"][n] for n in names]
        writer.writerow(
            [case["case"], record.path, *("" if v is None else f"{v:.4f}" for v in scores)]
        )
    atomic_write_text(path, buffer.getvalue())


def _write_report(
    path: Path,
    run_dir: Path,
    evaluated: str,
    metrics: dict[str, Any],
    pairs: list[tuple[Any, ...]],
    images: list[np.ndarray],
    predictor: Any,
    per_group: int,
) -> None:
    from medlens.evaluation.segmentation_report import write_segmentation_report
    from medlens.segmentation.overlay import Overlay, overlay_png
    from medlens.training.callbacks import read_metrics

    means = [np.mean(list(case["dice"].values())) for case in metrics["cases"]]
    order = list(np.argsort(means, kind="stable"))
    chosen = [("best", i) for i in order[::-1][:per_group]]
    chosen += [("worst", i) for i in order[:per_group] if i not in order[::-1][:per_group]]
    overlays = [
        Overlay(
            pairs[i][0],
            f"{group}, mean Dice {means[i]:.3f}",
            overlay_png(images[i], pairs[i][2], pairs[i][1], predictor.classes),
        )
        for group, i in chosen
    ]
    history_path = run_dir / "metrics.jsonl"
    write_segmentation_report(
        path,
        metrics=metrics,
        title=f"{run_dir.name}: {evaluated}",
        overlays=overlays,
        history=read_metrics(history_path) if history_path.is_file() else None,
        model_card=predictor.card.model_dump(mode="json"),
    )


def predict_volumes(
    run_dir: str | Path,
    inputs: Sequence[str | Path],
    output: str | Path | None = None,
    *,
    label_dir: str | Path | None = None,
    dicom_seg: bool = True,
) -> Path:
    """Segment every input; write label maps and a CSV listing them; return the CSV path.

    Inputs are NIfTI/PNG/... files, DICOM series folders, or folders searched for images.
    Label maps are NIfTI (``<name>_seg.nii.gz``, the input's affine) or PNG for 2D raster
    inputs, in ``label_dir`` (default: the CSV's path without ``.csv``); a DICOM series also
    gets ``<name>_seg.dcm`` (DICOM SEG) when ``dicom_seg``.
    """
    from medlens.data.sources import image_stem
    from medlens.inference import SegmentationPredictor
    from medlens.io import read_image, write_image

    run_dir = Path(run_dir)
    output = Path(output) if output is not None else run_dir / "predictions.csv"
    label_dir = Path(label_dir) if label_dir is not None else output.with_suffix("")
    predictor = SegmentationPredictor.from_run(run_dir)
    rows = []
    for source, is_series in _inputs(inputs):
        image = read_image(source)
        labels = predictor.segment(image)
        stem = image_stem(source.name)
        raster = image.meta.get("format", "").upper() in ("PNG", "JPEG", "TIFF", "BMP")
        target = label_dir / f"{stem}_seg{'.png' if raster else '.nii.gz'}"
        write_image(labels, target)
        seg_path = ""
        if is_series and dicom_seg:
            seg_path = str(
                _dicom_seg(labels.array, source, label_dir / f"{stem}_seg.dcm", predictor)
            )
        rows.append((source, target, seg_path, labels))
    if not rows:
        raise DatasetError(f"no images found in {', '.join(str(p) for p in inputs)}")
    _write_prediction_csv(output, rows, predictor)
    return output


def _inputs(inputs: Sequence[str | Path]) -> Iterator[tuple[Path, bool]]:
    """``(path, is_dicom_series)``: folders of DICOM files are series, other folders searched."""
    from medlens.data.sources import is_dicom_file, is_image_file

    for item in map(Path, inputs):
        if item.is_file():
            yield item, False
        elif item.is_dir():
            files = [
                p for p in sorted(item.rglob("*")) if p.is_file() and not p.name.startswith(".")
            ]
            if files and all(is_dicom_file(p) for p in files):
                yield item, True
            else:
                yield from ((p, False) for p in files if is_image_file(p))
        else:
            raise DatasetError(f"input not found: {item}")


def _dicom_seg(labels: np.ndarray, folder: Path, path: Path, predictor: Any) -> Path:
    from medlens import __version__
    from medlens.segmentation.dicom_seg import write_dicom_seg

    return write_dicom_seg(
        labels,
        folder,
        path,
        class_names=predictor.classes,
        label_values=predictor.label_values,
        version=__version__,
    )


def _write_prediction_csv(path: Path, rows: list[tuple[Any, ...]], predictor: Any) -> None:
    from medlens.training.checkpoint import atomic_write_text

    names, values = predictor.classes[1:], predictor.label_values[1:]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "label_map", "dicom_seg", *(f"volume_mm3_{n}" for n in names)])
    for source, target, seg_path, labels in rows:
        voxel = float(np.prod(labels.spacing))
        volumes = [f"{float((labels.array == v).sum()) * voxel:.1f}" for v in values]
        writer.writerow([source, target, seg_path, *volumes])
    atomic_write_text(path, buffer.getvalue())
