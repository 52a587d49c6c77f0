"""Foundation backbones from the catalogue, registered as classifiers (backbone + head).

Every catalogue entry (:mod:`medlens.models.foundation_catalog`) is a registry model:
``create_model("rad_dino", num_classes=2, in_chans=1, image_size=224, pretrained=True)``
builds the backbone with a linear head on its embedding. ``pretrained`` is True (or
``"imagenet"``/``"hub"``): the catalogue's hub weights, offline first (:mod:`.hub`); or a
local folder in the source's layout. Gated or non-commercial weights need
``accept_license=[licence]``. Without weights the architecture is built at random (the
catalogue's default, or ``arch`` as stored in a run's card).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from medlens.errors import LicenseError, WeightsError
from medlens.models._base import Classifier, ModelCfg
from medlens.models.backbones import Backbone, build_backbone, read_snapshot
from medlens.models.foundation_catalog import CATALOG
from medlens.models.registry import register_model

__all__ = [
    "FoundationClassifier",
    "FoundationEntry",
    "catalog",
    "check_license",
    "fetch_weights",
    "foundation_entry",
]

#: ``pretrained`` values that mean "the catalogue's hub weights"
HUB_WEIGHTS = (True, "True", "true", "imagenet", "hub")


@dataclass(frozen=True)
class FoundationEntry:
    """One catalogued backbone (see :mod:`medlens.models.foundation_catalog` for fields)."""

    name: str
    title: str
    source: str
    repo_id: str
    revision: str | None
    files: tuple[str, ...]
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    license: str
    license_url: str
    gated: bool
    non_commercial: bool
    dim: int
    embedding: str
    arch: dict[str, Any] | None
    loadable: bool = True
    notes: str = ""
    sha256: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FoundationEntry:
        tuples = {k: tuple(data[k]) for k in ("files", "mean", "std")}
        return cls(**{**data, **tuples})

    @property
    def needs_acceptance(self) -> bool:
        """Gated or non-commercial weights load only after the user accepts the licence."""
        return self.gated or self.non_commercial

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {**out, **{k: list(out[k]) for k in ("files", "mean", "std")}}


_ENTRIES = {data["name"]: FoundationEntry.from_dict(data) for data in CATALOG}


def catalog() -> list[FoundationEntry]:
    """The catalogue entries, sorted by name."""
    return [_ENTRIES[name] for name in sorted(_ENTRIES)]


def foundation_entry(name: str) -> FoundationEntry:
    """The entry called ``name``; unknown names raise :class:`~medlens.errors.ModelError`."""
    from medlens.models.registry import model_info

    if name not in _ENTRIES:
        model_info(name)  # unknown to the registry: its error lists close names
        raise WeightsError(f"{name} is a registry model but not a catalogued foundation backbone")
    return _ENTRIES[name]


def check_license(entry: FoundationEntry, accepted: Sequence[str]) -> None:
    """Refuse gated or non-commercial weights unless their licence is in ``accepted``."""
    if not entry.needs_acceptance:
        return
    if entry.license.lower() in {a.lower() for a in accepted}:
        return
    why = []
    if entry.non_commercial:
        why.append("its licence allows non-commercial use only")
    if entry.gated:
        why.append("its hub repository is gated (access must be requested and granted)")
    raise LicenseError(
        f"{entry.name}: the weights are under {entry.license} ({entry.license_url}) and "
        f"{' and '.join(why)}. Read the licence; to accept it, pass --accept-license "
        f"{entry.license} (config: model.accept_license: [{entry.license}])"
    )


def fetch_weights(name: str, *, accept_license: Sequence[str] = ()) -> Any:
    """Find (offline first) or download and verify the hub weights of ``name``."""
    from medlens.models.hub import resolve_snapshot

    entry = foundation_entry(name)
    _check_loadable(entry)
    check_license(entry, accept_license)
    return resolve_snapshot(entry, "hub")


def _check_loadable(entry: FoundationEntry) -> None:
    if not entry.loadable:
        raise WeightsError(f"{entry.name} cannot be loaded by medlens: {entry.notes}")


class FoundationClassifier(Classifier):
    """A catalogue backbone with dropout and a linear head on its embedding."""

    classifier_name = "head"

    def __init__(
        self,
        backbone: Backbone,
        *,
        num_classes: int,
        in_chans: int,
        drop_rate: float,
        cfg: ModelCfg,
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans, cfg=cfg)
        self.backbone = backbone
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(backbone.dim, num_classes)
        self.stem_conv = f"backbone.{backbone.stem}"
        self.cam_layer = f"backbone.{backbone.cam_layer}"
        # one stage: timm and open_clip keep tokens and position embeddings outside modules
        self.stages = (("backbone",),)
        #: create_model options that rebuild this architecture without the hub (the card)
        self.create_options: dict[str, Any] = {"arch": backbone.arch}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.features(x)

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.backbone.pool(x))
        return x if pre_logits else self.head(x)

    def reshape_transform(self, input_shape: tuple[int, ...]) -> Callable | None:
        """Patch tokens of ``cam_layer`` on their grid (class/register tokens dropped)."""
        rows, cols = (s // self.backbone.patch for s in input_shape[-2:])
        skip = self.backbone.prefix_tokens

        def to_grid(tokens: torch.Tensor) -> torch.Tensor:
            grid = tokens[:, skip : skip + rows * cols]
            return grid.reshape(tokens.shape[0], rows, cols, -1).permute(0, 3, 1, 2)

        return to_grid


def build_foundation(
    entry: FoundationEntry,
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    drop_rate: float,
    pretrained: object = False,
    accept_license: Sequence[str] = (),
    arch: dict[str, Any] | None = None,
) -> FoundationClassifier:
    """Backbone + head; with ``pretrained`` the snapshot's architecture and weights."""
    from medlens.models.weights import load_state

    _check_loadable(entry)
    state, norm, origin, folder = None, {}, "random", None
    if pretrained in HUB_WEIGHTS:
        pretrained = "hub"
    if pretrained:
        from medlens.models.hub import resolve_snapshot

        check_license(entry, accept_license)
        snapshot = resolve_snapshot(entry, pretrained)
        arch, state, norm = read_snapshot(entry.source, snapshot.folder, snapshot.files)
        origin, folder = snapshot.origin, snapshot.folder
    if arch is None:
        raise WeightsError(f"{entry.name}: no architecture to build without its weights")
    backbone = build_backbone(entry.source, arch, in_chans, folder)
    cfg = ModelCfg(
        input_size=image_size,
        mean=tuple(norm.get("mean", entry.mean)),
        std=tuple(norm.get("std", entry.std)),
        imagenet="hub",
    )
    model = FoundationClassifier(
        backbone, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, cfg=cfg
    )
    model.model_name = entry.name
    if state is not None:
        load_state(model, {f"backbone.{k}": v for k, v in backbone.convert(state).items()}, origin)
    backbone.set_input_size(image_size)
    model.weights_origin = origin
    return model


def _register(entry: FoundationEntry) -> None:
    """Register ``entry`` under its name, family ``foundation``."""

    def builder(
        *,
        num_classes: int,
        in_chans: int,
        image_size: int,
        drop_rate: float,
        pretrained: object = False,
        accept_license: Sequence[str] = (),
        arch: dict[str, Any] | None = None,
    ) -> FoundationClassifier:
        return build_foundation(
            entry, num_classes=num_classes, in_chans=in_chans, image_size=image_size,
            drop_rate=drop_rate, pretrained=pretrained, accept_license=accept_license,
            arch=arch or entry.arch,
        )  # fmt: skip

    builder.__name__ = builder.__qualname__ = entry.name
    licence = f"{entry.license}{', gated' if entry.gated else ''}"
    unusable = "" if entry.loadable else f" (not loadable: medlens models --info {entry.name})"
    builder.__doc__ = f"{entry.title} [{licence}]{unusable}"
    register_model(replace(ModelCfg(), input_size=entry.input_size, imagenet="hub",
                           mean=entry.mean, std=entry.std))(builder)  # fmt: skip


for _entry in catalog():
    _register(_entry)
