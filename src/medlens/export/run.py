"""Export a run directory: ``model.onnx`` (+ int8), verified, described by ``export.json``.

Everything is built in a staging folder inside the run, verified against the PyTorch
model on real images, and only then moved into place (``export.json`` last). An export
that fails its tolerance raises :class:`~medlens.errors.ExportError` and writes nothing.

``export.json`` names the file to deploy (``model``); :func:`deployed_onnx` returns it
only while its sha256 and the source weights' sha256 still match, which is how
``Predictor.from_run(engine="auto")`` decides to use ONNX Runtime.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch

from medlens.errors import ExportError
from medlens.export._data import first_split, read_manifest, refuse_padded_slices, sample_records
from medlens.export._files import file_record, staging_dir, write_json_atomic
from medlens.export.onnx_export import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, export_onnx
from medlens.export.quantize import quantize_dynamic_int8, quantize_static_int8
from medlens.export.segmentation import SegmentationCheck
from medlens.export.verify import Tolerance, Verification, collect_logits, verify
from medlens.inference.engines import deployed_onnx, pick_engine, read_export_record
from medlens.inference.onnx_runtime import OnnxModel

__all__ = [
    "EXPORT_FORMAT",
    "ExportResult",
    "Quantize",
    "deployed_onnx",
    "export_run",
    "pick_engine",
    "read_export_record",
]

EXPORT_FORMAT = "medlens-export/1"
Quantize = Literal["none", "dynamic", "int8"]
FILES = {"none": "model.onnx", "int8": "model.int8.onnx", "dynamic": "model.dynamic-int8.onnx"}


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_run` wrote: the deployed file, every file, and ``export.json``."""

    model: Path
    files: tuple[Path, ...]
    record: dict[str, Any]

    @property
    def verifications(self) -> dict[str, dict[str, Any]]:
        return self.record["verification"]


def export_run(
    run_dir: str | Path,
    *,
    quantize: Quantize = "none",
    data: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    tolerance: Tolerance = Tolerance(),
    verify_split: str = "val",
    max_verify: int | None = None,
    max_calibration: int | None = None,
    reduce_range: bool = False,
    seed: int = 0,
) -> ExportResult:
    """Export a trained run to ONNX (optionally int8) beside its weights, verified.

    Classifiers are verified on held-out images (logits, label agreement, AUC);
    segmenters by sliding windows over held-out volumes (logits, Dice agreement of the
    label maps; see :mod:`medlens.export.segmentation`).

    Args:
        run_dir: a finished run (``model.json`` + ``model.safetensors``).
        quantize: ``"none"`` (fp32 only), ``"int8"`` (static QDQ, per-channel weights,
            calibrated on training images, or training patches for a segmenter) or
            ``"dynamic"``.
        data: a dataset manifest (CSV) for calibration (its ``train`` rows) and
            verification (its ``verify_split`` rows); default: the run's ``manifest.csv``.
        opset: ONNX opset.
        tolerance: what the exported models must reach (see :class:`Tolerance`).
        verify_split: held-out split to verify on (falls back to ``test``).
        max_verify: at most this many images (default 1000) or volumes (default 20),
            drawn with ``seed``.
        max_calibration: at most this many calibration images (default 256) or patches
            (default 64).
        reduce_range: int8 with 7-bit weights (can help on CPUs without VNNI).

    Raises:
        ExportError: an export failed its verification (nothing written).
        ModelError, DatasetError: the run or the data cannot be used.
    """
    from medlens.inference import Predictor

    run_dir = Path(run_dir)
    if quantize not in FILES:
        raise ExportError(f"unknown quantization {quantize!r}: choose {sorted(FILES)}")
    predictor = Predictor.from_run(run_dir, engine="torch")
    card = predictor.card
    refuse_padded_slices(card.preprocessing or {}, "ONNX export")
    source = data if data is not None else run_dir / "manifest.csv"
    kind = SegmentationCheck if card.family == "segmentation" else ClassificationCheck
    check = kind(
        predictor,
        source,
        splits=(verify_split, "test"),
        max_verify=max_verify,
        max_calibration=max_calibration,
        int8=quantize == "int8",
        tolerance=tolerance,
        seed=seed,
    )

    with staging_dir(run_dir) as stage:
        fp32 = export_onnx(check.model, check.example, stage / FILES["none"], opset=opset)
        exported = {"fp32": fp32}
        if quantize != "none":
            out = stage / FILES[quantize]
            if quantize == "int8":
                batches = check.calibration_batches()
                quantize_static_int8(fp32, out, batches, reduce_range=reduce_range)
            else:
                quantize_dynamic_int8(fp32, out)
            exported["int8"] = out
        results = check.verify(exported)
        failed = [f"{name}: {'; '.join(r.failures)}" for name, r in results.items() if not r.passed]
        if failed:
            raise ExportError(f"{run_dir}: export refused, nothing written ({' | '.join(failed)})")
        files = list(exported.values())
        record = _record(card, files, results, opset, quantize, source, check)
        record["reduce_range"] = reduce_range
        final = [run_dir / f.name for f in files]
        for src, dst in zip(files, final, strict=True):
            os.replace(src, dst)
    write_json_atomic(run_dir / "export.json", record)
    return ExportResult(final[-1], tuple(final), record)


