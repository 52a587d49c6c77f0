"""Seeded data augmentation for 2D and 3D tensors, applied alike to an image and its label map.

:class:`Augmentation` is the config (a pydantic model with presets ``none``, ``light``,
``medium``, ``strong``). Calling it *samples* parameters from a ``torch.Generator``
(:meth:`Augmentation.sample`) and then *applies* them with the deterministic
:func:`apply_params`, so the same seed gives the same output, and one draw can be applied to
an image and its label map (one resampling grid; nearest neighbour for the labels).

Spatial: rotation, flips, shift, zoom, shear (one affine, one ``grid_sample``) and an elastic
deformation (a smooth random field added to the same grid). Intensity: brightness, contrast,
gamma, Gaussian noise and blur, scaled to each image's own range or standard deviation so that
they behave the same whatever the normalisation. Tensors are ``(C, *spatial)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator

from medlens.transforms._threads import one_thread

__all__ = ["PRESETS", "AugmentParams", "Augmentation", "apply_params", "gaussian_blur"]

PresetName = Literal["none", "light", "medium", "strong"]

PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "light": {
        "rotation": 5, "shift": 0.05, "zoom": (0.95, 1.05), "brightness": 0.1, "contrast": 0.1,
    },
    "medium": {
        "rotation": 10, "shift": 0.08, "zoom": (0.9, 1.1), "shear": 5, "brightness": 0.2,
        "contrast": 0.2, "gamma": 0.2, "noise": 0.05, "blur": 0.6, "p": 0.3,
    },
    "strong": {
        "rotation": 20, "shift": 0.12, "zoom": (0.8, 1.2), "shear": 10, "elastic": 0.02,
        "brightness": 0.3, "contrast": 0.3, "gamma": 0.3, "noise": 0.1, "blur": 1.0, "p": 0.5,
    },
}  # fmt: skip


class Augmentation(BaseModel):
    """What to randomise, and how much. ``Augmentation(preset="medium", flip=(1,))`` works too.

    Attributes:
        rotation: max angle in degrees (2D: in-plane; 3D: about each axis).
        flip: spatial axes (array order) flipped with probability 0.5 each; none by default
            (a mirrored chest X-ray is not a plausible one).
        shift: max translation as a fraction of the size along each axis.
        zoom: range of the zoom factor (> 1 zooms in).
        shear: max shear angle in degrees (rows/cols plane).
        elastic: max displacement of a smooth random field, as a fraction of the size.
        brightness: max additive shift, in units of the image's standard deviation.
        contrast: max relative change of contrast around the image mean.
        gamma: max ``|log gamma|`` of a gamma curve over the image's range.
        noise: max standard deviation of Gaussian noise, relative to the image's.
        blur: max Gaussian sigma in voxels.
        p: probability of each of elastic, gamma, noise and blur.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rotation: float = Field(0.0, ge=0, le=180)
    flip: tuple[int, ...] = ()
    shift: float = Field(0.0, ge=0, lt=1)
    zoom: tuple[float, float] = (1.0, 1.0)
    shear: float = Field(0.0, ge=0, lt=60)
    elastic: float = Field(0.0, ge=0, lt=0.5)
    brightness: float = Field(0.0, ge=0)
    contrast: float = Field(0.0, ge=0, lt=1)
    gamma: float = Field(0.0, ge=0, le=2)
    noise: float = Field(0.0, ge=0)
    blur: float = Field(0.0, ge=0)
    p: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"preset": data}
        if isinstance(data, dict) and "preset" in data:
            data = dict(data)
            name = data.pop("preset")
            if name not in PRESETS:
                raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
            data = {**PRESETS[name], **data}
        return data

    @model_validator(mode="after")
    def _check(self) -> Augmentation:
        if not 0 < self.zoom[0] <= self.zoom[1]:
            raise ValueError("zoom needs 0 < low <= high")
        if any(axis < 0 or axis > 2 for axis in self.flip):
            raise ValueError("flip axes are spatial axes 0, 1 (and 2 in 3D)")
        return self

    @classmethod
    def preset(cls, name: PresetName, **overrides: Any) -> Augmentation:
        return cls.model_validate({"preset": name, **overrides})

    @property
    def enabled(self) -> bool:
        return self != Augmentation()

    def sample(self, spatial_shape: tuple[int, ...], generator: torch.Generator) -> AugmentParams:
        """Draw the parameters of one augmentation for an image of ``spatial_shape``."""
        ndim = len(spatial_shape)
        if any(axis >= ndim for axis in self.flip):
            raise ValueError(f"flip axes {self.flip} do not fit a {ndim}D image")

        def uniform(low: float, high: float) -> float:
            return low + (high - low) * float(torch.rand((), generator=generator))

        def chance() -> bool:
            return float(torch.rand((), generator=generator)) < self.p

        angles = [uniform(-self.rotation, self.rotation) for _ in range(1 if ndim == 2 else 3)]
        matrix = _affine_matrix(
            ndim,
            angles=[math.radians(a) for a in angles],
            flips=[a for a in self.flip if float(torch.rand((), generator=generator)) < 0.5],
            shift=[uniform(-self.shift, self.shift) for _ in range(ndim)],
            zoom=math.exp(uniform(math.log(self.zoom[0]), math.log(self.zoom[1]))),
            shear=math.tan(math.radians(uniform(-self.shear, self.shear))),
        )
        field = None
        if self.elastic > 0 and chance():
            coarse = torch.rand((ndim, *[4] * ndim), generator=generator) * 2 - 1
            field = coarse * self.elastic * 2  # normalised coordinates span 2
        return AugmentParams(
            matrix=matrix,
            field=field,
            brightness=uniform(-self.brightness, self.brightness),
            contrast=1.0 + uniform(-self.contrast, self.contrast),
            gamma=math.exp(uniform(-self.gamma, self.gamma)) if self.gamma and chance() else 1.0,
            noise=uniform(0, self.noise) if self.noise and chance() else 0.0,
            noise_seed=int(torch.randint(0, 2**31 - 1, (), generator=generator)),
            blur=uniform(0, self.blur) if self.blur and chance() else 0.0,
        )

    def __call__(
        self,
        image: torch.Tensor,
        label: torch.Tensor | None = None,
        *,
        generator: torch.Generator | int | None = None,
    ) -> Any:
        """Augment ``image`` (and ``label`` alike): returns the image, or ``(image, label)``."""
        if generator is None:
            generator = int(torch.randint(0, 2**62, ()))  # from the global RNG, left seeded
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        with one_thread():
            params = self.sample(tuple(image.shape[1:]), generator)
            return apply_params(params, image, label)


