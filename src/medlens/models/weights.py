"""Saving and loading weights safely: safetensors, or ``torch.load(weights_only=True)``.

No unsafe fallback: a file that needs arbitrary unpickling is refused.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from os import PathLike
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from medlens.errors import WeightsError
from medlens.models._base import Classifier, StateDict


def save_weights(model: torch.nn.Module, path: str | PathLike[str]) -> Path:
    """Write the model's state dict as safetensors, atomically (temp file + rename)."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": "pt", "architecture": str(getattr(model, "model_name", type(model).__name__))}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata=meta)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


_UNSAFE = (
    "cannot load weights safely from {path}: it is not a pickle of tensors only (objects "
    "inside, or not a torch file at all), and medlens never runs a pickle's code. Convert it "
    "to safetensors where you trust the file (safetensors.torch.save_file(state_dict, "
    "'weights.safetensors')) and pass that file."
)


def read_state_dict(path: str | PathLike[str]) -> StateDict:
    """Read tensors from ``.safetensors`` or a plain ``torch.save`` state dict (weights only)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower():  # torch's refusal of arbitrary objects
            raise WeightsError(_UNSAFE.format(path=path)) from None
        raise WeightsError(f"cannot load weights safely from {path}: {_first_line(exc)}") from None
    except (SafetensorError, RuntimeError, EOFError, ValueError) as exc:
        raise WeightsError(f"cannot load weights safely from {path}: {_first_line(exc)}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return state


def load_weights(
    model: Classifier, path: str | PathLike[str], *, strict: bool = True
) -> Classifier:
    """Load a state dict file into ``model``.

    With ``strict`` every key must match; otherwise a classifier of another size (or a
    missing one) is left as initialised and the stem is adapted to ``model.in_chans``.
    """
    state = model.convert_state_dict(read_state_dict(path))
    if strict:
        _load(model, state, str(path), allow_missing=())
    else:
        load_state(model, state, str(path))
    return model


def load_pretrained(model: Classifier, pretrained: str | PathLike[str]) -> Classifier:
    """Load ImageNet weights (``"imagenet"``) or a local file, adapting stem and classifier."""
    if pretrained == "imagenet":
        return load_state(model, model.imagenet_state_dict(), f"{model.model_name} ImageNet")
    return load_weights(model, pretrained, strict=False)


def load_state(model: Classifier, state: StateDict, source: str) -> Classifier:
    """Load ``state``: stem adapted to ``model.in_chans``, a mismatched classifier skipped."""
    state = dict(state)
    stem_key = f"{model.stem_conv}.weight"
    if stem_key in state:
        state[stem_key] = adapt_input_conv(state[stem_key], model.in_chans)
    head = f"{model.classifier_name}."
    own = model.state_dict()
    for key in [k for k in state if k.startswith(head)]:
        if key not in own or own[key].shape != state[key].shape:
            del state[key]
    head_keys = tuple(k for k in own if k.startswith(head))
    _load(model, state, source, allow_missing=head_keys)
    return model


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Adapt RGB stem kernels ``(out, 3, ...)`` to ``in_chans`` channels.

    One channel: the sum of the RGB kernels (a grey image then gives the same response
    as the same image repeated in R, G and B). Other counts: RGB repeated, rescaled by
    ``3 / in_chans``.
    """
    have = weight.shape[1]
    if have == in_chans:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_chans // have)
    return weight.repeat(1, reps, *([1] * (weight.ndim - 2)))[:, :in_chans] * (have / in_chans)


def _load(
    model: Classifier, state: StateDict, source: str, *, allow_missing: tuple[str, ...]
) -> None:
    own = model.state_dict()
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        shapes = ", ".join(
            f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong[:3]
        )
        raise WeightsError(f"weights from {source} do not fit {model.model_name}: {shapes}")
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in allow_missing]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"weights from {source} do not fit {model.model_name}: "
            f"missing {_few(missing)}, unexpected {_few(result.unexpected_keys)}"
        )


def _few(keys: list[str]) -> str:
    if not keys:
        return "none"
    more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
    return ", ".join(keys[:3]) + more


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
