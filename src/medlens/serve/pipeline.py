"""The work done for one upload, off the event loop: read, classify, render.

Everything here is synchronous and runs in the inference thread pool under a
concurrency slot, so a slow decode or model never blocks the event loop.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medlens.errors import InvalidImageError
from medlens.io import Image
from medlens.serve.model import ModelHandle
from medlens.serve.uploads import read_upload

__all__ = ["Analysis", "analyse", "encode_png", "render_preview"]

PREVIEW_MAX_SIDE = 768


@dataclass(frozen=True)
class Analysis:
    """What one upload produced."""

    probabilities: dict[str, float]
    label: str
    threshold: float | list[float] | None
    engine: str
    modality: str
    shape: tuple[int, ...]
    preview_png: bytes | None = None
    heatmap_png: bytes | None = None
    grade: int | None = None  # ordinal models: the decided grade's index and the expected grade
    expected_grade: float | None = None


def analyse(
    model: ModelHandle,
    path: Path,
    *,
    heatmap: bool = False,
    preview: bool = False,
    window: str = "auto",
    max_bytes: int = 1 << 30,
) -> Analysis:
    """Classify the image in ``path``; optionally render its preview and Grad-CAM heatmap.

    ``max_bytes``: the most a zip of a DICOM series may unpack to.
    """
    image = read_upload(path, max_bytes)
    pred = model.predictor.predict([image])[0]
    probabilities = {str(k): float(v) for k, v in dict(pred.probabilities).items()}
    preview_png, size = render_preview(image, window) if (preview or heatmap) else (None, None)
    cam = heatmap and size and not _slice_sequence(model)  # slice_seq: `medlens explain`
    heatmap_png = render_heatmap(model, image, pred, size) if cam else None
    return Analysis(
        probabilities=probabilities,
        label=str(pred.label),
        threshold=pred.threshold,
        engine=str(pred.engine),
        modality=image.modality,
        shape=tuple(int(s) for s in image.array.shape),
        preview_png=preview_png if preview else None,
        heatmap_png=heatmap_png,
        grade=getattr(pred, "grade", None),
        expected_grade=getattr(pred, "expected_grade", None),
    )


def preview_image(
    path: Path, window: str, index: int | None = None, max_bytes: int = 1 << 30
) -> bytes:
    """Only the windowed preview PNG of the image in ``path`` (slice ``index`` of a volume)."""
    return render_preview(read_upload(path, max_bytes), window, index)[0]


# --- rendering ------------------------------------------------------------------------


def _display(image: Image, window: str, index: int | None = None) -> np.ndarray:
    """Plane ``index`` (default: the middle one) as display values 0..255 (8-bit grey shown
    as stored under 'auto')."""
    array = np.asarray(image.array)
    if image.ndim == 3:
        index = array.shape[0] // 2 if index is None else index
        if not 0 <= index < array.shape[0]:
            raise InvalidImageError(f"no slice {index}: the volume has {array.shape[0]}")
        array = array[index]
        image = image.with_array(array, spacing=image.spacing[1:])
    if array.dtype == np.uint8 and window.strip().lower() == "auto":
        return array
    from medlens.transforms.intensity import display_array

    return (display_array(image, window) * 255.0 + 0.5).astype(np.uint8)


def render_preview(
    image: Image, window: str = "auto", index: int | None = None
) -> tuple[bytes, tuple[int, int]]:
    """A PNG of the image (slice ``index`` of a volume, default the middle one), at most
    768 px a side; and its size."""
    from PIL import Image as PILImage

    pixels = _display(image, window, index)
    if pixels.ndim == 3 and pixels.shape[-1] not in (3, 4):
        raise InvalidImageError(f"cannot display an image with {pixels.shape[-1]} channels")
    pil = PILImage.fromarray(np.ascontiguousarray(pixels))
    pil.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    return encode_png(pil), (pil.height, pil.width)


def _slice_sequence(model: ModelHandle) -> bool:
    from medlens.explain.slices import is_slice_sequence

    return is_slice_sequence(getattr(model.predictor, "model", None))


def render_heatmap(
    model: ModelHandle, image: Image, prediction: Any, size: tuple[int, int]
) -> bytes:
    """The Grad-CAM map of the predicted class as a colour PNG of ``size``; alpha = activation."""
    from matplotlib import colormaps
    from PIL import Image as PILImage

    from medlens.serve.explain import grad_cam

    cam = np.clip(grad_cam(model, image, prediction), 0.0, 1.0).astype(np.float32)
    bilinear = PILImage.Resampling.BILINEAR
    resized = np.asarray(PILImage.fromarray(cam).resize((size[1], size[0]), bilinear))
    rgba = colormaps["turbo"](resized, bytes=True)
    rgba[..., 3] = (np.clip(resized, 0.0, 1.0) * 255.0).astype(np.uint8)
    return encode_png(PILImage.fromarray(rgba))


def encode_png(pil: Any) -> bytes:
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")
