"""Freezing and staged unfreezing for transfer learning."""

from __future__ import annotations

from medlens.errors import ConfigError
from medlens.models._base import Classifier


def freeze_backbone(model: Classifier) -> Classifier:
    """Freeze every stage of the backbone; only the head stays trainable."""
    return unfreeze(model, stages=0)


def unfreeze(model: Classifier, stages: int | None = None) -> Classifier:
    """Make the head and the last ``stages`` backbone stages trainable, freeze the rest.

    ``stages=None`` makes the whole model trainable. Stages are the model's named groups
    (``model.stages``, e.g. ResNet: stem, layer1..layer4), so unfreezing goes from the
    output towards the input. Batch-norm statistics are not touched here.
    """
    n = len(model.stages)
    if stages is None:
        stages = n
    if not 0 <= stages <= n:
        raise ConfigError(f"{model.model_name} has {n} stages; cannot unfreeze {stages}")
    for param in model.parameters():
        param.requires_grad_(True)
    for group in model.stages[: n - stages]:
        for name in group:
            for param in model.get_submodule(name).parameters():
                param.requires_grad_(False)
    return model
