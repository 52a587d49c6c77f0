"""Glue for torchvision backbones: a thin adapter base and hash-checked ImageNet downloads."""

from __future__ import annotations

import urllib.error

import torch
from torch import nn
from torchvision.models import WeightsEnum

from medlens.errors import WeightsError
from medlens.models._base import Classifier, ModelCfg, StateDict

TV_CFG = ModelCfg()  # 224 px, ImageNet mean/std, weights from torchvision


class TorchvisionClassifier(Classifier):
    """Wraps a torchvision model as ``self.net``; subclasses say how to run its parts."""

    weights: WeightsEnum

    def __init__(
        self, net: nn.Module, *, num_classes: int, in_chans: int, drop_rate: float
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans, cfg=TV_CFG)
        self.net = net
        self.head_drop = nn.Dropout(drop_rate)
        if in_chans != 3:
            self.set_submodule(
                self.stem_conv, _with_in_chans(self.get_submodule(self.stem_conv), in_chans)
            )
        self.reset_classifier(num_classes)

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
        return x if pre_logits else self.get_classifier()(x)

    def convert_state_dict(self, state: StateDict) -> StateDict:
        """Accept the original torchvision keys (no ``net.`` prefix) as well as ours."""
        if any(k.startswith("net.") for k in state):
            return state
        return {f"net.{k}": v for k, v in state.items()}

    def imagenet_state_dict(self) -> StateDict:
        return self.convert_state_dict(download_torchvision(self.weights))


def download_torchvision(weights: WeightsEnum) -> StateDict:
    """torchvision's ImageNet weights (cached under ``$TORCH_HOME``), hash-checked on download."""
    try:
        return weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except (urllib.error.URLError, OSError) as exc:
        raise WeightsError(
            f"cannot download ImageNet weights {weights} ({exc}); when offline, pass a local "
            "weights file instead"
        ) from None
    except RuntimeError as exc:  # hash mismatch or unsafe pickle
        raise WeightsError(f"ImageNet weights {weights} failed their check: {exc}") from None


def _with_in_chans(conv: nn.Conv2d, in_chans: int) -> nn.Conv2d:
    return nn.Conv2d(
        in_chans,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        bias=conv.bias is not None,
    )