@dataclass(frozen=True)
class AugmentParams:
    """One drawn augmentation: enough to replay it exactly (:func:`apply_params`).

    ``matrix`` maps output to input coordinates, normalised to [-1, 1] per axis, in array
    axis order (homogeneous, ``ndim + 1`` square); ``field`` is a coarse displacement field.
    """

    matrix: torch.Tensor
    field: torch.Tensor | None = None
    brightness: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    noise: float = 0.0
    noise_seed: int = 0
    blur: float = 0.0

    @property
    def flip_axes(self) -> tuple[int, ...] | None:
        """The flipped axes if the spatial part is only flips (exact, no resampling)."""
        signs = torch.diagonal(self.matrix)
        if self.field is not None or not torch.equal(self.matrix, torch.diag(signs)):
            return None
        return tuple(int(a) for a in torch.nonzero(signs[:-1] < 0).flatten())


def apply_params(
    params: AugmentParams, image: torch.Tensor, label: torch.Tensor | None = None
) -> Any:
    """Apply drawn parameters: spatial to both image and label, intensity to the image only."""
    flips = params.flip_axes
    if flips is None:
        grid = _grid(params, tuple(image.shape[1:]))
        image = _warp(image, grid)
        label = None if label is None else _warp(label, grid, nearest=True)
    elif flips:
        dims = [axis + 1 for axis in flips]
        image = image.flip(dims)
        label = None if label is None else label.flip(dims)
    image = _intensity(image, params)
    return image if label is None else (image, label)


