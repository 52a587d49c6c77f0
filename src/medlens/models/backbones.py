"""The three sources of foundation backbones behind one small interface.

A backbone is built from an architecture mapping (``arch``: what the snapshot's config file
says, or the catalogue's default) and gives ``features(x)`` (tokens, or a vector) and
``pool(features) -> (B, dim)``. :func:`read_snapshot` turns a verified snapshot folder into
``(arch, state, normalisation)`` for its source; the state's keys are the backbone's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from medlens.errors import ConfigError, WeightsError

__all__ = ["BACKBONES", "Backbone", "build_backbone", "read_snapshot"]

StateDict = dict[str, torch.Tensor]


class Backbone(nn.Module):
    """A source model and what medlens needs to know about it.

    Attributes:
        arch: the architecture mapping it was built from (stored in the run's card).
        dim: the embedding dimension.
        stem: dotted name of the patch-embedding convolution (adapted to ``in_chans``).
        blocks: dotted names of the transformer blocks, input to output.
        prefix_tokens: class/register tokens before the patch tokens (Grad-CAM grid).
        patch: the patch side.
    """

    arch: dict[str, Any]
    dim: int
    stem: str
    blocks: tuple[str, ...] = ()
    prefix_tokens: int = 1
    patch: int = 16

    @property
    def cam_layer(self) -> str:
        """The Grad-CAM target: the first norm of the last block (tokens in, tokens out)."""
        return f"{self.blocks[-1]}.norm1"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return features[:, 0]

    def set_input_size(self, image_size: int) -> None:
        """Adapt position embeddings to ``image_size`` (after pretrained weights are in)."""


class HFBackbone(Backbone):
    """A transformers vision model (``AutoModel``; DINOv2 for RAD-DINO); CLS-token pool."""

    stem = "model.embeddings.patch_embeddings.projection"

    def __init__(
        self, arch: dict[str, Any], in_chans: int, weights_dir: Path | None = None
    ) -> None:
        super().__init__()
        from transformers import CONFIG_MAPPING, AutoModel

        model_type = arch.get("model_type")
        if model_type not in CONFIG_MAPPING:
            raise ConfigError(f"transformers has no model type {model_type!r}")
        self.arch = dict(arch)
        config = CONFIG_MAPPING[model_type].from_dict(dict(arch))
        if weights_dir is None:
            config.num_channels = in_chans
            self.model = AutoModel.from_config(config)
        else:  # transformers maps the checkpoint's (older) key names itself
            self.model = AutoModel.from_pretrained(
                weights_dir, config=config, local_files_only=True, use_safetensors=True
            )
            self._adapt_channels(in_chans)
        self.dim = int(config.hidden_size)
        self.patch = int(config.patch_size)
        self.prefix_tokens = 1 + int(getattr(config, "num_register_tokens", 0) or 0)
        self.blocks = tuple(f"model.encoder.layer.{i}" for i in range(config.num_hidden_layers))

    def _adapt_channels(self, in_chans: int) -> None:
        """Sum (or repeat) the pretrained RGB patch kernels for ``in_chans`` inputs."""
        from medlens.models.weights import adapt_input_conv

        old = _conv(self, self.stem)
        if old.in_channels == in_chans:
            return
        _replace_input_conv(self, self.stem, in_chans)
        with torch.no_grad():
            _conv(self, self.stem).weight.copy_(adapt_input_conv(old.weight, in_chans))
            if old.bias is not None:
                _conv(self, self.stem).bias.copy_(old.bias)
        self.model.config.num_channels = in_chans
        patches = self.get_submodule(self.stem.rsplit(".", 1)[0])
        if hasattr(patches, "num_channels"):
            patches.num_channels = in_chans

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).last_hidden_state

    def convert(self, state: StateDict) -> StateDict:
        return {f"model.{k}": v for k, v in state.items()}


class TimmBackbone(Backbone):
    """A timm ViT built without its classifier; timm's own pre-logits pool."""

    stem = "model.patch_embed.proj"

    def __init__(self, arch: dict[str, Any], in_chans: int) -> None:
        super().__init__()
        import timm

        args = {**(arch.get("model_args") or {}), "num_classes": 0, "in_chans": in_chans}
        try:
            self.model = timm.create_model(arch["architecture"], pretrained=False, **args)
        except (KeyError, RuntimeError, TypeError) as exc:
            raise ConfigError(f"timm cannot build {arch.get('architecture')!r}: {exc}") from None
        self.arch = dict(arch)
        self.dim = int(self.model.num_features)
        self.prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 1))
        self.patch = int(self.model.patch_embed.patch_size[0])
        self.blocks = tuple(f"model.blocks.{i}" for i in range(len(self.model.blocks)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(features, pre_logits=True)

    def convert(self, state: StateDict) -> StateDict:
        return {f"model.{k}": v for k, v in state.items() if not k.startswith("head.")}

    def set_input_size(self, image_size: int) -> None:
        if tuple(self.model.patch_embed.img_size) != (image_size, image_size):
            self.model.set_input_size(img_size=(image_size, image_size))


class OpenClipBackbone(Backbone):
    """The image tower of an open_clip model; its output is the projected embedding."""

    def __init__(self, arch: dict[str, Any], in_chans: int) -> None:
        super().__init__()
        from open_clip.model import _build_vision_tower

        cfg = arch["model_cfg"]
        self.arch = dict(arch)
        self.model = _build_vision_tower(
            cfg["embed_dim"], cfg["vision_cfg"], quick_gelu=cfg.get("quick_gelu", False)
        )
        self.dim = int(cfg["embed_dim"])
        self.stem = (
            "model.trunk.patch_embed.proj" if hasattr(self.model, "trunk") else "model.conv1"
        )
        self.image_size = int(cfg["vision_cfg"].get("image_size", 224))
        if in_chans != 3:
            _replace_input_conv(self, self.stem, in_chans)
        if hasattr(self.model, "trunk"):
            self.blocks = tuple(
                f"model.trunk.blocks.{i}" for i in range(len(self.model.trunk.blocks))
            )
        else:
            count = len(self.model.transformer.resblocks)
            self.blocks = tuple(f"model.transformer.resblocks.{i}" for i in range(count))
        self.patch = int(_conv(self, self.stem).kernel_size[0])

    @property
    def cam_layer(self) -> str:
        return f"{self.blocks[-1]}.{'norm1' if hasattr(self.model, 'trunk') else 'ln_1'}"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def convert(self, state: StateDict) -> StateDict:
        return {f"model.{k[7:]}": v for k, v in state.items() if k.startswith("visual.")}

    def set_input_size(self, image_size: int) -> None:
        if image_size == self.image_size:
            return
        if not hasattr(self.model, "trunk"):
            raise ConfigError(
                f"this open_clip image tower takes {self.image_size} px input, not {image_size}"
            )
        self.model.trunk.set_input_size(img_size=(image_size, image_size))


def _conv(module: nn.Module, name: str) -> nn.Conv2d:
    return module.get_submodule(name)  # type: ignore[return-value]


def _replace_input_conv(module: nn.Module, name: str, in_chans: int) -> None:
    old = _conv(module, name)
    new = nn.Conv2d(
        in_chans, old.out_channels, old.kernel_size, old.stride, old.padding,
        bias=old.bias is not None,
    )  # fmt: skip
    module.set_submodule(name, new)


BACKBONES: dict[str, type[Backbone]] = {
    "hf": HFBackbone,
    "timm": TimmBackbone,
    "open_clip": OpenClipBackbone,
}


def build_backbone(
    source: str, arch: dict[str, Any], in_chans: int, weights_dir: Path | None = None
) -> Backbone:
    """A backbone of ``source`` from ``arch`` for ``in_chans``: randomly initialised, or
    (transformers only) with the weights of the verified ``weights_dir``."""
    if source not in BACKBONES:
        raise ConfigError(f"unknown backbone source {source!r} (known: {', '.join(BACKBONES)})")
    if source == "hf":
        return HFBackbone(arch, in_chans, weights_dir)
    return BACKBONES[source](arch, in_chans)


def read_snapshot(
    source: str, folder: Path, files: tuple[Path, ...]
) -> tuple[dict[str, Any], StateDict | None, dict[str, list[float]]]:
    """``(arch, state, {"mean", "std"} or {})`` of a verified snapshot of ``source``.

    transformers snapshots give no state: ``from_pretrained`` reads (and renames) it.
    """
    if source == "hf":
        arch = _json(folder / "config.json")
        pre = _json(folder / "preprocessor_config.json", required=False)
        norm = {"mean": pre["image_mean"], "std": pre["image_std"]} if "image_mean" in pre else {}
        return arch, None, norm
    state: StateDict = {}
    for file in files:
        state.update(load_file(file))
    if source == "timm":
        config = _json(folder / "config.json")
        pretrained_cfg = config.get("pretrained_cfg", {})
        args = dict(config.get("model_args") or {})
        if "input_size" in pretrained_cfg and "img_size" not in args:
            args["img_size"] = int(pretrained_cfg["input_size"][-1])
        arch = {"architecture": config["architecture"], "model_args": args}
        return arch, state, {k: pretrained_cfg[k] for k in ("mean", "std") if k in pretrained_cfg}
    config = _json(folder / "open_clip_config.json")
    pre = config.get("preprocess_cfg", {})
    norm = {k: pre[k] for k in ("mean", "std") if k in pre}
    return {"model_cfg": config["model_cfg"]}, state, norm


def _json(path: Path, *, required: bool = True) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        if required:
            raise WeightsError(f"{path.parent}: {path.name} missing beside the weights") from None
        return {}
    except ValueError:
        raise WeightsError(f"{path}: not valid JSON") from None
