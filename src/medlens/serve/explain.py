"""The one place where the service asks :mod:`medlens.explain` for a Grad-CAM map."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from medlens.io import Image
from medlens.serve.model import ModelHandle

__all__ = ["grad_cam"]

# The explainer hooks the shared model for the duration of one map: one map at a time
# (plain predictions run beside it; the explainer leaves the model as it found it).
_LOCK = threading.Lock()


def grad_cam(model: ModelHandle, image: Image, prediction: Any) -> np.ndarray:
    """A map in [0, 1] on the model's input grid (middle slice of a volume) of where the
    model looked for the class it decided."""
    from medlens.explain import Explainer

    probabilities = list(prediction.probabilities.values())
    classes = list(prediction.probabilities)
    first = prediction.label.split("|")[0] if prediction.label else ""
    index = classes.index(first) if first in classes else int(np.argmax(probabilities))
    tensor = model.predictor.preprocessing(image).unsqueeze(0)  # type: ignore[attr-defined]
    with _LOCK, Explainer(model.torch_model(), "gradcam") as explainer:
        heatmap = explainer(tensor, index)[0]
    return heatmap[heatmap.shape[0] // 2] if heatmap.ndim == 3 else heatmap
