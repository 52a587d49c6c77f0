"""Explainability: where did the model look?

* :class:`Explainer` / :func:`explain`: heatmaps in [0, 1] for a batch of model inputs
  (Grad-CAM, Grad-CAM++, Score-CAM, occlusion), as a context manager that leaves the
  model exactly as it was.
* :func:`explain_images` / :func:`save_explanation`: for a trained run's predictor, the
  overlay PNG (windowed image, heatmap, colour bar, prediction) and the raw heatmap.
* :func:`gallery`: true/false positive and false negative overlays for the evaluation report.
"""

from __future__ import annotations

from medlens.explain.cam import DEFAULT_METHOD, METHODS, Explainer, explain
from medlens.explain.overlay import orthogonal_slices, overlay_png, relevant_slices
from medlens.explain.run import (
    GALLERY_CATEGORIES,
    Explanation,
    SavedExplanation,
    explain_files,
    explain_images,
    gallery,
    output_stems,
    save_explanation,
)

__all__ = [
    "DEFAULT_METHOD",
    "Explainer",
    "Explanation",
    "GALLERY_CATEGORIES",
    "METHODS",
    "SavedExplanation",
    "explain",
    "explain_files",
    "explain_images",
    "gallery",
    "orthogonal_slices",
    "output_stems",
    "overlay_png",
    "relevant_slices",
    "save_explanation",
]
