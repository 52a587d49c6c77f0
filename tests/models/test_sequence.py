"""slice_seq: aggregators, padding masks, per-slice weights, ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medlens.errors import ConfigError, ModelError
from medlens.models import create_model
from medlens.models.sequence import AGGREGATORS, pad_studies


def _model(aggregator: str, **kwargs):
    torch.manual_seed(0)
    options = {"encoder": "simple_cnn", "dim": 16, "chunk": 3, **kwargs}
    return create_model(
        "slice_seq", num_classes=2, in_chans=1, image_size=16, aggregator=aggregator, **options
    ).eval()


@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_padding_with_a_mask_leaves_each_study_unchanged(aggregator: str) -> None:
    model = _model(aggregator)
    short, long = torch.randn(1, 4, 16, 16), torch.randn(1, 7, 16, 16)
    batch, mask = pad_studies([short, long])
    assert batch.shape == (2, 1, 7, 16, 16) and mask.sum(1).tolist() == [4, 7]
    with torch.no_grad():
        padded = model(batch, slice_mask=mask)
        alone = torch.cat([model(short[None]), model(long[None])])
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-4)


def test_chunking_does_not_change_the_output() -> None:
    x = torch.randn(2, 1, 7, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(_model("gru", chunk=2)(x), _model("gru", chunk=64)(x))


@pytest.mark.parametrize("aggregator", ["attention", "transformer"])
def test_slice_weights_sum_to_one_and_skip_padding(aggregator: str) -> None:
    model = _model(aggregator)
    batch, mask = pad_studies([torch.randn(1, 3, 16, 16), torch.randn(1, 5, 16, 16)])
    with torch.no_grad():
        weights = model.slice_weights(batch, mask)
    assert weights.shape == (2, 5)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    assert torch.all(weights[0, 3:] == 0) and torch.all(weights[mask] > 0)


def test_attention_weights_follow_the_informative_slice() -> None:
    """Trained to spot one bright slice, attention puts most weight on that slice."""
    torch.manual_seed(0)
    model = _model("attention").train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        x = torch.randn(8, 1, 6, 16, 16, generator=gen) * 0.1
        y = torch.arange(8) % 2
        where = torch.randint(0, 6, (8,), generator=gen)
        x[y == 1, :, where[y == 1]] += 2.0
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.randn(1, 1, 6, 16, 16, generator=gen) * 0.1
    x[0, :, 4] += 2.0
    with torch.no_grad():
        assert int(model.eval().slice_weights(x).argmax()) == 4


def test_bad_options_and_inputs_are_refused() -> None:
    with pytest.raises(ConfigError, match="aggregator must be one of"):
        _model("max")
    with pytest.raises(ConfigError, match="not a 2D classifier"):
        _model("mean", encoder="dynunet")
    with pytest.raises(ModelError, match=r"takes volumes \(B, C, D, H, W\)"):
        _model("mean")(torch.randn(1, 1, 16, 16))
    with pytest.raises(ModelError, match="no per-slice weights"):
        _model("gru").slice_weights(torch.randn(1, 1, 3, 16, 16))
    with pytest.raises(ModelError, match="share"):
        pad_studies([torch.randn(1, 3, 16, 16), torch.randn(1, 3, 8, 8)])


def test_imagenet_weights_fill_the_encoder_only() -> None:
    pretrained = create_model(
        "slice_seq", num_classes=2, in_chans=1, image_size=32, pretrained="imagenet"
    )
    plain = create_model("efficientnet_lite0", num_classes=2, in_chans=1, pretrained="imagenet")
    name = pretrained.stem_conv.removeprefix("encoder.") + ".weight"
    torch.testing.assert_close(pretrained.state_dict()[f"encoder.{name}"], plain.state_dict()[name])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch.export's notes on nn.GRU internals
@pytest.mark.parametrize("aggregator", ["attention", "gru", "transformer"])
def test_onnx_export_verifies(aggregator: str, tmp_path: Path) -> None:
    from medlens.export.onnx_export import export_onnx
    from medlens.inference.onnx_runtime import OnnxModel

    model = _model(aggregator, chunk=64)
    x = torch.randn(2, 1, 5, 16, 16)
    path = export_onnx(model, x, tmp_path / "model.onnx")
    batch = torch.cat([x, x.flip(0), x])
    with torch.inference_mode():
        expected = model(batch)
    np.testing.assert_allclose(OnnxModel(path)(batch).numpy(), expected.numpy(), atol=1e-4)
