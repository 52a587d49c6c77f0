"""3D classifiers that reuse 2D ImageNet weights: ACS convolutions and 2.5D planes.

ACS (Yang et al., "Reinforcing 2D CNNs for 3D medical images via ACS convolutions", IEEE
JBHI 2021): every ``Conv2d`` of a 2D model becomes a 3D convolution whose output channels
are split in three groups; each group applies its 2D kernels in one orthogonal plane
(axial, coronal, sagittal). Batch norm, pooling and padding become their 3D versions.
The 2D weights are kept as they are (same keys and shapes), so the 2D model's ImageNet
weights load unchanged.

2.5D: the 2D model runs on the three orthogonal planes through the volume centre; the
three feature maps are stacked as channels and classified together.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from medlens.errors import ConfigError
from medlens.models._base import Classifier, ModelCfg, StateDict
from medlens.models._torchvision import TV_CFG
from medlens.models.cnn import AdaptiveAvgPool3d
from medlens.models.efficientnet import LITE_CFG
from medlens.models.registry import create_model, model_info, register_model
from medlens.models.volumetric import global_pool


class ACSConv(nn.Module):
    """A ``Conv2d``'s weights applied in 3D: output channels split axial/coronal/sagittal.

    The 2D kernel ``(k_h, k_w)`` of a channel becomes a ``(k, k_h, k_w)`` (axial),
    ``(k_h, k, k_w)`` (coronal) or ``(k_h, k_w, k)`` (sagittal) 3D kernel that is zero
    outside its central plane (``k = max(k_h, k_w)``); one ``conv3d`` then runs all three
    groups, with the 2D stride and padding on every axis. The first ``ceil(out/3)``
    channels are axial, the next coronal, the rest sagittal.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ConfigError("ACS conversion needs numeric zero padding in every Conv2d")
        if len(set(conv.kernel_size)) != 1 or len(set(conv.stride)) != 1:
            raise ConfigError("ACS conversion needs square kernels and strides")
        self.weight = conv.weight
        self.bias = conv.bias
        self.stride, self.groups = conv.stride[0], conv.groups
        self.padding, self.dilation = conv.padding[0], conv.dilation[0]
        out = conv.out_channels
        first = -(-out // 3)
        second = min(out, first + -(-(out - first) // 2))
        self.split = (first, second - first, out - second)

    def kernel3d(self) -> torch.Tensor:
        """The ``(out, in/groups, k, k, k)`` kernel: each group's 2D kernel in its plane."""
        k = self.weight.shape[-1]
        before, after = k // 2, k - 1 - k // 2
        axial, coronal, sagittal = self.weight.split(self.split)
        pad = nn.functional.pad
        return torch.cat(
            [
                pad(axial.unsqueeze(2), (0, 0, 0, 0, before, after)),
                pad(coronal.unsqueeze(3), (0, 0, before, after)),
                pad(sagittal.unsqueeze(4), (before, after)),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv3d(
            x, self.kernel3d(), self.bias, self.stride, self.padding, self.dilation, self.groups
        )


def _to_3d(module: nn.Module) -> nn.Module | None:
    """The 3D counterpart of a 2D layer (sharing its parameters), or None to keep it."""
    if isinstance(module, nn.Conv2d):
        return ACSConv(module)
    if isinstance(module, nn.BatchNorm2d):
        norm = nn.BatchNorm3d(module.num_features, module.eps, module.momentum, module.affine)
        norm.load_state_dict(module.state_dict())
        return norm
    if isinstance(module, nn.MaxPool2d):
        return nn.MaxPool3d(
            module.kernel_size, module.stride, module.padding, module.dilation,
            ceil_mode=module.ceil_mode,
        )  # fmt: skip
    if isinstance(module, nn.AvgPool2d):
        return nn.AvgPool3d(module.kernel_size, module.stride, module.padding, module.ceil_mode)
    if isinstance(module, nn.ZeroPad2d):
        left, right, top, bottom = module.padding
        return nn.ZeroPad3d((left, right, top, bottom, top, bottom))
    if isinstance(module, nn.AdaptiveAvgPool2d):
        size = module.output_size
        return AdaptiveAvgPool3d(int(size if isinstance(size, int) else size[0]))  # type: ignore[arg-type]
    if isinstance(module, nn.Module) and type(module).__name__.endswith("2d"):
        raise ConfigError(f"ACS conversion has no 3D version of {type(module).__name__}")
    return None


def convert_acs(model: nn.Module) -> nn.Module:
    """Swap every 2D layer of ``model`` for its ACS / 3D counterpart, in place; return it."""
    for name, child in list(model.named_children()):
        replacement = _to_3d(child)
        if replacement is None:
            convert_acs(child)
        else:
            setattr(model, name, replacement)
    return model


class _Wrapped3D(Classifier):
    """A 2D registry model (``self.net``) run on 3D inputs; names point into ``net``."""

    spatial_dims = 3

    def __init__(self, net: Classifier, cfg: ModelCfg, drop_rate: float) -> None:
        super().__init__(num_classes=net.num_classes, in_chans=net.in_chans, cfg=cfg)
        self.net = net
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier_name = f"net.{net.classifier_name}"
        self.stem_conv = f"net.{net.stem_conv}"
        self.cam_layer = f"net.{net.cam_layer}"
        self.stages = tuple(tuple(f"net.{m}" for m in stage) for stage in net.stages)

    def convert_state_dict(self, state: StateDict) -> StateDict:
        """Accept the 2D model's own keys (no ``net.`` prefix) as well as ours."""
        if any(k.startswith("net.") for k in state):
            return state
        return {f"net.{k}": v for k, v in self.net.convert_state_dict(state).items()}

    def imagenet_state_dict(self) -> StateDict:
        return {f"net.{k}": v for k, v in self.net.imagenet_state_dict().items()}


class ACSClassifier(_Wrapped3D):
    """A 2D registry model converted with ACS convolutions; its 2D weights load unchanged."""

    def __init__(self, net: Classifier, cfg: ModelCfg, drop_rate: float) -> None:
        super().__init__(convert_acs(net), cfg, drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(global_pool(x))
        return x if pre_logits else self.get_classifier()(x)


class Planes25D(_Wrapped3D):
    """A 2D model on the axial, coronal and sagittal planes through the volume centre.

    ``forward_features`` returns ``(B, 3 * C, h, w)``: the three planes' feature maps
    stacked as channels (planes of a non-cubic volume are first resized to its longest
    side); the classifier sees the three pooled feature vectors side by side. Its Grad-CAM
    maps are 2D (per plane), so 3D Grad-CAM is not offered.
    """

    def __init__(self, net: Classifier, cfg: ModelCfg, drop_rate: float) -> None:
        super().__init__(net, cfg, drop_rate)
        old = self.net.get_classifier()
        self.net.set_submodule(
            net.classifier_name, nn.Linear(3 * old.in_features, old.out_features)
        )
        self.cam_layer = ""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ConfigError(f"2.5D models take volumes (B, C, D, H, W), got {tuple(x.shape)}")
        d, h, w = (s // 2 for s in x.shape[2:])
        side = max(x.shape[2:])
        planes = torch.cat(
            [_square(p, side) for p in (x[:, :, d], x[:, :, :, h], x[:, :, :, :, w])]
        )
        features = self.net.forward_features(planes)
        return torch.cat(features.chunk(3), dim=1)

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(global_pool(x))
        return x if pre_logits else self.get_classifier()(x)

    def reset_classifier(self, num_classes: int) -> None:
        old = self.get_classifier()
        self.set_submodule(self.classifier_name, nn.Linear(old.in_features, num_classes))
        self.num_classes = num_classes


def _square(plane: torch.Tensor, side: int) -> torch.Tensor:
    """``plane`` ``(B, C, h, w)`` resized (bilinear) to ``side`` x ``side`` when it is not."""
    if plane.shape[-2:] == (side, side):
        return plane
    return nn.functional.interpolate(plane, size=(side, side), mode="bilinear")


def _from_2d(wrapper: type[_Wrapped3D], base: str, **kwargs: object) -> Classifier:
    """Build the 2D model ``base`` (no dropout of its own) and wrap it for 3D inputs."""
    drop_rate = float(kwargs.pop("drop_rate"))  # type: ignore[arg-type]
    net = create_model(base, drop_rate=0.0, **kwargs)  # type: ignore[arg-type]
    cfg = model_info(base).cfg
    return wrapper(net, cfg, drop_rate)


def _cfg3d(cfg_2d: ModelCfg) -> ModelCfg:
    return replace(cfg_2d, input_size=28, spatial_dims=(3,))


@register_model(_cfg3d(TV_CFG))
def acs_resnet18(
    *, num_classes: int, in_chans: int, image_size: int, drop_rate: float
) -> Classifier:
    """ResNet-18 with ACS convolutions (3D input; torchvision ImageNet weights)."""
    return _from_2d(
        ACSClassifier, "resnet18", num_classes=num_classes, in_chans=in_chans,
        image_size=image_size, drop_rate=drop_rate,
    )  # fmt: skip


@register_model(_cfg3d(LITE_CFG))
def acs_efficientnet_lite0(
    *, num_classes: int, in_chans: int, image_size: int, drop_rate: float
) -> Classifier:
    """EfficientNet-Lite0 with ACS convolutions (3D input; bundled ImageNet weights)."""
    return _from_2d(
        ACSClassifier, "efficientnet_lite0", num_classes=num_classes, in_chans=in_chans,
        image_size=image_size, drop_rate=drop_rate,
    )  # fmt: skip


@register_model(_cfg3d(LITE_CFG))
def planes25d_efficientnet_lite0(
    *, num_classes: int, in_chans: int, image_size: int, drop_rate: float
) -> Classifier:
    """EfficientNet-Lite0 on the three centre planes (2.5D; bundled ImageNet weights)."""
    return _from_2d(
        Planes25D, "efficientnet_lite0", num_classes=num_classes, in_chans=in_chans,
        image_size=image_size, drop_rate=drop_rate,
    )  # fmt: skip
