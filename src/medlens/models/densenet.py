"""DenseNet-121 (torchvision backbone behind the medlens interface)."""

from __future__ import annotations

import re

import torch
from torch import nn
from torchvision import models as tvm

from medlens.models._base import StateDict
from medlens.models._torchvision import TV_CFG, TorchvisionClassifier
from medlens.models.registry import register_model

# torchvision's published DenseNet weights use old key names ("norm.1" for "norm1").
_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


class DenseNet(TorchvisionClassifier):
    classifier_name = "net.classifier"
    stem_conv = "net.features.conv0"
    cam_layer = "net.features.norm5"
    stages = (
        ("net.features.conv0", "net.features.norm0"),
        ("net.features.denseblock1", "net.features.transition1"),
        ("net.features.denseblock2", "net.features.transition2"),
        ("net.features.denseblock3", "net.features.transition3"),
        ("net.features.denseblock4", "net.features.norm5"),
    )
    weights = tvm.DenseNet121_Weights.IMAGENET1K_V1

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.relu(self.net.features(x))

    def convert_state_dict(self, state: StateDict) -> StateDict:
        state = {_OLD_KEY.sub(r"\1\2", k): v for k, v in state.items()}
        return super().convert_state_dict(state)


@register_model(TV_CFG)
def densenet121(*, num_classes: int, in_chans: int, image_size: int, drop_rate: float) -> DenseNet:
    """DenseNet-121 (8.0 M parameters; torchvision ImageNet weights)."""
    return DenseNet(
        tvm.densenet121(), num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate
    )
