"""ResNet-18/34/50 (torchvision backbones behind the medlens interface)."""

from __future__ import annotations

import torch
from torchvision import models as tvm

from medlens.models._torchvision import TV_CFG, TorchvisionClassifier
from medlens.models.registry import register_model


class ResNet(TorchvisionClassifier):
    classifier_name = "net.fc"
    stem_conv = "net.conv1"
    cam_layer = "net.layer4"
    stages = (
        ("net.conv1", "net.bn1"),
        ("net.layer1",),
        ("net.layer2",),
        ("net.layer3",),
        ("net.layer4",),
    )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))


def _resnet(
    arch: str, weights: tvm.WeightsEnum, num_classes: int, in_chans: int, drop_rate: float
) -> ResNet:
    model = ResNet(
        getattr(tvm, arch)(), num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate
    )
    model.weights = weights
    return model


@register_model(TV_CFG)
def resnet18(*, num_classes: int, in_chans: int, image_size: int, drop_rate: float) -> ResNet:
    """ResNet-18 (11.7 M parameters; torchvision ImageNet weights)."""
    return _resnet("resnet18", tvm.ResNet18_Weights.IMAGENET1K_V1, num_classes, in_chans, drop_rate)


@register_model(TV_CFG)
def resnet34(*, num_classes: int, in_chans: int, image_size: int, drop_rate: float) -> ResNet:
    """ResNet-34 (21.8 M parameters; torchvision ImageNet weights)."""
    return _resnet("resnet34", tvm.ResNet34_Weights.IMAGENET1K_V1, num_classes, in_chans, drop_rate)


@register_model(TV_CFG)
def resnet50(*, num_classes: int, in_chans: int, image_size: int, drop_rate: float) -> ResNet:
    """ResNet-50 (25.6 M parameters; torchvision ImageNet weights V2)."""
    return _resnet("resnet50", tvm.ResNet50_Weights.IMAGENET1K_V2, num_classes, in_chans, drop_rate)
