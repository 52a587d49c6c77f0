"""The model registry: ``@register_model`` entrypoints behind one :func:`create_model`.

Classifiers and segmenters share it; each entry says its kind and the spatial dimensions
it can be built for (:class:`ModelInfo`), so a task can refuse a model that does not fit.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any, Literal, TypeVar

from torch import nn

from medlens.errors import ConfigError, ModelError
from medlens.models._base import Classifier, ModelCfg

Pretrained = bool | Literal["imagenet"] | str | PathLike[str]
Builder = TypeVar("Builder", bound=Callable[..., Classifier])


#: parameters of builders that load their own weights (foundation backbones)
_OWN_WEIGHTS = {"pretrained", "accept_license"}
_COMMON = {
    "classifier": {"num_classes", "in_chans", "image_size", "drop_rate", *_OWN_WEIGHTS},
    "segmenter": {"num_classes", "in_chans"},
    "generator": {"num_classes", "in_chans", "image_size"},
}


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its name, family, one-line description and default config."""

    name: str
    family: str
    description: str
    cfg: ModelCfg
    builder: Callable[..., Classifier]

    @property
    def kind(self) -> str:
        """``"classifier"``, ``"segmenter"`` or ``"generator"``."""
        return self.cfg.kind

    @property
    def spatial_dims(self) -> tuple[int, ...]:
        """The image dimensionalities (2, 3) the model can be built for."""
        return self.cfg.spatial_dims

    @property
    def options(self) -> tuple[str, ...]:
        """Extra keyword arguments the builder accepts beyond the common ones."""
        params = inspect.signature(self.builder).parameters
        return tuple(name for name in params if name not in _COMMON[self.kind])


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(cfg: ModelCfg) -> Callable[[Builder], Builder]:
    """Register a builder ``fn(*, num_classes, in_chans, image_size, drop_rate, **opts)``.

    The function's name is the model name, its module the family, its docstring's first
    line the description.
    """

    def decorate(fn: Builder) -> Builder:
        name = fn.__name__
        if name in _REGISTRY:
            raise ModelError(f"model {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        family = fn.__module__.rsplit(".", 1)[-1]
        _REGISTRY[name] = ModelInfo(name, family, doc[0] if doc else "", cfg, fn)
        return fn

    return decorate


def list_models(pattern: str | None = None, *, kind: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` is a shell-style filter (``"resnet*"``),
    ``kind`` keeps ``"classifier"`` or ``"segmenter"`` entries only."""
    names = sorted(n for n, info in _REGISTRY.items() if kind in (None, info.kind))
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``; an unknown name raises :class:`ModelError`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        known = ", ".join(list_models())
        raise ModelError(f"unknown model {name!r}{hint} (known: {known})") from None


def create_model(
    name: str,
    *,
    num_classes: int,
    in_chans: int = 3,
    pretrained: Pretrained = False,
    image_size: int | None = None,
    drop_rate: float = 0.0,
    head: str = "linear",
    head_hidden: int | None = None,
    accept_license: Sequence[str] = (),
    **kwargs: Any,
) -> Classifier:
    """Build a registered model, optionally with pretrained weights.

    Args:
        name: a name from :func:`list_models`.
        num_classes: outputs of the classifier (1 for a binary task with one logit).
        in_chans: input channels; ImageNet stems are adapted (1 channel: RGB kernels summed).
        pretrained: False, ``"imagenet"`` (torchvision download with hash check, or the
            bundled EfficientNet-Lite0 file) or a path to a ``.safetensors`` / ``.pt`` file.
        image_size: the side the model is built for (default: the model's own).
        drop_rate: dropout before the classifier.
        head: ``"linear"`` (one logit per class) or ``"ordinal"`` (a rank-consistent head
            for ordered grades; see :mod:`medlens.models.heads`).
        head_hidden: a classifier with one hidden layer of this width (a probe's MLP head)
            instead of one linear layer.
        accept_license: licences the user accepts (gated or non-commercial foundation
            weights are refused without theirs; see :mod:`medlens.models.foundation`).
        **kwargs: model-specific options (see :attr:`ModelInfo.options`).
    """
    info = model_info(name)
    _check_args(info, num_classes, in_chans, drop_rate, image_size, kwargs)
    if info.kind == "segmenter":
        if head != "linear":
            raise ConfigError(f"{name} is a segmenter: it takes no classifier head")
        return _create_segmenter(info, num_classes, in_chans, pretrained, image_size, kwargs)
    if info.kind == "generator":
        return _create_generator(info, num_classes, in_chans, pretrained, image_size, kwargs)
    size = image_size or info.cfg.input_size
    own = _OWN_WEIGHTS <= set(inspect.signature(info.builder).parameters)
    if own:  # the builder finds, checks and loads its weights itself
        kwargs = {**kwargs, "pretrained": pretrained, "accept_license": tuple(accept_license)}
    model = info.builder(
        num_classes=num_classes, in_chans=in_chans, image_size=size, drop_rate=drop_rate, **kwargs
    )
    model.model_name = name
    model.default_cfg = replace(model.default_cfg, input_size=size)
    if pretrained and not own:
        from medlens.models.weights import load_pretrained

        load_pretrained(model, "imagenet" if pretrained is True else pretrained)
    if head_hidden is not None:
        if head != "linear":
            raise ConfigError(f"head_hidden (an MLP head) cannot be combined with head {head!r}")
        model.set_submodule(model.classifier_name, mlp_head(model, head_hidden, num_classes))
    _attach_head(model, head, num_classes)
    return model


def _attach_head(model: Classifier, head: str, num_classes: int) -> None:
    from medlens.models.heads import HEADS, attach_head

    if head not in HEADS:
        raise ConfigError(f"unknown head {head!r} (known: {', '.join(HEADS)})")
    if head == "ordinal" and num_classes < 2:
        raise ConfigError(f"an ordinal head needs at least 2 grades, got num_classes={num_classes}")
    attach_head(model, head)


def mlp_head(model: Classifier, hidden: int, num_classes: int) -> nn.Sequential:
    """Linear - ReLU - Linear on the model's pre-logit features."""
    features = model.get_classifier().in_features
    return nn.Sequential(
        nn.Linear(features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)
    )


def _create_segmenter(
    info: ModelInfo,
    num_classes: int,
    in_chans: int,
    pretrained: Pretrained,
    image_size: int | None,
    kwargs: dict[str, Any],
) -> Any:
    """A segmenter: its topology comes from ``kwargs`` (a segmentation plan), not a size."""
    if pretrained or image_size is not None:
        raise ConfigError(
            f"{info.name} is a segmenter: it takes no pretrained weights or image_size "
            "(its patch size and topology come from the segmentation plan)"
        )
    model = info.builder(num_classes=num_classes, in_chans=in_chans, **kwargs)
    model.model_name = info.name
    return model


def _create_generator(
    info: ModelInfo,
    num_classes: int,
    in_chans: int,
    pretrained: Pretrained,
    image_size: int | None,
    kwargs: dict[str, Any],
) -> Any:
    """A class-conditional generator (all its parts in one module), built for one size."""
    if pretrained:
        raise ConfigError(f"{info.name} is a generator: it takes no pretrained weights")
    size = image_size or info.cfg.input_size
    model = info.builder(num_classes=num_classes, in_chans=in_chans, image_size=size, **kwargs)
    model.model_name = info.name
    return model


def _check_args(
    info: ModelInfo,
    num_classes: int,
    in_chans: int,
    drop_rate: float,
    image_size: int | None,
    kwargs: dict[str, Any],
) -> None:
    if num_classes < 1 or in_chans < 1:
        raise ConfigError(f"{info.name}: num_classes and in_chans must be >= 1")
    if not 0.0 <= drop_rate < 1.0:
        raise ConfigError(f"{info.name}: drop_rate must be in [0, 1), got {drop_rate}")
    if image_size is not None and image_size < 8:
        raise ConfigError(f"{info.name}: image_size must be >= 8, got {image_size}")
    unknown = sorted(set(kwargs) - set(info.options))
    if unknown:
        allowed = ", ".join(info.options) or "none"
        raise ConfigError(f"{info.name} does not take {', '.join(unknown)} (options: {allowed})")
