"""Heatmaps for any registry model, from explainers that leave the model as they found it.

>>> with Explainer(model, "gradcam") as explainer:      # doctest: +SKIP
...     heatmaps = explainer(batch)                       # (B, *spatial), float32 in [0, 1]

Grad-CAM, Grad-CAM++ and Score-CAM come from ``pytorch-grad-cam``; occlusion from captum.
The target layer is ``model.cam_layer`` unless given; transformer tokens are laid out on
their patch grid with ``model.reshape_transform``. 2D and 3D inputs are supported (Score-CAM:
2D only).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn

from medlens.errors import ConfigError

Method = Literal["gradcam", "gradcam++", "scorecam", "occlusion"]
METHODS: tuple[str, ...] = get_args(Method)
DEFAULT_METHOD: Method = "gradcam"


class ClassScore:
    """The score explained for class ``index`` of one output row: its logit; for a one-logit
    binary model the logit (class 1) or its negative (class 0). ``None``: the predicted class.

    For a segmenter's output ``(classes, *spatial)`` the score is the class's logits summed
    over the voxels predicted as that class (all voxels when none is); ``None``: the
    foreground class predicted most often.
    """

    def __init__(self, index: int | None) -> None:
        self.index = index

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if output.ndim > 1:
            return region_score(output, self.index)
        scores = class_scores(output.reshape(1, -1))[0]
        return scores[int(scores.argmax()) if self.index is None else self.index]


def region_score(output: torch.Tensor, index: int | None) -> torch.Tensor:
    """A segmenter's evidence for class ``index`` where it predicts it (see :class:`ClassScore`)."""
    predicted = output.argmax(0)
    if index is None:
        counts = torch.bincount(predicted.reshape(-1), minlength=output.shape[0])[1:]
        index = int(counts.argmax()) + 1 if output.shape[0] > 1 else 0
    mask = predicted == index
    if not bool(mask.any()):
        mask = torch.ones_like(mask)
    return (output[index] * mask).sum()


def class_scores(output: torch.Tensor) -> torch.Tensor:
    """Per-class scores ``(B, classes)``; a one-logit binary model gives ``[-logit, logit]``."""
    return torch.cat([-output, output], dim=1) if output.shape[1] == 1 else output


def predicted_classes(output: torch.Tensor) -> list[int]:
    """The class with the highest score, per row (binary one-logit: logit > 0)."""
    return class_scores(output).argmax(dim=1).tolist()


@dataclass
class _ModelState:
    training: dict[str, bool]
    requires_grad: list[bool]
    grads: list[torch.Tensor | None]

    @classmethod
    def of(cls, model: nn.Module) -> _ModelState:
        params = list(model.parameters())
        return cls(
            {name: m.training for name, m in model.named_modules()},
            [p.requires_grad for p in params],
            [p.grad for p in params],
        )

    def restore(self, model: nn.Module) -> None:
        for name, module in model.named_modules():
            module.training = self.training[name]
        params = list(model.parameters())
        for param, flag, grad in zip(params, self.requires_grad, self.grads, strict=True):
            param.requires_grad_(flag)
            param.grad = grad


