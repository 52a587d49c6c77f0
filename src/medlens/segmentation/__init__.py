"""What makes segmentation segmentation, used by the task in :mod:`medlens.tasks`.

A self-configuring :class:`SegPlan` (``plan.json``) from the dataset fingerprint, cases and
the patch sampler with foreground oversampling (:mod:`.data`), sliding-window inference
(:mod:`.sliding_window`), DICOM SEG output (:mod:`.dicom_seg`), and the evaluate / predict
steps for segmentation runs: :func:`evaluate_segmentation` (Dice and HD95 with CIs, a
report) and :func:`predict_volumes` (label maps as NIfTI with the input's affine, palette
PNG for 2D raster inputs, DICOM SEG for DICOM series). Training runs on the shared trainer
(:class:`medlens.tasks.SegmentationTask`); predictions come from
:class:`medlens.inference.SegmentationPredictor`.

Light to import: torch and MONAI load only when a name below that needs them is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from medlens.segmentation.plan import SegmentationOptions, SegPlan, make_plan, read_plan, write_plan

__all__ = [
    "SegPlan",
    "SegmentationOptions",
    "evaluate_segmentation",
    "make_plan",
    "predict_volumes",
    "read_plan",
    "write_plan",
]

_LAZY = {
    "evaluate_segmentation": "medlens.segmentation.run",
    "predict_volumes": "medlens.segmentation.run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medlens.segmentation' has no attribute {name!r}")
