"""The ordinal head: any registry classifier (2D or 3D) can be built rank-consistent."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medlens.errors import ConfigError
from medlens.models import create_model, list_models, load_weights, model_info, save_weights
from medlens.models.heads import OrdinalHead, grade_log_probs
from medlens.training.losses import CoralLoss

GRADES = 4

# foundation backbones (ViT-B/L at full size) are covered on tiny snapshots in test_foundation
CLASSIFIERS = [n for n in list_models(kind="classifier") if model_info(n).family != "foundation"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_classifier_takes_the_ordinal_head(name: str, tmp_path) -> None:
    volumes_only = 2 not in model_info(name).spatial_dims
    size = 16 if volumes_only else 32
    model = create_model(name, num_classes=GRADES, in_chans=1, image_size=size, head="ordinal")
    model.eval()
    x = torch.randn(3, 1, *(size,) * (3 if volumes_only else 2))
    with torch.no_grad():
        out = model(x)
    assert isinstance(model.get_classifier(), OrdinalHead) and out.shape == (3, GRADES)
    assert torch.allclose(out.exp().sum(1), torch.ones(3), atol=1e-5)
    path = save_weights(model, tmp_path / "w.safetensors")
    fresh = create_model(name, num_classes=GRADES, in_chans=1, image_size=size, head="ordinal")
    load_weights(fresh.eval(), path)
    with torch.no_grad():
        assert torch.equal(fresh(x), out)


def test_3d_classifier_with_ordinal_head() -> None:
    model = create_model(
        "simple_cnn", num_classes=GRADES, in_chans=1, image_size=16, spatial_dims=3, head="ordinal"
    ).eval()
    out = model(torch.randn(2, 1, 16, 16, 16))
    assert out.shape == (2, GRADES) and torch.allclose(out.exp().sum(1), torch.ones(2))


def test_rank_consistency_even_after_training_steps() -> None:
    """Cumulative probabilities P(grade > k) never increase with k, whatever the weights."""
    head = OrdinalHead(8, 5)
    optimiser = torch.optim.SGD(head.parameters(), lr=5.0)
    x, y = torch.randn(64, 8), torch.randint(0, 5, (64,))
    for _ in range(20):  # big steps push the biases around
        optimiser.zero_grad()
        CoralLoss()(head(x), y).backward()
        optimiser.step()
    cumulative = head.cumulative_logits(x).sigmoid()
    assert torch.all(cumulative[:, 1:] <= cumulative[:, :-1])
    from_probs = 1 - head(x).exp().cumsum(1)[:, :-1]  # P(grade > k) from grade probabilities
    assert torch.allclose(from_probs, cumulative, atol=1e-5)


def test_coral_loss_is_the_mean_binary_cross_entropy_of_the_cut_points() -> None:
    head = OrdinalHead(6, 4)
    x, y = torch.randn(10, 6), torch.randint(0, 4, (10,))
    z = head.cumulative_logits(x)
    levels = (y[:, None] > torch.arange(3)).float()
    expected = F.binary_cross_entropy_with_logits(z, levels)
    assert torch.allclose(CoralLoss()(head(x), y), expected, atol=1e-6)


def test_grade_log_probs_are_stable_for_large_logits() -> None:
    z = torch.tensor([[80.0, 0.0, -80.0], [1e-3, 0.0, -1e-3]])
    out = grade_log_probs(z)
    assert torch.isfinite(out).all() and torch.allclose(out.exp().sum(1), torch.ones(2))


def test_head_option_is_checked() -> None:
    with pytest.raises(ConfigError, match="unknown head"):
        create_model("simple_cnn", num_classes=3, in_chans=1, head="softmax")
    with pytest.raises(ConfigError, match="at least 2 grades"):
        create_model("simple_cnn", num_classes=1, in_chans=1, head="ordinal")
    with pytest.raises(ConfigError, match="segmenter"):
        create_model("dynunet", num_classes=3, in_chans=1, head="ordinal")
