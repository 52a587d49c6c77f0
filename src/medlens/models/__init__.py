"""Classifiers and segmenters behind one factory (the timm pattern).

>>> from medlens.models import create_model, list_models
>>> model = create_model("resnet18", num_classes=2, in_chans=1, pretrained=False)
>>> list_models(kind="segmenter")
['dynunet']

Every classifier has ``forward_features``, ``forward_head``, ``get_classifier``,
``reset_classifier``, a ``cam_layer`` (Grad-CAM target), ``stages`` (for staged
unfreezing) and a ``default_cfg`` (input size, mean/std of its pretrained weights).
"""

from __future__ import annotations

# Importing the family modules registers their models.
from medlens.models import (  # noqa: F401
    acs,
    cnn,
    densenet,
    efficientnet,
    foundation,
    generative,
    resnet,
    sequence,
    unet,
    vit,
    volumetric,
)
from medlens.models._base import Classifier, ModelCfg
from medlens.models.finetune import freeze_backbone, unfreeze
from medlens.models.registry import ModelInfo, create_model, list_models, model_info, register_model
from medlens.models.weights import load_weights, save_weights

__all__ = [
    "Classifier",
    "ModelCfg",
    "ModelInfo",
    "create_model",
    "freeze_backbone",
    "list_models",
    "load_weights",
    "model_info",
    "register_model",
    "save_weights",
    "unfreeze",
]
