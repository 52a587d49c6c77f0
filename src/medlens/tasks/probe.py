"""Probe adaptation: a linear or MLP head trained on cached embeddings of a frozen backbone.

The backbone embeds every image of the dataset once (:mod:`medlens.embeddings`, cached by
identity, so later runs over the same model, weights, preprocessing and images reuse the
vectors); the trainer then fits only the head, on vectors, in seconds. The saved model is
the backbone with the trained head in place of its classifier, so the run directory is a
normal one that evaluate, predict, explain, export and serve load unchanged.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from medlens.config import TrainConfig
    from medlens.data.manifest import Manifest
    from medlens.training.distributed import DistContext
    from medlens.transforms.preprocess import Preprocessing

__all__ = ["build_head", "probe_cache_dir", "probe_parts"]


def probe_cache_dir(config: TrainConfig) -> Path:
    """Where the embeddings are cached: as configured, else beside the run directory."""
    configured = config.adaptation.probe.cache_dir
    return Path(configured) if configured else Path(config.output_dir).parent / "embeddings-cache"


def build_head(config: TrainConfig, dim: int, num_outputs: int) -> nn.Module:
    """The probe's head: the classifier layer(s) the saved model will carry."""
    probe = config.adaptation.probe
    if probe.head == "linear":
        return nn.Linear(dim, num_outputs)
    return nn.Sequential(
        nn.Linear(dim, probe.hidden), nn.ReLU(inplace=True), nn.Linear(probe.hidden, num_outputs)
    )


def probe_parts(
    config: TrainConfig,
    manifest: Manifest,
    backbone: nn.Module,
    preprocessing: Preprocessing,
    task: str,
    dist: DistContext,
) -> dict[str, Any]:
    """Head, loaders over the embeddings and the backbone+head builder for the card."""
    from medlens.embeddings import Encoder, cached_embeddings
    from medlens.training.data import CachedDataset, encode_targets, make_loader

    name = f"{backbone.model_name}:{config.model.pretrained or 'random'}"  # type: ignore[union-attr]
    embeddings = cached_embeddings(
        Encoder(backbone, preprocessing, name), manifest, probe_cache_dir(config)
    )
    num_outputs = backbone.get_classifier().out_features  # type: ignore[operator]
    head = build_head(config, int(embeddings.vectors.shape[1]), num_outputs)
    loaders = []
    for split, is_train in ((config.data.train_split, True), (config.data.val_split, False)):
        records = list(manifest.split(split))
        x = torch.from_numpy(embeddings.select([r.path for r in records]))
        y = encode_targets(records, manifest.classes, task)
        loaders.append(
            make_loader(
                CachedDataset(x, y, seed=config.seed),
                batch_size=config.batch_size or 64,
                train=is_train,
                seed=config.seed,
                dist=dist,
                num_workers=0,
            )
        )

    def with_head(trained: nn.Module) -> nn.Module:
        model = copy.deepcopy(backbone)
        model.set_submodule(model.classifier_name, copy.deepcopy(trained))  # type: ignore[arg-type]
        return model

    return {"head": head, "train": loaders[0], "val": loaders[1], "final_model": with_head}