def _affine_matrix(
    ndim: int,
    *,
    angles: list[float],
    flips: list[int],
    shift: list[float],
    zoom: float,
    shear: float,
) -> torch.Tensor:
    """Output-to-input matrix in normalised coordinates (array axis order)."""
    linear = torch.eye(ndim, dtype=torch.float64) / zoom
    planes = [(0, 1)] if ndim == 2 else [(1, 2), (0, 2), (0, 1)]
    for angle, (a, b) in zip(angles, planes, strict=True):
        rotation = torch.eye(ndim, dtype=torch.float64)
        rotation[a, a] = rotation[b, b] = math.cos(angle)
        rotation[a, b], rotation[b, a] = -math.sin(angle), math.sin(angle)
        linear = rotation @ linear
    shear_matrix = torch.eye(ndim, dtype=torch.float64)
    shear_matrix[-2, -1] = shear
    linear = shear_matrix @ linear
    for axis in flips:
        linear[:, axis] = -linear[:, axis]
    matrix = torch.eye(ndim + 1, dtype=torch.float64)
    matrix[:ndim, :ndim] = linear
    matrix[:ndim, ndim] = torch.tensor(shift, dtype=torch.float64) * 2
    return matrix.float()


def _grid(params: AugmentParams, shape: tuple[int, ...]) -> torch.Tensor:
    """A ``grid_sample`` grid; rotations act in voxel units, so they stay rigid on any shape."""
    ndim = len(shape)
    size = torch.tensor(shape, dtype=torch.float32)
    linear = params.matrix.clone()
    linear[:ndim, :ndim] *= size[None, :] / size[:, None]  # voxel units in, normalised out
    theta = linear[:ndim].flip(0)  # grid_sample wants (x, y[, z]) = reversed array axes
    theta = torch.cat([theta[:, :ndim].flip(1), theta[:, ndim:]], dim=1)
    grid = F.affine_grid(theta[None], [1, 1, *shape], align_corners=False)
    if params.field is not None:
        mode = "bicubic" if ndim == 2 else "trilinear"
        dense = F.interpolate(params.field[None], size=shape, mode=mode, align_corners=True)[0]
        grid = grid + dense.flip(0).movedim(0, -1)[None]
    return grid


def _warp(tensor: torch.Tensor, grid: torch.Tensor, *, nearest: bool = False) -> torch.Tensor:
    """Resample ``(C, *spatial)``; outside the image: the image minimum, or label 0."""
    if nearest:
        out = F.grid_sample(tensor[None].float(), grid, mode="nearest", align_corners=False)
        return out[0].to(tensor.dtype)
    low = tensor.amin()
    out = F.grid_sample((tensor - low)[None], grid, mode="bilinear", align_corners=False)
    return out[0] + low


def _intensity(image: torch.Tensor, p: AugmentParams) -> torch.Tensor:
    if p.blur > 0:
        image = gaussian_blur(image, p.blur)
    if p.gamma != 1.0:
        low, high = image.amin(), image.amax()
        span = (high - low).clamp_min(1e-6)
        image = low + span * ((image - low) / span).clamp(0, 1) ** p.gamma
    if p.contrast != 1.0 or p.brightness != 0.0:
        mean, std = image.mean(), image.std()
        image = mean + (image - mean) * p.contrast + p.brightness * std
    if p.noise > 0:
        generator = torch.Generator().manual_seed(p.noise_seed)
        noise = torch.randn(image.shape, generator=generator, dtype=image.dtype)
        image = image + noise * (p.noise * image.std())
    return image


def gaussian_blur(tensor: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(C, *spatial)`` (2D or 3D), edges replicated."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=tensor.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    for axis in range(1, tensor.ndim):
        moved = tensor.movedim(axis, -1)
        flat = moved.reshape(-1, 1, moved.shape[-1])
        flat = F.conv1d(F.pad(flat, (radius, radius), mode="replicate"), kernel)
        tensor = flat.reshape(moved.shape).movedim(-1, axis)
    return tensor
