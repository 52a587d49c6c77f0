"""Sliding-window inference over a whole preprocessed image (MONAI, Gaussian-weighted).

Used for validation during training, by :class:`medlens.inference.SegmentationPredictor`
and by the export check; ``model`` is any callable from a patch batch to logits (a PyTorch
module, or an ONNX Runtime session).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["sliding_window_logits"]


@torch.no_grad()
def sliding_window_logits(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    tensor: torch.Tensor,
    patch_size: tuple[int, ...],
    *,
    batch_size: int = 4,
    overlap: float = 0.5,
) -> torch.Tensor:
    """Logits ``(K, *spatial)`` for one preprocessed ``(C, *spatial)`` tensor."""
    from monai.inferers import sliding_window_inference

    is_module = isinstance(model, nn.Module)
    device = next(model.parameters()).device if is_module else torch.device("cpu")
    was_training = is_module and model.training
    if is_module:
        model.eval()
    try:
        logits = sliding_window_inference(
            tensor[None].to(device),
            roi_size=patch_size,
            sw_batch_size=batch_size,
            predictor=model,
            overlap=overlap,
            mode="gaussian",
            padding_mode="constant",
            cval=float(tensor.min()),
        )
    finally:
        if is_module:
            model.train(was_training)
    return torch.as_tensor(logits)[0].float().cpu()
