"""``slice_seq``: a 2D registry encoder per slice, then an aggregator over the slices.

A volume ``(B, C, D, H, W)`` is cut into its D axial slices; each goes through a 2D
classifier of the registry (``encoder=``, e.g. ``efficientnet_lite0`` with its bundled
ImageNet weights) in chunks of ``chunk`` slices per study, which bounds the activation memory of
inference. The slice embeddings ``(B, D, dim)`` are then pooled by an aggregator:

* ``mean``: the mean over valid slices;
* ``attention``: gated attention-MIL (Ilse et al., 2018), whose softmax weights say which
  slices drove the decision (:meth:`SliceSequence.slice_weights`);
* ``gru`` / ``lstm``: a bidirectional recurrent layer, then the mean of its outputs;
* ``transformer``: ``nn.TransformerEncoder`` (sinusoidal slice positions, padding mask),
  then gated attention pooling (so it exposes slice weights too).

Studies with different slice counts: :func:`pad_studies` stacks them, padding at the end,
and returns the ``slice_mask`` (True = real slice) that ``forward`` takes. The pipeline
itself resamples every study to one ``spatial_size``, so it never needs a mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from medlens.errors import ConfigError, ModelError
from medlens.models._base import Classifier, ModelCfg, StateDict
from medlens.models.registry import create_model, model_info, register_model

__all__ = ["AGGREGATORS", "SliceSequence", "pad_studies", "slice_seq"]

AGGREGATORS = ("mean", "attention", "gru", "lstm", "transformer")
_CFG = ModelCfg(input_size=64, imagenet="encoder", spatial_dims=(3,))


class GatedAttention(nn.Module):
    """Gated attention pooling: ``a = softmax(w^T (tanh(V h) * sigmoid(U h)))`` over slices."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.value = nn.Linear(dim, hidden)
        self.gate = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1)

    def weights(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, D) weights that sum to 1 over the valid slices."""
        logits = self.score(torch.tanh(self.value(h)) * torch.sigmoid(self.gate(h))).squeeze(-1)
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        return torch.softmax(logits, dim=1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return torch.einsum("bd,bdk->bk", self.weights(h, mask), h)


class SliceSequence(Classifier):
    """A 2D encoder per slice, an aggregator over slices, a linear classifier."""

    classifier_name = "classifier"
    spatial_dims = 3

    def __init__(
        self,
        *,
        encoder: Classifier,
        num_classes: int,
        aggregator: str,
        dim: int,
        chunk: int,
        drop_rate: float,
    ) -> None:
        cfg = replace(encoder.default_cfg, spatial_dims=(3,))
        super().__init__(num_classes=num_classes, in_chans=encoder.in_chans, cfg=cfg)
        features = encoder.get_classifier().in_features
        encoder.set_submodule(encoder.classifier_name, nn.Identity())
        self.encoder, self.aggregator_name, self.chunk = encoder, aggregator, chunk
        self.stem_conv = f"encoder.{encoder.stem_conv}"
        self.cam_layer = f"encoder.{encoder.cam_layer}"
        self.proj = nn.Sequential(nn.Linear(features, dim), nn.ReLU())
        self.pool: GatedAttention | None = None
        self.rnn: nn.Module | None = None
        self.context: nn.TransformerEncoder | None = None
        if aggregator in ("attention", "transformer"):
            self.pool = GatedAttention(dim, max(dim // 2, 8))
        if aggregator in ("gru", "lstm"):
            rnn = nn.GRU if aggregator == "gru" else nn.LSTM
            self.rnn = rnn(dim, dim // 2, batch_first=True, bidirectional=True)
        if aggregator == "transformer":
            layer = nn.TransformerEncoderLayer(
                dim, nhead=4, dim_feedforward=2 * dim, dropout=drop_rate, batch_first=True
            )
            self.context = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(self._pooled_dim(dim), num_classes)
        heads = tuple(n for n in ("pool", "rnn", "context") if getattr(self, n) is not None)
        encoder_stages = tuple(tuple(f"encoder.{n}" for n in g) for g in encoder.stages)
        self.stages = (*encoder_stages, ("proj", *heads))

    def _pooled_dim(self, dim: int) -> int:
        return 2 * (dim // 2) if self.rnn is not None else dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Slice embeddings ``(B, D, dim)`` of a volume ``(B, C, D, H, W)``."""
        if x.ndim != 5:
            raise ModelError(
                f"{self.model_name} takes volumes (B, C, D, H, W), got shape {tuple(x.shape)}"
            )
        parts = [self._encode(part) for part in x.split(self.chunk, dim=2)]
        return self.proj(torch.cat(parts, dim=1))

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, k, features)`` of ``k`` slices (chunked by depth, not batch, so
        the chunk count depends only on D and export keeps a dynamic batch axis)."""
        b, c, d, h, w = x.shape
        slices = x.transpose(1, 2).reshape(b * d, c, h, w)
        features = self.encoder.forward_head(self.encoder.forward_features(slices), pre_logits=True)
        return features.reshape(b, d, -1)

    def forward_head(
        self,
        x: torch.Tensor,
        *,
        pre_logits: bool = False,
        slice_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        pooled = self.drop(self._aggregate(x, slice_mask))
        return pooled if pre_logits else self.classifier(pooled)

    def forward(self, x: torch.Tensor, slice_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), slice_mask=slice_mask)

    def slice_weights(
        self, x: torch.Tensor, slice_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-slice attention weights ``(B, D)`` (0 on padding); attention aggregators only."""
        if self.pool is None:
            raise ModelError(
                f"aggregator {self.aggregator_name!r} has no per-slice weights "
                "(use 'attention' or 'transformer')"
            )
        h = self.forward_features(x)
        if self.context is not None:
            h = self._contextualise(h, slice_mask)
        return self.pool.weights(h, slice_mask)

    def _aggregate(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.rnn is not None:
            return _masked_mean(self._recur(h, mask), mask)
        if self.context is not None:
            h = self._contextualise(h, mask)
        if self.pool is not None:
            return self.pool(h, mask)
        return _masked_mean(h, mask)

    def _recur(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        assert self.rnn is not None
        if mask is None:
            return self.rnn(h)[0]
        lengths = mask.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            h, lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])[0]

    def _contextualise(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        assert self.context is not None
        h = h + _positions(h.shape[1], h.shape[2], h.device, h.dtype)
        return self.context(h, src_key_padding_mask=None if mask is None else ~mask)

    def imagenet_state_dict(self) -> StateDict:
        """The encoder's ImageNet weights; the aggregator and head keep their initialisation."""
        encoder = self.encoder
        head = f"{encoder.classifier_name}."
        weights = {
            f"encoder.{k}": v
            for k, v in encoder.imagenet_state_dict().items()
            if not k.startswith(head)
        }
        own = {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}
        return {**own, **weights}


def _masked_mean(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return h.mean(1)
    weights = mask.to(h.dtype).unsqueeze(-1)
    return (h * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def _positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal positions ``(1, length, dim)`` (Vaswani et al., 2017)."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device) * (-math.log(10_000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table.to(dtype).unsqueeze(0)


def pad_studies(volumes: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(C, D_i, H, W)`` volumes into ``(B, C, max D, H, W)``, zero-padded at the end,
    with the ``(B, max D)`` mask of real slices."""
    if not volumes:
        raise ModelError("pad_studies needs at least one volume")
    shapes = {(v.shape[0], *v.shape[2:]) for v in volumes}
    if len(shapes) != 1 or any(v.ndim != 4 for v in volumes):
        raise ModelError(f"studies must share (C, H, W) and be 4D; got {sorted(shapes)}")
    depth = max(v.shape[1] for v in volumes)
    out = volumes[0].new_zeros((len(volumes), volumes[0].shape[0], depth, *volumes[0].shape[2:]))
    mask = torch.zeros(len(volumes), depth, dtype=torch.bool)
    for i, volume in enumerate(volumes):
        out[i, :, : volume.shape[1]] = volume
        mask[i, : volume.shape[1]] = True
    return out, mask


@register_model(_CFG)
def slice_seq(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    drop_rate: float,
    encoder: str = "efficientnet_lite0",
    aggregator: str = "attention",
    dim: int = 128,
    chunk: int = 32,
    encoder_options: dict[str, Any] | None = None,
) -> SliceSequence:
    """2D encoder per slice + mean / attention-MIL / bi-GRU / bi-LSTM / transformer over slices."""
    if aggregator not in AGGREGATORS:
        raise ConfigError(f"slice_seq: aggregator must be one of {AGGREGATORS}, got {aggregator!r}")
    if dim < 8 or dim % 4 or chunk < 1:
        raise ConfigError("slice_seq: dim must be a multiple of 4 >= 8 and chunk >= 1")
    info = model_info(encoder)
    if info.kind != "classifier" or 2 not in info.spatial_dims:
        raise ConfigError(f"slice_seq: encoder {encoder!r} is not a 2D classifier")
    backbone = create_model(
        encoder, num_classes=1, in_chans=in_chans, image_size=image_size, **(encoder_options or {})
    )
    return SliceSequence(
        encoder=backbone,
        num_classes=num_classes,
        aggregator=aggregator,
        dim=dim,
        chunk=chunk,
        drop_rate=drop_rate,
    )
