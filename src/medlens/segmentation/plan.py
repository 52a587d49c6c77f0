"""The segmentation plan: a self-configuring default in the spirit of nnU-Net's plans.

:func:`make_plan` reads a dataset fingerprint (median shape and spacing, intensities, modality)
and chooses the target spacing (the median), a patch size that covers the median shape within
a voxel budget fitting this machine, the network topology (pool an axis while its feature map
stays >= 4 voxels and its spacing is not coarser than twice the finest), the filters and the
batch size. The plan is written to ``plan.json`` in the run directory; any field can be
overridden from the config's ``segmentation:`` section (``segmentation.plan.patch_size``...).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medlens.errors import ConfigError

__all__ = ["SegPlan", "SegmentationOptions", "make_plan", "read_plan", "write_plan"]

#: Voxel budgets (one patch; a whole batch) per device kind and dimensionality.
PATCH_BUDGET = {("cpu", 2): 256 * 256, ("cpu", 3): 80**3, ("cuda", 2): 512**2, ("cuda", 3): 128**3}
BATCH_BUDGET = {("cpu", 2): 12 * 128**2, ("cpu", 3): 2**19, ("cuda", 2): 40 * 256**2}
BATCH_BUDGET[("cuda", 3)] = 2 * 128**3
MAX_POOLS = 5
MIN_FEATURE_MAP = 4


class SegPlan(BaseModel):
    """Everything that shapes a segmentation model's input and topology (``plan.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spatial_dims: Literal[2, 3]
    target_spacing: tuple[float, ...]
    median_shape: tuple[int, ...]
    patch_size: tuple[int, ...]
    batch_size: int = Field(ge=1)
    kernel_sizes: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]
    filters: tuple[int, ...]
    normalization: Literal["zscore", "ct"] = "zscore"
    ct_clip: tuple[float, float] | None = None
    num_classes: int = Field(ge=2)

    @model_validator(mode="after")
    def _coherent(self) -> SegPlan:
        axes = {len(self.target_spacing), len(self.patch_size), len(self.median_shape)}
        axes |= {len(k) for k in self.kernel_sizes} | {len(s) for s in self.strides}
        if axes != {self.spatial_dims}:
            raise ValueError(f"every per-axis value needs {self.spatial_dims} axes")
        if not len(self.kernel_sizes) == len(self.strides) == len(self.filters):
            raise ValueError("kernel_sizes, strides and filters need one entry per level")
        for axis, size in enumerate(self.patch_size):
            divisor = math.prod(s[axis] for s in self.strides)
            if size % divisor:
                raise ValueError(f"patch_size[{axis}]={size} is not a multiple of {divisor}")
        if self.normalization == "ct" and self.ct_clip is None:
            raise ValueError("normalization 'ct' needs ct_clip (low, high)")
        return self

    def preprocessing(self) -> dict[str, Any]:
        """The :class:`~medlens.transforms.preprocess.Preprocessing` fields of this plan."""
        base: dict[str, Any] = {"spacing": list(self.target_spacing)}
        if self.normalization == "ct":
            low, high = self.ct_clip  # type: ignore[misc]
            window = f"{(low + high) / 2:g},{high - low:g}"
            return {**base, "window": window, "mean": [0.5], "std": [0.25]}
        return {**base, "scaling": "zscore"}

    def model_kwargs(self) -> dict[str, Any]:
        """Topology keyword arguments of :func:`~medlens.models.unet.create_segmentation_model`."""
        return {
            "kernel_sizes": [list(k) for k in self.kernel_sizes],
            "strides": [list(s) for s in self.strides],
            "filters": list(self.filters),
        }


