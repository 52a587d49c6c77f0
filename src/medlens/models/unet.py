"""Segmentation networks: a self-configuring U-Net (MONAI ``DynUNet``), 2D or 3D.

The classification registry (:func:`medlens.models.create_model`) promises ``(B, classes)``
logits and a linear head; a segmenter returns ``(B, classes, *spatial)`` logits instead, so
segmenters live in their own small registry behind :func:`create_segmentation_model`.
Topology (kernel sizes, strides, filters) comes from a :class:`~medlens.segmentation.SegPlan`.
MONAI is imported when a model is built (``pip install medlens[seg]``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from medlens.errors import ConfigError, ModelError

__all__ = ["create_segmentation_model", "list_segmentation_models"]

_SEGMENTERS: dict[str, Callable[..., nn.Module]] = {}


def _register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    _SEGMENTERS[fn.__name__] = fn
    return fn


def list_segmentation_models() -> list[str]:
    """Registered segmentation model names, sorted."""
    return sorted(_SEGMENTERS)


def create_segmentation_model(
    name: str,
    *,
    num_classes: int,
    in_chans: int = 1,
    kernel_sizes: Sequence[Sequence[int]],
    strides: Sequence[Sequence[int]],
    filters: Sequence[int],
    **options: Any,
) -> nn.Module:
    """Build a segmenter whose ``forward(x)`` gives ``(B, num_classes, *spatial)`` logits.

    Args:
        name: a name from :func:`list_segmentation_models`.
        num_classes: output channels, background included.
        in_chans: input channels.
        kernel_sizes: one kernel size per level and axis (level 0 = input resolution).
        strides: one stride per level and axis (level 0 is all ones).
        filters: feature maps per level.
        **options: builder-specific options (``dropout``, ``res_block``).
    """
    try:
        builder = _SEGMENTERS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _SEGMENTERS, n=2, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelError(
            f"unknown segmentation model {name!r}{hint} (known: {', '.join(_SEGMENTERS)})"
        ) from None
    _check_topology(name, kernel_sizes, strides, filters)
    model = builder(
        num_classes=num_classes,
        in_chans=in_chans,
        kernel_sizes=[list(k) for k in kernel_sizes],
        strides=[list(s) for s in strides],
        filters=list(filters),
        **options,
    )
    model.model_name = name
    model.num_classes = num_classes
    model.in_chans = in_chans
    model.spatial_dims = len(kernel_sizes[0])
    return model


def _check_topology(
    name: str,
    kernel_sizes: Sequence[Sequence[int]],
    strides: Sequence[Sequence[int]],
    filters: Sequence[int],
) -> None:
    levels = len(kernel_sizes)
    if levels < 2 or len(strides) != levels or len(filters) != levels:
        raise ConfigError(
            f"{name}: kernel_sizes, strides and filters need one entry per level (>= 2), "
            f"got {len(kernel_sizes)}, {len(strides)}, {len(filters)}"
        )
    dims = {len(k) for k in kernel_sizes} | {len(s) for s in strides}
    if dims not in ({2}, {3}):
        raise ConfigError(f"{name}: every kernel size and stride needs 2 or 3 axes, all alike")


@_register
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

    model = DynUNet(
        spatial_dims=len(kernel_sizes[0]),
        in_channels=in_chans,
        out_channels=num_classes,
        kernel_size=kernel_sizes,
        strides=strides,
        upsample_kernel_size=strides[1:],
        filters=filters,
        dropout=dropout,
        res_block=res_block,
    )
    # ``skip_layers`` re-registers the blocks above under a second name; keep it as a plain
    # attribute (forward still uses it) so each weight appears once in the state dict.
    model.__dict__["skip_layers"] = model._modules.pop("skip_layers")
    model.cam_layer = "bottleneck"
    return model
