"""LoRA adapters (peft) on a registry classifier: build, save only the adapter, reload, merge.

:func:`apply_lora` freezes the backbone, puts low-rank adapters on the target layers
(:func:`default_targets`: attention projections for transformers, pointwise convolutions
and linear layers for CNNs) and trains the classifier head fully (peft ``modules_to_save``).
:func:`save_adapter` writes only what training changed: the adapter matrices, the head and
the normalisation statistics (batch-norm running means and variances follow the new
images), as ``adapter.safetensors`` + ``adapter_config.json``, and returns the card's
``adapter`` section with the identity of the base weights (SHA-256 of their tensors).
:func:`load_adapted` rebuilds the base, checks that identity, loads the adapter and (by
default) merges it, so explain, export (ONNX, int8) and serve see a plain classifier.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from medlens.errors import ConfigError, WeightsError
from medlens.training.checkpoint import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from medlens.config import LoraOptions

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_FILE",
    "adapter_state",
    "apply_lora",
    "base_identity",
    "default_targets",
    "load_adapted",
    "lora_settings",
    "save_adapter",
]

ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
#: linear layers of an attention block that LoRA adapts (timm, transformers, open_clip names)
ATTENTION_LAYERS = frozenset(
    {"qkv", "proj", "q_proj", "k_proj", "v_proj", "out_proj", "query", "key", "value"}
)
_NORMS = (nn.modules.batchnorm._NormBase,)


def default_targets(model: nn.Module) -> list[str]:
    """Module names LoRA adapts: attention projections if the model has attention, else
    pointwise (1x1, ungrouped) convolutions and linear layers; never the classifier."""
    head = getattr(model, "classifier_name", None)
    modules = [(n, m) for n, m in model.named_modules() if n and not (head and _within(n, head))]
    mha = [n for n, m in modules if isinstance(m, nn.MultiheadAttention)]
    attention = [
        n for n, m in modules
        if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in ATTENTION_LAYERS
        and _in_attention(n) and not any(_within(n, a) for a in mha)
    ]  # fmt: skip
    if mha or attention:
        return sorted(mha + attention)
    convs = [n for n, m in modules if _pointwise(m) or isinstance(m, nn.Linear)]
    if not convs:
        raise ConfigError(
            f"{type(model).__name__}: no layer LoRA can adapt by default; "
            "give adaptation.lora.target_modules"
        )
    return convs


def _within(name: str, parent: str) -> bool:
    return name == parent or name.startswith(parent + ".")


def _in_attention(name: str) -> bool:
    parent = name.rsplit(".", 1)[0].rsplit(".", 1)[-1].lower()
    return "attn" in parent or "attention" in parent


def _pointwise(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Conv2d | nn.Conv3d)
        and all(k == 1 for k in module.kernel_size)
        and module.groups == 1
    )


def lora_settings(model: nn.Module, options: LoraOptions) -> dict[str, Any]:
    """The resolved adapter settings (what ``adapter_config.json`` and the card record)."""
    targets = options.target_modules
    return {
        "method": "lora",
        "r": options.r,
        "alpha": options.alpha,
        "dropout": options.dropout,
        "target_modules": default_targets(model) if targets == "auto" else list(targets),
        "modules_to_save": [model.classifier_name],  # type: ignore[attr-defined]
    }


def apply_lora(model: nn.Module, settings: dict[str, Any]) -> nn.Module:
    """``model`` wrapped by peft: adapters on ``target_modules``, head fully trainable."""
    import peft

    config = peft.LoraConfig(
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
        target_modules=settings["target_modules"],
        modules_to_save=settings["modules_to_save"],
    )
    try:
        return peft.get_peft_model(model, config)
    except ValueError as exc:  # peft: a target that is missing or of a type it cannot adapt
        raise ConfigError(f"adaptation.lora: {exc}") from None


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What LoRA training changes: trainable tensors and the norm layers' statistics."""
    state = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    for name, module in model.named_modules():
        if isinstance(module, _NORMS):
            for key, buffer in module.named_buffers(recurse=False):
                state[f"{name}.{key}"] = buffer.detach()
    return {k: v.contiguous().cpu() for k, v in state.items()}


def base_identity(model: nn.Module) -> str:
    """SHA-256 of the base weights' tensors (names, dtypes, shapes, values), head excluded.

    The head is replaced by the adapter's, so its random initialisation is no part of it.
    """
    head = getattr(model, "classifier_name", "")
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if head and _within(name, head):
            continue
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_adapter(
    model: nn.Module, run_dir: Path, settings: dict[str, Any], base: dict[str, Any]
) -> dict[str, Any]:
    """Write the adapter files; return the card fields (``sha256`` of the adapter file and
    the ``adapter`` section: settings, base identity, parameter counts, file size)."""
    from safetensors.torch import save

    data = save(adapter_state(model))
    atomic_write_bytes(run_dir / ADAPTER_FILE, data)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    section = {
        **settings,
        "file": ADAPTER_FILE,
        "bytes": len(data),
        "base": base,
        "trainable_params": trainable,
        "total_params": total,
    }
    atomic_write_text(run_dir / ADAPTER_CONFIG, json.dumps(section, indent=2) + "\n")
    return {"sha256": hashlib.sha256(data).hexdigest(), "adapter": section}


def load_adapted(run_dir: str | Path, card: Any, *, merge: bool = True) -> nn.Module:
    """The base model with the run's adapter, hash-checked; merged into plain weights unless
    ``merge`` is False (then the peft model, as it was trained)."""
    from safetensors.torch import load

    from medlens.models import create_model

    section = card.adapter
    path = Path(run_dir) / Path(str(section["file"])).name  # never a path out of the run
    if not path.is_file():
        raise WeightsError(f"adapter weights not found: {path}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != card.sha256:
        raise WeightsError(f"{path}: sha256 does not match the one recorded in model.json")
    base = create_model(**card.create_model, pretrained=section["base"]["pretrained"])
    if base_identity(base) != section["base"]["sha256"]:
        raise WeightsError(
            f"{path}: the base weights ({section['base']['pretrained']}) differ from those "
            "the adapter was trained on"
        )
    model = apply_lora(base, section)
    _load_partial(model, load(data), path)
    model.eval()
    return model.merge_and_unload() if merge else model  # type: ignore[operator]


def _load_partial(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load adapter tensors; every trainable tensor must be among them, nothing else extra."""
    expected = set(adapter_state(model))
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise WeightsError(
            f"{path}: the adapter does not fit the model ({len(missing)} tensors missing, "
            f"{len(unexpected)} unexpected, e.g. {(missing + unexpected)[:2]})"
        )
    model.load_state_dict(state, strict=False)
