"""Evaluation: classification metrics with bootstrap CIs, thresholds, calibration, report.

Pure functions at the core (:mod:`.classification`, :mod:`.bootstrap`, :mod:`.threshold`,
:mod:`.calibration`), :func:`evaluate_predictions` to gather them into ``metrics.json``,
:mod:`.plots` (PNG bytes) and :func:`write_report` (one self-contained ``report.html``).
Plotting and PyTorch are imported only when used.
"""

from __future__ import annotations

from medlens.evaluation.bootstrap import classification_bootstrap, percentile_interval
from medlens.evaluation.calibration import (
    ReliabilityDiagram,
    TemperatureScaler,
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    logits_to_probs,
    reliability_diagram,
)
from medlens.evaluation.classification import METRICS, classification_metrics
from medlens.evaluation.evaluate import Evaluator, curves, evaluate_predictions, write_metrics
from medlens.evaluation.examples import (
    HEATMAP_NOTES,
    ExampleCase,
    HeatmapCase,
    HeatmapGallery,
    ReportImage,
    input_picture,
    select_examples,
    select_heatmap_cases,
)
from medlens.evaluation.report import render_report, write_report
from medlens.evaluation.threshold import OperatingPoint, select_threshold, select_thresholds

__all__ = [
    "Evaluator",
    "ExampleCase",
    "HEATMAP_NOTES",
    "HeatmapCase",
    "HeatmapGallery",
    "METRICS",
    "OperatingPoint",
    "ReliabilityDiagram",
    "ReportImage",
    "TemperatureScaler",
    "apply_temperature",
    "brier_score",
    "classification_bootstrap",
    "classification_metrics",
    "curves",
    "evaluate_predictions",
    "expected_calibration_error",
    "fit_temperature",
    "input_picture",
    "logits_to_probs",
    "percentile_interval",
    "reliability_diagram",
    "render_report",
    "select_examples",
    "select_heatmap_cases",
    "select_threshold",
    "select_thresholds",
    "write_metrics",
    "write_report",
]