class Explainer:
    """A context manager that explains a classifier's decisions as heatmaps.

    On entry the model goes to eval mode and its parameters stop requiring gradients (only
    the input's gradient is needed); hooks go on the target layer. On exit the hooks are
    removed and the training flags, ``requires_grad`` flags and ``.grad`` tensors are put
    back, so the model's outputs, weights and state are exactly what they were. While it is
    open it owns the model: do not run other work on the same model from another thread.

    Args:
        model: a registry model (or any module, with ``target_layer`` given).
        method: one of :data:`METHODS`.
        target_layer: module or dotted module name; default ``model.cam_layer``.
        occlusion_window: side of the occluding patch in pixels (default: 1/8 of each side).
        batch_size: perturbed inputs per forward pass (Score-CAM, occlusion).
    """

    def __init__(
        self,
        model: nn.Module,
        method: Method = DEFAULT_METHOD,
        *,
        target_layer: str | nn.Module | None = None,
        occlusion_window: int | None = None,
        batch_size: int = 32,
    ) -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown explanation method {method!r}: use one of {METHODS}")
        self.model, self.method = model, method
        self.layer = None if method == "occlusion" else _resolve_layer(model, target_layer)
        self.occlusion_window, self.batch_size = occlusion_window, batch_size
        self._state: _ModelState | None = None
        self._cam: Any = None
        self._input_shape: tuple[int, ...] = ()

    def __enter__(self) -> Explainer:
        self._state = _ModelState.of(self.model)
        self.model.eval()
        self.model.requires_grad_(False)
        if self.method != "occlusion":
            self._cam = self._build_cam()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cam is not None:
            self._cam.activations_and_grads.release()
            self._cam = None
        if self._state is not None:
            self._state.restore(self.model)
            self._state = None

    def __call__(
        self, inputs: torch.Tensor, targets: int | Sequence[int] | None = None
    ) -> np.ndarray:
        """Heatmaps ``(B, *spatial)`` in [0, 1] for ``inputs`` ``(B, C, *spatial)``.

        ``targets``: the class to explain (one index for all, or one per input); default
        the predicted class. For a one-logit binary model, class 1 is the positive class.
        """
        if self._state is None:
            raise ConfigError("use the Explainer as a context manager: `with Explainer(...) as e:`")
        if inputs.ndim not in (4, 5):
            shape = tuple(inputs.shape)
            raise ConfigError(f"expected a (B, C, H, W) or (B, C, D, H, W) batch, got {shape}")
        device = next(self.model.parameters()).device
        with torch.inference_mode(False), torch.enable_grad():
            x = inputs.detach().clone().to(device)
            self._input_shape = tuple(x.shape)
            classes = self._targets(x, targets)
            maps = self._occlusion(x, classes) if self._cam is None else self._grad_cam(x, classes)
        return np.clip(np.nan_to_num(np.asarray(maps, dtype=np.float32)), 0.0, 1.0)

    def _targets(self, x: torch.Tensor, targets: int | Sequence[int] | None) -> list[int | None]:
        if targets is None:
            if self.method in ("gradcam", "gradcam++"):
                return [None] * len(x)  # picked from the same forward pass (ClassScore)
            with torch.no_grad():
                return list(predicted_classes(self.model(x)))
        classes = [targets] * len(x) if isinstance(targets, int) else list(targets)
        if len(classes) != len(x):
            raise ConfigError(f"{len(classes)} targets given for {len(x)} inputs")
        return [int(c) for c in classes]

    def _build_cam(self) -> Any:
        from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM

        kind = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM}[self.method]
        cam = kind(model=self.model, target_layers=[self.layer], reshape_transform=self._reshape)
        cam.compute_input_gradient = True  # parameters are frozen: differentiate the input
        cam.batch_size = self.batch_size
        return cam

    def _reshape(self, activations: torch.Tensor) -> torch.Tensor:
        transform: Callable | None = getattr(self.model, "reshape_transform", lambda _: None)(
            self._input_shape
        )
        return transform(activations) if transform is not None else activations

    def _grad_cam(self, x: torch.Tensor, classes: list[int | None]) -> np.ndarray:
        if self.method == "scorecam" and x.ndim == 5:
            raise ConfigError("scorecam supports 2D inputs only; use gradcam for volumes")
        targets = [ClassScore(c) for c in classes]
        quiet = contextlib.redirect_stderr(io.StringIO()) if self.method == "scorecam" else None
        with quiet or contextlib.nullcontext():  # Score-CAM draws a progress bar per image
            maps = self._cam(input_tensor=x, targets=targets)
        self._cam.activations_and_grads.clear()
        return maps

    def _occlusion(self, x: torch.Tensor, classes: list[int | None]) -> np.ndarray:
        from captum.attr import Occlusion

        spatial = x.shape[2:]
        window = [self.occlusion_window or max(1, s // 8) for s in spatial]
        window = [min(w, s) for w, s in zip(window, spatial, strict=True)]
        strides = [max(1, w // 2) for w in window]
        occlusion = Occlusion(lambda batch: class_scores(self.model(batch)))
        with torch.no_grad():
            attr = occlusion.attribute(
                x,
                sliding_window_shapes=(x.shape[1], *window),
                strides=(x.shape[1], *strides),
                baselines=0.0,
                target=classes,
                perturbations_per_eval=self.batch_size,
            )
        heat = attr.sum(dim=1).clamp(min=0).flatten(1)
        heat = heat / heat.max(dim=1, keepdim=True).values.clamp(min=1e-12)
        return heat.reshape(len(x), *spatial).cpu().numpy()


def explain(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    method: Method = DEFAULT_METHOD,
    targets: int | Sequence[int] | None = None,
    target_layer: str | nn.Module | None = None,
) -> np.ndarray:
    """One-shot :class:`Explainer`: heatmaps ``(B, *spatial)`` in [0, 1] for a batch."""
    with Explainer(model, method, target_layer=target_layer) as explainer:
        return explainer(inputs, targets)


def _resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> nn.Module:
    if isinstance(layer, nn.Module):
        return layer
    name = layer or getattr(model, "cam_layer", None)
    if not name:
        raise ConfigError(f"{type(model).__name__} has no cam_layer: pass target_layer")
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise ConfigError(f"{type(model).__name__} has no layer {name!r}") from None
