"""Preprocessing that travels with a model: :class:`Preprocessing`.

It turns an :class:`~medlens.io.Image` into the tensor a model takes, in a fixed order:

1. channels first: ``(C, H, W)`` or ``(C, D, H, W)`` float32 (an alpha channel is dropped);
2. resampling to ``spacing`` (mm), then to ``spatial_size`` (resize, or centre pad/crop);
   with ``slices="pad"`` a volume keeps its own slice count (at most ``spatial_size[0]``)
   and only its slices are resized, for slice-sequence models that mask padded slices;
3. intensity to about [0, 1]: a window, percentile clipping, or ``scaling``; or several
   windows, one output channel each (``windows``, e.g. brain/subdural/bone for head CT);
4. channels to ``channels`` (grey <-> RGB);
5. normalisation ``(x - mean) / std``.

Label maps (``Image.kind == "label"``) only go through step 2, with nearest-neighbour
resampling and zero padding, and come out as int64 ``(1, *spatial)``.

It is a pydantic model, so ``model_dump()`` goes into a run's ``model.json`` and
``Preprocessing.model_validate(card["preprocessing"])`` rebuilds exactly the same steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from medlens.errors import ConfigError, InvalidImageError
from medlens.io.image import Image

if TYPE_CHECKING:
    import torch

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Preprocessing",
    "pad_crop",
    "preprocessing_from_dict",
    "resize",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Luma weights (ITU-R BT.601), as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


class Preprocessing(BaseModel):
    """How an image becomes a model input. Every field is optional; see the module doc.

    Attributes:
        spatial_size: target size ``(H, W)`` or ``(D, H, W)``; ``None`` keeps the size.
        spacing: resample to this voxel size in mm first (array order); ``None`` skips it.
        size_mode: ``"resize"`` (interpolate to ``spatial_size``) or ``"pad_crop"`` (centre
            pad with the minimum / crop; keeps the spacing).
        slices: volumes only: ``"resample"`` brings every study to ``spatial_size[0]``
            slices; ``"pad"`` keeps each study's own slice count (more than
            ``spatial_size[0]`` are brought down to it) and sizes only ``H, W``: batches
            are then zero-padded with a slice mask (``slice_seq`` models).
        window: a preset name (``lung``, ``bone``, ...), ``"C,W"`` or ``"auto"``.
        windows: several ``(center, width)`` windows (HU for CT) applied to a grey image,
            one channel each; ``channels`` is then their number.
        percentiles: clip to these per-image percentiles, e.g. ``(0.5, 99.5)``, then scale.
        scaling: used when neither window nor percentiles is set: ``"auto"`` divides 8-bit
            images by 255 and min-max scales the others; ``"range"`` divides integers by
            their type's maximum; ``"minmax"``, ``"zscore"`` (per image) or ``"none"``.
        channels: 1 (RGB to grey by luma) or 3 (grey repeated); with ``windows``, their count.
        mean, std: per channel (or one value); ``mean="imagenet"`` fills in ImageNet stats.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    spatial_size: tuple[int, ...] | None = None
    spacing: tuple[float, ...] | None = None
    size_mode: Literal["resize", "pad_crop"] = "resize"
    slices: Literal["resample", "pad"] = "resample"
    window: str | None = None
    windows: tuple[tuple[float, float], ...] | None = None
    percentiles: tuple[float, float] | None = None
    scaling: Literal["auto", "range", "minmax", "zscore", "none"] = "auto"
    channels: int = 1
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    @model_validator(mode="before")
    @classmethod
    def _imagenet(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mean") == "imagenet":
            data = dict(data)
            three = data.get("channels", 1) == 3
            data["mean"] = IMAGENET_MEAN if three else (float(np.mean(IMAGENET_MEAN)),)
            data["std"] = IMAGENET_STD if three else (float(np.mean(IMAGENET_STD)),)
        if isinstance(data, dict) and data.get("windows") and "channels" not in data:
            data = {**data, "channels": len(data["windows"])}
        return data

    @field_validator("spatial_size", "spacing")
    @classmethod
    def _spatial(cls, value: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        if value is not None and (len(value) not in (2, 3) or min(value) <= 0):
            raise ValueError("needs 2 or 3 positive values")
        return value

    @field_validator("window")
    @classmethod
    def _known_window(cls, value: str | None) -> str | None:
        if value is not None:
            from medlens.transforms.intensity import parse_window

            parse_window(value)  # raises on an unknown preset or a bad "C,W"
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Preprocessing:
        if self.window is not None and self.percentiles is not None:
            raise ValueError("give a window or percentiles, not both")
        self._check_windows()
        if (
            self.percentiles is not None
            and not 0 <= self.percentiles[0] < self.percentiles[1] <= 100
        ):
            raise ValueError("percentiles must satisfy 0 <= low < high <= 100")
        for name in ("mean", "std"):
            if len(getattr(self, name)) not in (1, self.channels):
                raise ValueError(f"{name} needs 1 or {self.channels} values")
        if min(self.std) <= 0:
            raise ValueError("std must be positive")
        if self.spatial_size and self.spacing and len(self.spatial_size) != len(self.spacing):
            raise ValueError("spatial_size and spacing need the same number of axes")
        if self.slices == "pad" and len(self.spatial_size or ()) != 3:
            raise ValueError("slices 'pad' is for volumes: give a 3D spatial_size (D, H, W)")
        return self

    def _check_windows(self) -> None:
        if self.windows is None:
            if self.channels not in (1, 3):
                raise ValueError(
                    f"channels must be 1 or 3 (or the number of windows), got {self.channels}"
                )
            return
        if self.window is not None or self.percentiles is not None:
            raise ValueError("give windows, or a window / percentiles, not both")
        if not self.windows or min(width for _, width in self.windows) <= 0:
            raise ValueError("windows needs at least one (center, width) pair with width > 0")
        if self.channels != len(self.windows):
            raise ValueError(
                f"{len(self.windows)} windows give {len(self.windows)} channels, "
                f"but channels is {self.channels}"
            )

    @property
    def ndim(self) -> int | None:
        """Spatial dimensions this preprocessing is for (``None``: either)."""
        axes = self.spatial_size or self.spacing
        return len(axes) if axes else None

    def __call__(self, image: Image) -> torch.Tensor:
        """The model input for ``image`` (float32), or an int64 label map for a label image."""
        import torch

        self._check_dims(image)
        label = image.kind == "label"
        tensor = _channels_first(image)
        window = None if label else self._window_for(image)
        tensor = self._resample(tensor, image, label)
        if label:
            return tensor.round().to(torch.int64)
        if self.windows is not None:
            tensor = self._multi_window(tensor, image)
        else:
            tensor = self._intensity(tensor, image.array.dtype, window)
            tensor = _convert_channels(tensor, self.channels)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, *[1] * image.ndim)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, *[1] * image.ndim)
        return ((tensor - mean) / std).contiguous()

    def _check_dims(self, image: Image) -> None:
        if self.ndim is not None and image.ndim != self.ndim:
            raise InvalidImageError(
                f"{image.source or 'image'}: {image.ndim}D image given to a preprocessing for "
                f"{self.ndim}D inputs (shape {image.array.shape})"
            )

    def _window_for(self, image: Image) -> tuple[float, float] | None:
        if self.window is None:
            return None
        from medlens.transforms.intensity import resolve_window

        center, width = resolve_window(self.window, image)
        return float(center), float(width)

    def _resample(self, tensor: torch.Tensor, image: Image, label: bool) -> torch.Tensor:
        if self.spacing is not None:
            scale = np.asarray(image.spacing, dtype=float) / np.asarray(self.spacing)
            size = tuple(
                max(1, round(n * s)) for n, s in zip(image.spatial_shape, scale, strict=True)
            )
            tensor = resize(tensor, size, label=label)
        if self.spatial_size is None:
            return tensor
        size = self.spatial_size
        if self.slices == "pad":  # the study's own slice count, up to spatial_size[0]
            size = (min(int(tensor.shape[1]), size[0]), *size[1:])
        if self.size_mode == "pad_crop":
            fill = 0.0 if label else float(tensor.min())
            return pad_crop(tensor, size, fill)
        return resize(tensor, size, label=label)

    def _multi_window(self, tensor: torch.Tensor, image: Image) -> torch.Tensor:
        """One channel per window, each mapped to [0, 1]."""
        import torch

        from medlens.transforms.intensity import apply_window

        if tensor.shape[0] != 1:
            raise InvalidImageError(
                f"{image.source or 'image'}: windows need a grey image, "
                f"got {tensor.shape[0]} channels"
            )
        grey = tensor[0].numpy()
        return torch.from_numpy(np.stack([apply_window(grey, c, w) for c, w in self.windows or ()]))

    def _intensity(
        self, tensor: torch.Tensor, dtype: np.dtype, window: tuple[float, float] | None
    ) -> torch.Tensor:
        import torch

        if window is not None:
            from medlens.transforms.intensity import apply_window

            return torch.from_numpy(np.asarray(apply_window(tensor.numpy(), *window), np.float32))
        if self.percentiles is not None:
            q = torch.tensor(self.percentiles, dtype=torch.float32) / 100
            low, high = torch.quantile(tensor.flatten()[:: max(1, tensor.numel() // 2**24)], q)
            return _scale(tensor.clamp(low, high), low, high)
        return _rescale(tensor, np.dtype(dtype), self.scaling)


def _channels_first(image: Image) -> torch.Tensor:
    import torch

    array = np.asarray(image.array)
    if image.is_rgb:
        array = np.moveaxis(array[..., :3], -1, 0)
    else:
        array = array[None]
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def resize(tensor: torch.Tensor, size: tuple[int, ...], *, label: bool = False) -> torch.Tensor:
    """Resize ``(C, *spatial)`` to ``size``: nearest for labels, (bi/tri)linear otherwise.

    Shrinking a 2D image is antialiased, so fine detail does not alias into noise.
    """
    import torch.nn.functional as F

    if tuple(tensor.shape[1:]) == tuple(size):
        return tensor
    if label:
        return F.interpolate(tensor[None], size=size, mode="nearest-exact")[0]
    mode = "bilinear" if len(size) == 2 else "trilinear"
    shrinking = len(size) == 2 and any(s < n for s, n in zip(size, tensor.shape[1:], strict=True))
    out = F.interpolate(
        tensor[None], size=size, mode=mode, align_corners=False, antialias=shrinking
    )
    return out[0]


def pad_crop(tensor: torch.Tensor, size: tuple[int, ...], fill: float = 0.0) -> torch.Tensor:
    """Centre-pad (with ``fill``) or centre-crop ``(C, *spatial)`` to ``size``."""
    import torch.nn.functional as F

    for axis, target in enumerate(size, start=1):
        current = tensor.shape[axis]
        if current > target:
            start = (current - target) // 2
            tensor = tensor.narrow(axis, start, target)
        elif current < target:
            before = (target - current) // 2
            pad = [0, 0] * (tensor.ndim - 1 - axis) + [before, target - current - before]
            tensor = F.pad(tensor, pad, value=fill)
    return tensor


def _rescale(tensor: torch.Tensor, dtype: np.dtype, scaling: str) -> torch.Tensor:
    if scaling == "none":
        return tensor
    if scaling == "zscore":
        return (tensor - tensor.mean()) / tensor.std().clamp_min(1e-6)
    integer = dtype.kind in "ui"
    if scaling == "range" and integer:
        info = np.iinfo(dtype)
        return _scale(tensor, float(min(info.min, 0)), float(info.max))
    if scaling == "auto" and dtype in (np.uint8, np.bool_):
        return _scale(tensor, 0.0, 1.0 if dtype == np.bool_ else 255.0)
    return _scale(tensor, tensor.min(), tensor.max())


def _scale(tensor: torch.Tensor, low: Any, high: Any) -> torch.Tensor:
    span = float(high - low)
    return (tensor - low) / span if span > 0 else tensor - low


def _convert_channels(tensor: torch.Tensor, channels: int) -> torch.Tensor:
    import torch

    if tensor.shape[0] == channels:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(channels, *tensor.shape[1:])
    if tensor.shape[0] == 3 and channels == 1:
        weights = torch.tensor(_LUMA, dtype=tensor.dtype).view(3, *[1] * (tensor.ndim - 1))
        return (tensor * weights).sum(dim=0, keepdim=True)
    raise InvalidImageError(f"cannot turn {tensor.shape[0]} channels into {channels}")


def preprocessing_from_dict(
    data: dict[str, Any], *, source: str = "preprocessing"
) -> Preprocessing:
    """Validate a dict (a config section or ``model.json`` entry); ``ConfigError`` if invalid."""
    try:
        return Preprocessing.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None