class SegmentationOptions(BaseModel):
    """The config's ``segmentation:`` section (training options and plan overrides)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plan: dict[str, Any] = Field(default_factory=dict)
    class_names: list[str] | None = None
    iterations_per_epoch: int = Field(50, ge=1)
    foreground_oversample: float = Field(0.33, ge=0.0, le=1.0)
    val_every: int = Field(1, ge=1)
    overlap: float = Field(0.5, ge=0.0, lt=1.0)
    base_filters: int | None = Field(None, ge=4)
    max_filters: int | None = Field(None, ge=8)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @classmethod
    def parse(cls, data: dict[str, Any]) -> SegmentationOptions:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"segmentation.{where}: {err['msg']}") from None


def make_plan(
    fingerprint: dict[str, Any],
    *,
    num_classes: int,
    device: str = "cpu",
    base_filters: int | None = None,
    max_filters: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> SegPlan:
    """The plan for a dataset ``fingerprint`` on ``device`` ("cpu" or "cuda").

    ``overrides`` replace the chosen values (a patch size override re-derives the topology).
    """
    overrides = dict(overrides or {})
    shape, spacing = _median_geometry(fingerprint)
    ndim = len(shape)
    target = tuple(overrides.pop("target_spacing", spacing))
    at_target = tuple(
        max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, target, strict=True)
    )
    patch = tuple(overrides.pop("patch_size", None) or _fit_patch(at_target, target, device))
    strides, kernels = _topology(patch, target)
    divisors = [math.prod(s[a] for s in strides) for a in range(ndim)]
    rounded = tuple(_round_up(p, d) for p, d in zip(patch, divisors, strict=True))
    if math.prod(rounded) > PATCH_BUDGET[(device, ndim)]:  # round down rather than overflow
        rounded = tuple(max(d, p // d * d) for p, d in zip(patch, divisors, strict=True))
    patch = rounded
    gpu = device == "cuda"
    base = base_filters or (32 if gpu else 16)
    cap = max_filters or (320 if ndim == 3 else 512 if gpu else 256)
    filters = tuple(min(base * 2**level, cap) for level in range(len(strides)))
    batch = BATCH_BUDGET[(device, ndim)] // math.prod(patch)
    plan = {
        "spatial_dims": ndim,
        "target_spacing": target,
        "median_shape": at_target,
        "patch_size": patch,
        "batch_size": int(min(max(batch, 2), 32)),
        "kernel_sizes": kernels,
        "strides": strides,
        "filters": filters,
        "num_classes": num_classes,
        **_normalization(fingerprint),
        **overrides,
    }
    try:
        return SegPlan.model_validate(plan)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "plan"
        raise ConfigError(f"segmentation plan: {where}: {err['msg']}") from None


def _median_geometry(fingerprint: dict[str, Any]) -> tuple[tuple[int, ...], tuple[float, ...]]:
    shape = fingerprint.get("shapes", {}).get("median")
    spacing = fingerprint.get("spacing", {}).get("median")
    if not shape or not spacing:
        raise ConfigError("the dataset fingerprint has no image shapes or spacing to plan from")
    ndim = len(spacing)  # an RGB 2D image has a trailing channel axis in its shape
    if ndim not in (2, 3) or len(shape) < ndim:
        raise ConfigError(f"cannot plan a segmentation for {ndim}D images")
    return tuple(int(n) for n in shape[:ndim]), tuple(float(s) for s in spacing)


def _fit_patch(shape: tuple[int, ...], spacing: tuple[float, ...], device: str) -> list[int]:
    """The median shape, shrunk along its longest physical axis until it fits the budget."""
    patch = list(shape)
    budget = PATCH_BUDGET[(device, len(shape))]
    while math.prod(patch) > budget:
        axis = max(range(len(patch)), key=lambda a: patch[a] * spacing[a])
        patch[axis] = max(MIN_FEATURE_MAP, int(patch[axis] * 0.9))
    return patch


def _topology(
    patch: tuple[int, ...], spacing: tuple[float, ...]
) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """Strides and kernel sizes per level: pool axes that stay >= 4 voxels and near-isotropic."""
    ndim = len(patch)
    sizes, current = list(patch), list(spacing)
    strides = [(1,) * ndim]
    kernels = [_kernel(current)]
    for _ in range(MAX_POOLS):
        finest = min(current)
        pool = [sizes[a] // 2 >= MIN_FEATURE_MAP and current[a] <= 2 * finest for a in range(ndim)]
        if not any(pool):
            break
        strides.append(tuple(2 if p else 1 for p in pool))
        sizes = [s // 2 if p else s for s, p in zip(sizes, pool, strict=True)]
        current = [c * 2 if p else c for c, p in zip(current, pool, strict=True)]
        kernels.append(_kernel(current))
    return tuple(strides), tuple(kernels)


def _kernel(spacing: list[float]) -> tuple[int, ...]:
    finest = min(spacing)
    return tuple(3 if s <= 2 * finest else 1 for s in spacing)


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def _normalization(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """CT: clip to the dataset's 0.5-99.5 percentiles; anything else: per-image z-score."""
    modalities = fingerprint.get("modalities") or {}
    intensity = fingerprint.get("intensity") or {}
    if modalities and max(modalities, key=modalities.get) == "CT" and "p0.5" in intensity:
        return {"normalization": "ct", "ct_clip": (intensity["p0.5"], intensity["p99.5"])}
    return {"normalization": "zscore"}


def write_plan(plan: SegPlan, path: str | Path) -> Path:
    """Write ``plan.json`` atomically."""
    from medlens.training.checkpoint import atomic_write_text

    path = Path(path)
    atomic_write_text(path, json.dumps(plan.model_dump(mode="json"), indent=2) + "\n")
    return path


def read_plan(path: str | Path) -> SegPlan:
    """Read and validate ``plan.json`` (``ConfigError`` if missing or invalid)."""
    path = Path(path)
    try:
        return SegPlan.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no segmentation plan at {path}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid plan ({exc.errors()[0]['msg']})") from None
