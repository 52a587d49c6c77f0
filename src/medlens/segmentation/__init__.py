"""What makes segmentation segmentation, used by the task in :mod:`medlens.tasks`.

A self-configuring :class:`SegPlan` (``plan.json``) from the dataset fingerprint, cases and
the patch sampler with foreground oversampling (:mod:`.data`), sliding-window inference
(:mod:`.sliding_window`), DICOM SEG output (:mod:`.dicom_seg`) and label-map overlays
(:mod:`.overlay`). Training runs on the shared trainer (:class:`medlens.tasks.SegmentationTask`),
predictions come from :class:`medlens.inference.SegmentationPredictor`, evaluate and
predict are in :mod:`medlens.pipeline.segmentation`.

Light to import: torch and MONAI load only when a submodule that needs them is imported.
"""

from __future__ import annotations

from medlens.segmentation.plan import SegmentationOptions, SegPlan, make_plan, read_plan, write_plan

__all__ = [
    "SegPlan",
    "SegmentationOptions",
    "make_plan",
    "read_plan",
    "write_plan",
]
