"""What compression cost: size, sparsity, speed and test figures of runs, side by side.

:func:`model_report` measures one run directory on held-out images of its manifest;
pruning and distillation write the source's and the result's report to
``compression.json`` in the new run.
"""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medlens.export._files import write_json_atomic

__all__ = ["ModelReport", "count_parameters", "model_report", "write_comparison"]


@dataclass(frozen=True)
class ModelReport:
    """One run's figures. ``auc``/``accuracy`` on ``split``; ``ms_per_image`` at batch 1.

    A segmentation run: ``images`` counts volumes, ``dice`` is the mean foreground Dice
    (sliding windows, preprocessed grid), ``auc``/``accuracy`` are None and
    ``ms_per_image`` is one patch of the plan's size.
    """

    run: str
    architecture: str
    parameters: int
    nonzero_parameters: int
    weights_bytes: int
    weights_zip_bytes: int
    split: str
    images: int
    auc: float | None
    accuracy: float | None
    ms_per_image: float | None
    dice: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Total and non-zero parameter counts."""
    tensors = [p.detach() for p in model.parameters()]
    return sum(t.numel() for t in tensors), sum(int(torch.count_nonzero(t)) for t in tensors)


def model_report(
    run_dir: str | Path,
    *,
    split: str = "test",
    max_images: int = 1000,
    timing: bool = True,
    seed: int = 0,
) -> ModelReport:
    """Measure a run on ``split`` of its ``manifest.csv`` (falls back to ``val``).

    ``weights_zip_bytes`` is the deflate-compressed size of the weights file
    (``model.safetensors``; a LoRA run's adapter): what unstructured sparsity saves on disk or
    on the wire, since the tensors stay dense.
    """
    from medlens.export.run import split_tensors
    from medlens.export.verify import auc_or_none, class_probabilities, collect_logits, decide
    from medlens.inference import Predictor

    run_dir = Path(run_dir)
    predictor = Predictor.from_run(run_dir, engine="torch")
    if predictor.card.family == "segmentation":
        return _segmentation_report(run_dir, predictor, split, max_images, timing, seed)
    model, card = predictor.model, predictor.card
    x, y, used = split_tensors(
        run_dir / "manifest.csv", predictor, (split, "val"), max_images, seed
    )
    logits = collect_logits(model, x.split(64))
    probs = class_probabilities(logits, card.output_task, float(card.temperature or 1.0))
    predicted = decide(probs, card.output_task, card.threshold, card.ordinal)
    truth = y.numpy() if card.task != "binary" else y.numpy().astype(bool)
    return ModelReport(
        **_model_fields(run_dir, model, card),
        split=used,
        images=len(x),
        auc=auc_or_none(y.numpy(), probs, card.output_task),
        accuracy=float(np.mean(predicted == truth)),
        ms_per_image=_ms_per_image(model, x[:1]) if timing else None,
    )


def _model_fields(run_dir: Path, model: torch.nn.Module, card: Any) -> dict[str, Any]:
    """The report's fields about the model and its weights file (the same for every task)."""
    total, nonzero = count_parameters(model)
    weights = run_dir / card.weights_file
    return {
        "run": str(run_dir),
        "architecture": card.architecture,
        "parameters": total,
        "nonzero_parameters": nonzero,
        "weights_bytes": weights.stat().st_size,
        "weights_zip_bytes": _deflated_size(weights),
    }


def _segmentation_report(
    run_dir: Path, predictor: Any, split: str, max_images: int, timing: bool, seed: int
) -> ModelReport:
    from medlens.data import load_manifest
    from medlens.export._data import first_split, sample_records
    from medlens.segmentation.data import load_cases
    from medlens.tasks.segmentation import validation_dice

    model, plan = predictor.model.cpu().eval(), predictor.plan
    source = run_dir / "manifest.csv"
    records, used = first_split(load_manifest(source), (split, "val"), source)
    records = sample_records(records, max_images, seed)
    cases = load_cases(records, predictor.preprocessing, predictor.label_values)
    patch = torch.zeros(1, int(cases[0].image.shape[0]), *plan.patch_size)
    return ModelReport(
        **_model_fields(run_dir, model, predictor.card),
        split=used,
        images=len(cases),
        auc=None,
        accuracy=None,
        ms_per_image=_ms_per_image(model, patch) if timing else None,
        dice=validation_dice(model, cases, plan, overlap=predictor.overlap),
    )


def write_comparison(
    out_dir: str | Path, kind: str, settings: dict[str, Any], reports: dict[str, ModelReport]
) -> Path:
    """Write ``compression.json``: what was done, and the figures before and after."""
    record = {
        "kind": kind,
        "settings": settings,
        "reports": {name: r.to_dict() for name, r in reports.items()},
    }
    return write_json_atomic(Path(out_dir) / "compression.json", record)


def _deflated_size(path: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, arcname=path.name)
    return buffer.tell()


def _ms_per_image(model: nn.Module, one: torch.Tensor, repeats: int = 20) -> float:
    """Median latency of one image, PyTorch eager on this CPU (after 3 warm-up calls)."""
    times = []
    with torch.inference_mode():
        for i in range(repeats + 3):
            start = time.perf_counter()
            model(one)
            if i >= 3:
                times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)