class ClassificationCheck:
    """What :func:`export_run` needs for a classifier: held-out images and their PyTorch
    logits (computed once), training images for calibration, and the judge."""

    card_fields = ("threshold", "temperature")  # the card's fields export.json repeats

    def __init__(
        self,
        predictor: Any,
        source: str | Path,
        *,
        splits: tuple[str, ...],
        max_verify: int | None,
        max_calibration: int | None,
        int8: bool,
        tolerance: Tolerance,
        seed: int,
    ) -> None:
        self.model, self.card, self.tolerance = predictor.model, predictor.card, tolerance
        self.images, labels, self.split = split_tensors(
            source, predictor, splits, max_verify or 1000, seed
        )
        self.labels = labels.numpy()
        self.calibration = None
        if int8:
            limit = max_calibration or 256
            self.calibration = split_tensors(source, predictor, ("train", ""), limit, seed)[0]
        self.reference = collect_logits(self.model, self.images.split(32))
        self.example = self.images[:2]
        prep = self.card.preprocessing or {}
        self.input_shape = ["batch", prep.get("channels", 1), *(prep.get("spatial_size") or [])]

    def calibration_batches(self) -> list[torch.Tensor]:
        if self.calibration is None:
            raise ExportError("no calibration images were read (int8 not asked)")
        return list(self.calibration.split(16))

    def verify(self, exported: dict[str, Path]) -> dict[str, Verification]:
        return {
            name: verify(
                self.reference,
                OnnxModel(path),
                self.images.split(32),
                precision="fp32" if name == "fp32" else "int8",
                labels=self.labels,
                task=self.card.output_task,
                threshold=self.card.threshold,
                temperature=float(self.card.temperature or 1.0),
                tolerance=self.tolerance,
                grade_rule=self.card.ordinal,
            )
            for name, path in exported.items()
        }

    def data_record(self) -> dict[str, Any]:
        return {
            "verification_split": self.split,
            "calibration_images": 0 if self.calibration is None else len(self.calibration),
        }


# -- data --------------------------------------------------------------------------------
def split_tensors(
    source: str | Path,
    predictor: Any,
    splits: tuple[str, ...],
    limit: int,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Preprocessed images (float32) and targets of the first non-empty split in ``splits``.

    At most ``limit`` images, drawn with ``seed``; ``""`` stands for rows without a split.
    """
    from medlens.training.data import preprocess_split

    manifest = read_manifest(source)
    if list(manifest.classes) != list(predictor.classes):
        raise ExportError(
            f"{source}: classes {list(manifest.classes)} differ from the model's "
            f"{list(predictor.classes)}"
        )
    records, split = first_split(manifest, splits, source)
    records = sample_records(records, limit, seed)
    x, y = preprocess_split(manifest.with_records(records), predictor.preprocessing, predictor.task)
    return x.float(), y, split


# -- record ------------------------------------------------------------------------------
def _record(
    card: Any,
    files: list[Path],
    results: dict[str, Any],
    opset: int,
    quantize: str,
    data: str | Path,
    check: ClassificationCheck | SegmentationCheck,
) -> dict[str, Any]:
    """The content of ``export.json``: files, verification and the model's metadata."""
    records = [
        {**file_record(f), "precision": "fp32" if f.name == FILES["none"] else quantize}
        for f in files
    ]
    card_fields = {"preprocessing", "classes", "task", *check.card_fields}
    return {
        "format": EXPORT_FORMAT,
        "model": records[-1],
        "files": records,
        "source_sha256": card.sha256,
        "architecture": card.architecture,
        "opset": opset,
        "input": {"name": INPUT_NAME, "shape": check.input_shape},
        "output": OUTPUT_NAME,
        "quantization": quantize,
        "verification": {name: r.to_dict() for name, r in results.items()},
        "data": {"manifest": str(data), **check.data_record()},
        **card.model_dump(mode="json", include=card_fields),
        "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    from medlens import __version__

    return {
        "medlens": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }
