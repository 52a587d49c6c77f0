"""3D ResNet-18/34/50 and 3D DenseNet-121: MONAI's networks behind the medlens interface.

Built from scratch (MONAI's MedicalNet weights are not bundled). The ResNets' stem is
``conv1_size``³ with stride ``conv1_stride``, then an optional max-pool: for 28³ MedMNIST
volumes a 3³ stride-1 stem keeps detail; ``widen_factor`` < 1 thins every stage for CPU runs.
"""

from __future__ import annotations

import torch
from monai.networks import nets
from torch import nn

from medlens.models._base import Classifier, ModelCfg
from medlens.models.registry import register_model

VOLUME_CFG = ModelCfg(input_size=28, mean=(0.5,), std=(0.5,), imagenet=None, spatial_dims=(3,))


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, *spatial) -> (B, C)`` global average pooling (exports to ONNX for 3D too)."""
    return x.flatten(2).mean(dim=2)


class ResNet3D(Classifier):
    """MONAI ``ResNet`` (3D) as ``self.net``; its ``fc`` is the classifier."""

    classifier_name = "net.fc"
    stem_conv = "net.conv1"
    # layer4 is 2³ for 28³ inputs: its CAM peaks at a corner; layer3 (4³) localises
    cam_layer = "net.layer3"
    stages = (
        ("net.conv1", "net.bn1"),
        ("net.layer1",),
        ("net.layer2",),
        ("net.layer3",),
        ("net.layer4",),
    )
    spatial_dims = 3

    def __init__(self, net: nets.ResNet, *, num_classes: int, in_chans: int, drop_rate: float):
        super().__init__(num_classes=num_classes, in_chans=in_chans, cfg=VOLUME_CFG)
        self.net = net
        self.head_drop = nn.Dropout(drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.act(n.bn1(n.conv1(x)))
        x = x if n.no_max_pool else n.maxpool(x)
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(global_pool(x))
        return x if pre_logits else self.net.fc(x)


class DenseNet3D(Classifier):
    """MONAI ``DenseNet121`` (3D) as ``self.net``; ``class_layers.out`` is the classifier."""

    classifier_name = "net.class_layers.out"
    stem_conv = "net.features.conv0"
    cam_layer = "net.features.norm5"
    stages = (
        ("net.features.conv0", "net.features.norm0"),
        ("net.features.denseblock1", "net.features.transition1"),
        ("net.features.denseblock2", "net.features.transition2"),
        ("net.features.denseblock3", "net.features.transition3"),
        ("net.features.denseblock4", "net.features.norm5"),
    )
    spatial_dims = 3

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        drop_rate: float,
        init_features: int,
        stem_pool: bool,
    ):
        super().__init__(num_classes=num_classes, in_chans=in_chans, cfg=VOLUME_CFG)
        self.net = nets.DenseNet121(
            spatial_dims=3,
            in_channels=in_chans,
            out_channels=num_classes,
            init_features=init_features,
            growth_rate=init_features // 2,
        )
        if not stem_pool:  # 28³ inputs would shrink below 1 voxel after the 4th transition
            self.net.features.pool0 = nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.class_layers.relu(self.net.features(x))

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(global_pool(x))
        return x if pre_logits else self.net.class_layers.out(x)


def _resnet3d(
    depth: int,
    num_classes: int,
    in_chans: int,
    drop_rate: float,
    conv1_size: int,
    conv1_stride: int,
    max_pool: bool,
    widen_factor: float,
) -> ResNet3D:
    build = {18: nets.resnet18, 34: nets.resnet34, 50: nets.resnet50}[depth]
    net = build(
        spatial_dims=3,
        n_input_channels=in_chans,
        num_classes=num_classes,
        conv1_t_size=conv1_size,
        conv1_t_stride=conv1_stride,
        no_max_pool=not max_pool,
        widen_factor=widen_factor,
    )
    return ResNet3D(net, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)


@register_model(VOLUME_CFG)
def resnet18_3d(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    drop_rate: float,
    conv1_size: int = 3,
    conv1_stride: int = 1,
    max_pool: bool = True,
    widen_factor: float = 1.0,
) -> ResNet3D:
    """3D ResNet-18 (MONAI, 33 M parameters at widen_factor 1; no pretrained weights)."""
    args = (conv1_size, conv1_stride, max_pool, widen_factor)
    return _resnet3d(18, num_classes, in_chans, drop_rate, *args)


@register_model(VOLUME_CFG)
def resnet34_3d(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    drop_rate: float,
    conv1_size: int = 3,
    conv1_stride: int = 1,
    max_pool: bool = True,
    widen_factor: float = 1.0,
) -> ResNet3D:
    """3D ResNet-34 (MONAI, 63 M parameters at widen_factor 1; no pretrained weights)."""
    args = (conv1_size, conv1_stride, max_pool, widen_factor)
    return _resnet3d(34, num_classes, in_chans, drop_rate, *args)


@register_model(VOLUME_CFG)
def resnet50_3d(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    drop_rate: float,
    conv1_size: int = 3,
    conv1_stride: int = 1,
    max_pool: bool = True,
    widen_factor: float = 1.0,
) -> ResNet3D:
    """3D ResNet-50 (MONAI, 46 M parameters at widen_factor 1; no pretrained weights)."""
    args = (conv1_size, conv1_stride, max_pool, widen_factor)
    return _resnet3d(50, num_classes, in_chans, drop_rate, *args)


@register_model(VOLUME_CFG)
def densenet121_3d(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    drop_rate: float,
    init_features: int = 64,
    stem_pool: bool = False,
) -> DenseNet3D:
    """3D DenseNet-121 (MONAI, 11 M parameters at init_features 64; no pretrained weights)."""
    return DenseNet3D(
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
        init_features=init_features,
        stem_pool=stem_pool,
    )
