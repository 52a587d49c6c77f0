"""Predictions from a trained run directory, for every task, on PyTorch or ONNX Runtime.

>>> from medlens.inference import Predictor
>>> predictor = Predictor.from_run("runs/demo")          # doctest: +SKIP
>>> predictor.predict([read_image("cxr.png")])            # doctest: +SKIP

:meth:`Predictor.from_run` reads the card and returns the task's predictor; the
preprocessing stored beside the weights is applied, so nothing is guessed.
"""

from __future__ import annotations

from medlens.inference.base import Predictor
from medlens.inference.classification import ClassificationPredictor, Prediction
from medlens.inference.engines import ENGINES, load_engine, to_channels_last
from medlens.inference.segmentation import SegmentationPrediction, SegmentationPredictor

__all__ = [
    "ENGINES",
    "ClassificationPredictor",
    "Prediction",
    "Predictor",
    "SegmentationPrediction",
    "SegmentationPredictor",
    "load_engine",
    "to_channels_last",
]
