"""Gradient checkpointing: keep fewer activations, recompute them in the backward pass.

:func:`enable_grad_checkpointing` uses the model's own switch where it has one (timm's
``set_grad_checkpointing``, transformers' ``gradient_checkpointing_enable``), else wraps
the blocks of the registry model's ``stages`` in :func:`torch.utils.checkpoint.checkpoint`
(non-reentrant). The gradients are the same as without it; so are batch-norm running
statistics, which the recomputation does not update a second time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from medlens.errors import ConfigError

__all__ = ["checkpointed_blocks", "enable_grad_checkpointing"]

_NORMS = (nn.modules.batchnorm._BatchNorm,)


def enable_grad_checkpointing(model: nn.Module) -> str:
    """Turn checkpointing on; return how (``timm``, ``transformers`` or ``blocks``)."""
    for module in (model, *model.children()):
        if hasattr(module, "set_grad_checkpointing"):
            module.set_grad_checkpointing(True)
            return "timm"
        if hasattr(module, "gradient_checkpointing_enable"):
            module.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
            return "transformers"
    blocks = checkpointed_blocks(model)
    if not blocks:
        raise ConfigError(
            f"model.grad_checkpointing: {type(model).__name__} has no stages to checkpoint"
        )
    for block in blocks:
        block.forward = partial(_checkpointed, block, block.forward)  # type: ignore[method-assign]
    return "blocks"


def checkpointed_blocks(model: nn.Module) -> list[nn.Module]:
    """The modules that get checkpointed: the blocks of each stage (the children of a
    ``Sequential`` of blocks, e.g. ResNet's BasicBlocks), else the stage module itself."""
    blocks: list[nn.Module] = []
    for group in getattr(model, "stages", ()):
        for name in group:
            module = model.get_submodule(name)
            children = list(module.children()) if isinstance(module, nn.Sequential) else []
            nested = children and all(any(True for _ in c.children()) for c in children)
            blocks.extend(children if nested else [module])
    return [b for b in blocks if any(True for _ in b.parameters())]


def _checkpointed(module: nn.Module, forward: Any, *args: Any, **kwargs: Any) -> Any:
    if not (module.training and torch.is_grad_enabled()):
        return forward(*args, **kwargs)
    return checkpoint(
        forward,
        *args,
        use_reentrant=False,
        context_fn=lambda: (contextlib.nullcontext(), _frozen_norm_stats(module)),
        **kwargs,
    )


@contextlib.contextmanager
def _frozen_norm_stats(module: nn.Module) -> Iterator[None]:
    """During recomputation batch norm must not count the batch twice: momentum 0 keeps
    the running statistics (and ``num_batches_tracked``) as the first forward left them."""
    norms = [m for m in module.modules() if isinstance(m, _NORMS) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)
