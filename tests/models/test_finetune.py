"""Freezing and staged unfreezing follow each family's named stages."""

from __future__ import annotations

import pytest

from medlens.errors import ConfigError
from medlens.models import create_model, freeze_backbone, list_models, model_info, unfreeze

# foundation backbones (ViT-B/L at full size) are covered on tiny snapshots in test_foundation
CLASSIFIERS = [n for n in list_models(kind="classifier") if model_info(n).family != "foundation"]


def _trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_freeze_backbone_leaves_only_the_head() -> None:
    model = freeze_backbone(create_model("resnet18", num_classes=2))
    assert _trainable(model) == {"net.fc.weight", "net.fc.bias"}


def test_staged_unfreezing_goes_from_output_to_input() -> None:
    model = create_model("resnet18", num_classes=2)
    unfreeze(model, stages=1)
    assert {n.split(".")[1] for n in _trainable(model)} == {"layer4", "fc"}
    unfreeze(model, stages=2)
    assert {n.split(".")[1] for n in _trainable(model)} == {"layer3", "layer4", "fc"}
    unfreeze(model)
    assert _trainable(model) == {n for n, _ in model.named_parameters()}
    with pytest.raises(ConfigError, match="5 stages"):
        unfreeze(model, stages=6)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_stages_cover_the_backbone(name: str) -> None:
    """With every stage frozen, only head parameters (after the last stage) stay trainable."""
    model = freeze_backbone(create_model(name, num_classes=2, image_size=32))
    head = _trainable(model)
    assert {n for n, _ in model.get_classifier().named_parameters()} <= {
        n.rsplit(".", 1)[-1] for n in head
    }
    assert len(head) <= 4, f"{name}: backbone parameters left trainable: {sorted(head)}"
