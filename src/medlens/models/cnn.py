"""``simple_cnn``: the three-convolution baseline of the tutorials, 2D or 3D."""

from __future__ import annotations

import torch
from torch import nn

from medlens.errors import ConfigError
from medlens.models._base import Classifier, ModelCfg
from medlens.models.registry import register_model

_CFG = ModelCfg(input_size=28, mean=(0.5,), std=(0.5,), imagenet=None, spatial_dims=(2, 3))


class AdaptiveAvgPool3d(nn.Module):
    """``nn.AdaptiveAvgPool3d(size)`` as two 2D adaptive pools, which ONNX export supports.

    Adaptive average pooling is separable (each output cell averages a box, the product of
    one interval per axis), so pooling (H, W) and then D gives exactly the 3D result; the
    PyTorch ONNX exporter has no function for the 3D operator.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, d = x.shape[:3]
        g = self.size
        planes = nn.functional.adaptive_avg_pool2d(x.reshape(b, c * d, *x.shape[3:]), g)
        depth = nn.functional.adaptive_avg_pool2d(planes.reshape(b, c, d, g * g), (g, g * g))
        return depth.reshape(b, c, g, g, g)


class SimpleCNN(Classifier):
    """(conv 3x3 - ReLU - max-pool) x 3, adaptive pooling, dense - ReLU - dropout, linear.

    Adaptive pooling to a fixed grid makes it work for any input size >= 8.
    """

    classifier_name = "classifier"
    stem_conv = "conv1.0"
    cam_layer = "conv3.1"
    stages = (("conv1",), ("conv2",), ("conv3",), ("fc",))

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        drop_rate: float,
        widths: tuple[int, int, int] = (32, 64, 128),
        hidden: int = 128,
        spatial_dims: int = 2,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans, cfg=_CFG)
        if spatial_dims not in (2, 3):
            raise ConfigError(f"simple_cnn: spatial_dims must be 2 or 3, got {spatial_dims}")
        self.spatial_dims = spatial_dims
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d
        pool = nn.MaxPool2d if spatial_dims == 2 else nn.MaxPool3d
        grid = 3 if spatial_dims == 2 else 2
        chans = (in_chans, *widths)
        for i in range(3):
            layers: list[nn.Module] = [conv(chans[i], chans[i + 1], 3, padding=1)]
            layers += [norm(chans[i + 1])] if batch_norm else []
            layers += [nn.ReLU(), pool(2, ceil_mode=True)]
            self.add_module(f"conv{i + 1}", nn.Sequential(*layers))
        self.cam_layer = f"conv3.{2 if batch_norm else 1}"
        self.pool = nn.AdaptiveAvgPool2d(grid) if spatial_dims == 2 else AdaptiveAvgPool3d(grid)
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(widths[2] * grid**spatial_dims, hidden), nn.ReLU(inplace=True)
        )
        self.drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.fc(self.pool(x)))
        return x if pre_logits else self.classifier(x)


@register_model(_CFG)
def simple_cnn(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    drop_rate: float,
    widths: tuple[int, int, int] = (32, 64, 128),
    hidden: int = 128,
    spatial_dims: int = 2,
    batch_norm: bool = False,
) -> SimpleCNN:
    """Three-conv baseline CNN (2D or 3D, any input size, no pretrained weights)."""
    return SimpleCNN(
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
        widths=tuple(widths),  # type: ignore[arg-type]
        hidden=hidden,
        spatial_dims=spatial_dims,
        batch_norm=batch_norm,
    )
