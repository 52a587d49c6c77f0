"""Segmentation networks: a self-configuring U-Net (MONAI ``DynUNet``), 2D or 3D.

Registered in the one model registry as ``kind="segmenter"``: ``create_model("dynunet",
num_classes=3, in_chans=1, kernel_sizes=..., strides=..., filters=...)`` returns a module
whose ``forward(x)`` gives ``(B, classes, *spatial)`` logits. The topology (kernel sizes,
strides, filters) comes from a :class:`~medlens.segmentation.SegPlan`. MONAI is imported
when a model is built (``pip install medlens[seg]``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from medlens.errors import ConfigError
from medlens.models._base import ModelCfg
from medlens.models.registry import register_model

__all__ = ["dynunet"]

_CFG = ModelCfg(
    input_size=0, mean=(0.0,), std=(1.0,), imagenet=None, spatial_dims=(2, 3), kind="segmenter"
)


def _check_topology(
    name: str,
    kernel_sizes: Sequence[Sequence[int]],
    strides: Sequence[Sequence[int]],
    filters: Sequence[int],
) -> None:
    levels = len(kernel_sizes)
    if levels < 3 or len(strides) != levels or len(filters) != levels:
        raise ConfigError(
            f"{name}: kernel_sizes, strides and filters need one entry per level (>= 3), "
            f"got {len(kernel_sizes)}, {len(strides)}, {len(filters)}"
        )
    dims = {len(k) for k in kernel_sizes} | {len(s) for s in strides}
    if dims not in ({2}, {3}):
        raise ConfigError(f"{name}: every kernel size and stride needs 2 or 3 axes, all alike")


@register_model(_CFG)
def dynunet(
    *,
    num_classes: int,
    in_chans: int,
    kernel_sizes: list[list[int]],
    strides: list[list[int]],
    filters: list[int],
    dropout: float | None = None,
    res_block: bool = False,
) -> nn.Module:
    """nnU-Net's U-Net (MONAI DynUNet): instance norm, leaky ReLU, strided convolutions."""
    from monai.networks.nets import DynUNet

    _check_topology("dynunet", kernel_sizes, strides, filters)
    model = DynUNet(
        spatial_dims=len(kernel_sizes[0]),
        in_channels=in_chans,
        out_channels=num_classes,
        kernel_size=[list(k) for k in kernel_sizes],
        strides=[list(s) for s in strides],
        upsample_kernel_size=[list(s) for s in strides[1:]],
        filters=filters,
        dropout=dropout,
        res_block=res_block,
    )
    # ``skip_layers`` re-registers the blocks above under a second name; keep it as a plain
    # attribute (forward still uses it) so each weight appears once in the state dict.
    model.__dict__["skip_layers"] = model._modules.pop("skip_layers")
    # Grad-CAM on the last decoder stage: full resolution, and every skip connection has
    # joined (the bottleneck's 1/2^k grid lands beside small structures)
    model.cam_layer = f"upsamples.{len(model.upsamples) - 1}"
    model.num_classes, model.in_chans = num_classes, in_chans
    model.spatial_dims = len(kernel_sizes[0])
    return model
