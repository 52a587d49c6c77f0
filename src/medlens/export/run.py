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
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from medlens.errors import ExportError
from medlens.export._files import file_record, staging_dir, write_json_atomic
from medlens.export.onnx_export import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, export_onnx
from medlens.export.quantize import quantize_dynamic_int8, quantize_static_int8
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
    max_verify: int = 1000,
    max_calibration: int = 256,
    reduce_range: bool = False,
    seed: int = 0,
) -> ExportResult:
    """Export a trained run to ONNX (optionally int8) beside its weights, verified.

    Args:
        run_dir: a finished run (``model.json`` + ``model.safetensors``).
        quantize: ``"none"`` (fp32 only), ``"int8"`` (static QDQ, per-channel weights,
            calibrated on training images) or ``"dynamic"``.
        data: a dataset manifest (CSV) for calibration (its ``train`` rows) and
            verification (its ``verify_split`` rows); default: the run's ``manifest.csv``.
        opset: ONNX opset.
        tolerance: what the exported models must reach (see :class:`Tolerance`).
        verify_split: held-out split to verify on (falls back to ``test``).
        max_verify / max_calibration: at most this many images, drawn with ``seed``.
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
    model, card = predictor.model, predictor.card
    source = data if data is not None else run_dir / "manifest.csv"
    verify_x, verify_y, split = split_tensors(
        source, predictor, (verify_split, "test"), max_verify, seed
    )
    calibration = None
    if quantize == "int8":
        calibration = split_tensors(source, predictor, ("train", ""), max_calibration, seed)[0]
    reference = collect_logits(model, verify_x.split(32))
    judge = _Judge(reference, verify_x, verify_y.numpy(), card, tolerance)

    with staging_dir(run_dir) as stage:
        fp32 = export_onnx(model, verify_x[:2], stage / FILES["none"], opset=opset)
        results = {"fp32": judge(fp32, "fp32")}
        files = [fp32]
        if quantize != "none":
            out = stage / FILES[quantize]
            if quantize == "int8":
                quantize_static_int8(fp32, out, calibration.split(16), reduce_range=reduce_range)
            else:
                quantize_dynamic_int8(fp32, out)
            results["int8"] = judge(out, "int8")
            files.append(out)
        failed = [f"{name}: {'; '.join(r.failures)}" for name, r in results.items() if not r.passed]
        if failed:
            raise ExportError(f"{run_dir}: export refused, nothing written ({' | '.join(failed)})")
        record = _record(card, files, results, opset, quantize, source, split, calibration)
        record["reduce_range"] = reduce_range
        final = [run_dir / f.name for f in files]
        for src, dst in zip(files, final, strict=True):
            os.replace(src, dst)
    write_json_atomic(run_dir / "export.json", record)
    return ExportResult(final[-1], tuple(final), record)


class _Judge:
    """Verifies one exported file against the PyTorch logits on the held-out images."""

    def __init__(
        self,
        reference: np.ndarray,
        images: torch.Tensor,
        labels: np.ndarray,
        card: dict[str, Any],
        tolerance: Tolerance,
    ) -> None:
        self.reference, self.images, self.labels = reference, images, labels
        self.card, self.tolerance = card, tolerance

    def __call__(self, path: Path, precision: Literal["fp32", "int8"]) -> Verification:
        return verify(
            self.reference,
            OnnxModel(path),
            self.images.split(32),
            precision=precision,
            labels=self.labels,
            task=self.card.task,
            threshold=self.card.threshold,
            temperature=float(self.card.temperature or 1.0),
            tolerance=self.tolerance,
        )


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
    from medlens.data import load_manifest
    from medlens.training.data import preprocess_split

    if not Path(source).exists():
        raise ExportError(f"{source}: no manifest to verify the export on (--calibration-data)")
    manifest = load_manifest(source)
    if list(manifest.classes) != list(predictor.classes):
        raise ExportError(
            f"{source}: classes {list(manifest.classes)} differ from the model's "
            f"{list(predictor.classes)}"
        )
    for split in splits:
        records = list(manifest.split(split))
        if records:
            break
    else:
        raise ExportError(f"{source}: no images in split(s) {list(splits)}")
    if len(records) > limit:
        records = random.Random(seed).sample(records, limit)
    x, y = preprocess_split(manifest.with_records(records), predictor.preprocessing, predictor.task)
    return x.float(), y, split or "all"


# -- record ------------------------------------------------------------------------------
def _record(
    card: dict[str, Any],
    files: list[Path],
    results: dict[str, Verification],
    opset: int,
    quantize: str,
    data: str | Path,
    split: str,
    calibration: torch.Tensor | None,
) -> dict[str, Any]:
    """The content of ``export.json``: files, verification and the model's metadata."""
    records = [
        {**file_record(f), "precision": "fp32" if f.name == FILES["none"] else quantize}
        for f in files
    ]
    prep = card.preprocessing or {}
    shape = ["batch", prep.get("channels", 1), *(prep.get("spatial_size") or [])]
    return {
        "format": EXPORT_FORMAT,
        "model": records[-1],
        "files": records,
        "source_sha256": card.sha256,
        "architecture": card.architecture,
        "opset": opset,
        "input": {"name": INPUT_NAME, "shape": shape},
        "output": OUTPUT_NAME,
        "quantization": quantize,
        "verification": {name: r.to_dict() for name, r in results.items()},
        "data": {
            "manifest": str(data),
            "verification_split": split,
            "calibration_images": 0 if calibration is None else len(calibration),
        },
        **card.model_dump(mode="json", include={"preprocessing", "classes", "task", "threshold"}),
        "temperature": card.temperature,
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
