"""The interface every medlens classifier shares, and the metadata it carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
from torch import nn

from medlens.errors import WeightsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ModelCfg:
    """What a model expects as input, and where its pretrained weights come from.

    ``mean``/``std`` are the normalisation the pretrained weights were trained with (one
    value per input channel, on intensities scaled to [0, 1]); ``imagenet`` names the
    source of ImageNet weights ("torchvision", "bundled") or is None when there are none.
    ``spatial_dims`` are the image dimensionalities the model can be built for; ``kind``
    says what it outputs: ``(B, classes)`` logits (classifier) or ``(B, classes, *spatial)``
    (segmenter), or images from noise and class labels (generator).
    """

    input_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    imagenet: str | None = "torchvision"
    spatial_dims: tuple[int, ...] = (2,)
    kind: Literal["classifier", "segmenter", "generator"] = "classifier"

    def for_channels(self, in_chans: int) -> ModelCfg:
        """The same config for ``in_chans`` channels (1 channel: the mean of the RGB stats)."""
        if in_chans == len(self.mean):
            return self
        mean = sum(self.mean) / len(self.mean)
        std = sum(self.std) / len(self.std)
        return replace(self, mean=(mean,) * in_chans, std=(std,) * in_chans)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Classifier(nn.Module):
    """Base class of the registry's models (the timm interface).

    ``forward(x) == forward_head(forward_features(x))``. Subclasses set the dotted
    module names below; explainers, exporters and freezing helpers rely only on them.

    Attributes:
        classifier_name: the final ``nn.Linear``.
        stem_conv: the first convolution (adapted when ``in_chans`` differs from 3).
        cam_layer: the best Grad-CAM target layer.
        stages: backbone module names grouped into stages, from input to output.
        default_cfg: input size and normalisation for this instance.
    """

    classifier_name: str
    stem_conv: str
    cam_layer: str
    stages: tuple[tuple[str, ...], ...]
    spatial_dims: int = 2

    def __init__(self, *, num_classes: int, in_chans: int, cfg: ModelCfg) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.default_cfg = cfg.for_channels(in_chans)
        self.model_name = type(self).__name__

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.get_submodule(self.classifier_name)  # type: ignore[return-value]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer by a freshly initialised one with ``num_classes`` outputs."""
        old = self.get_classifier()
        self.set_submodule(self.classifier_name, nn.Linear(old.in_features, num_classes))
        self.num_classes = num_classes

    def reshape_transform(self, input_shape: tuple[int, ...]) -> Callable | None:
        """How to turn ``cam_layer`` activations into a (B, C, *grid) map; None for CNNs."""
        return None

    def convert_state_dict(self, state: StateDict) -> StateDict:
        """Map a foreign state dict (e.g. the original torchvision keys) to this model's keys."""
        return state

    def imagenet_state_dict(self) -> StateDict:
        """ImageNet weights in this model's key space (3 input channels, 1000 classes)."""
        raise WeightsError(f"model {self.model_name!r} has no ImageNet weights")
