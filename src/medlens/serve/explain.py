"""The one place where the service asks for a Grad-CAM map."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from medlens.io import Image
from medlens.serve.model import PredictorLike

__all__ = ["grad_cam"]

# Grad-CAM hooks the shared model: one map at a time (plain predictions are not held up).
_LOCK = threading.Lock()


def grad_cam(predictor: PredictorLike, image: Image, prediction: Any) -> np.ndarray:
    """A 2D map in [0, 1] of where the model looked for the predicted class."""
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import (
        BinaryClassifierOutputTarget,
        ClassifierOutputTarget,
    )

    model = predictor.model  # type: ignore[attr-defined]
    tensor = predictor.preprocessing(image).unsqueeze(0)  # type: ignore[attr-defined]
    layer = model.get_submodule(model.cam_layer)
    names = list(prediction.probabilities)
    if model.get_classifier().out_features == 1:  # one logit: its sign is the evidence
        target = BinaryClassifierOutputTarget(int(prediction.label == names[-1]))
    else:
        first = prediction.label.split("|")[0]
        target = ClassifierOutputTarget(names.index(first) if first in names else 0)
    with _LOCK, torch.enable_grad(), GradCAM(model=model, target_layers=[layer]) as cam:
        maps = cam(input_tensor=tensor, targets=[target])
    result = np.asarray(maps[0], dtype=np.float32)
    return result[result.shape[0] // 2] if result.ndim == 3 else result
