"""Segmentation, 2D and 3D, in the same train / evaluate / predict pipeline.

``medlens train`` hands a dataset with label maps (``task: segmentation``) to
:func:`train_segmentation`: a self-configuring :class:`SegPlan` (``plan.json``), a U-Net
(:func:`medlens.models.unet.create_segmentation_model`), patches with foreground
oversampling, Dice + cross-entropy. :func:`evaluate_segmentation` writes Dice and HD95 with
CIs and a report; :func:`predict_volumes` writes label maps (NIfTI with the input's affine,
DICOM SEG for DICOM series) through :class:`SegmentationPredictor`.

Light to import: torch and MONAI load only when a name below that needs them is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from medlens.segmentation.plan import SegmentationOptions, SegPlan, make_plan, read_plan, write_plan

__all__ = [
    "SegPlan",
    "SegmentationOptions",
    "SegmentationPredictor",
    "evaluate_segmentation",
    "is_segmentation_run",
    "make_plan",
    "predict_volumes",
    "read_plan",
    "train_segmentation",
    "write_plan",
]

_LAZY = {
    "SegmentationPredictor": "medlens.segmentation.inference",
    "evaluate_segmentation": "medlens.segmentation.run",
    "predict_volumes": "medlens.segmentation.run",
    "train_segmentation": "medlens.segmentation.train",
}


def is_segmentation_run(run_dir: Any) -> bool:
    """True when ``run_dir/model.json`` describes a segmentation model (reads JSON only)."""
    import json
    from pathlib import Path

    path = Path(run_dir) / "model.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("task") == "segmentation"
    except (OSError, ValueError, AttributeError):
        return False


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medlens.segmentation' has no attribute {name!r}")
