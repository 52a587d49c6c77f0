"""PNG, JPEG and TIFF (8- and 16-bit, grey or colour) through Pillow.

Grey images give ``(rows, cols)`` (``uint8``, ``uint16``, ``int32`` or ``float32`` as stored);
colour images give ``(rows, cols, 3)`` ``uint8`` (palettes expanded, alpha kept as a 4th
channel). A multi-page TIFF of equal pages gives ``(pages, rows, cols)``. Spacing comes from
the file's resolution (DPI) when it has one, otherwise it is 1 mm and ``meta["spacing_known"]``
is False. The size is checked against ``max_voxels`` from the header, before decoding; Pillow's
own decompression-bomb guard is kept as well.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medlens.errors import (
    ConfigError,
    ImageTooLargeError,
    InvalidImageError,
    TruncatedImageError,
    UnsupportedFormatError,
)
from medlens.io.base import DEFAULT_MAX_VOXELS, atomic_path, check_finite, check_size, raster_affine
from medlens.io.image import Image

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["RasterReader", "read_raster", "write_png"]

MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
GREY_MODES = {
    "1": np.uint8,
    "L": np.uint8,
    "I;16": np.uint16,
    "I;16B": np.uint16,
    "I": np.int32,
    "F": np.float32,
}


class RasterReader:
    """PNG, JPEG and TIFF, recognised by their signatures."""

    name = "raster"
    extensions = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

    def can_read(self, header: bytes, path: Path) -> bool:
        return any(header.startswith(magic) for magic in MAGIC)

    def read(self, path: Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Image:
        return read_raster(path, max_voxels=max_voxels)


def read_raster(path: str | Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Image:
    """Read a PNG, JPEG or TIFF file into an :class:`Image`."""
    from PIL import Image as PILImage
    from PIL import ImageSequence, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            pil = PILImage.open(path)
        with pil:
            pages, bands = getattr(pil, "n_frames", 1), len(pil.getbands())
            shape = (pages, pil.height, pil.width, bands)
            check_size(
                tuple(n for i, n in enumerate(shape) if n > 1 or i in (1, 2)), path, max_voxels
            )
            arrays = [_to_array(page, path) for page in ImageSequence.Iterator(pil)]
            spacing, known = _spacing(pil)
            file_format, mode = pil.format, pil.mode
    except InvalidImageError:
        raise
    except PILImage.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{path}: refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise InvalidImageError(f"{path}: not a readable PNG, JPEG or TIFF image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedImageError(f"{path}: image data is truncated or corrupt ({exc})") from None
    array = _stack(arrays, path)
    check_finite(array, path)
    if array.ndim == 3 and len(arrays) > 1:
        spacing = (1.0, *spacing)
    return Image(
        array=array,
        spacing=spacing,
        affine=raster_affine(spacing),
        modality="OT",
        meta={"format": file_format, "mode": mode, "frames": len(arrays), "spacing_known": known},
        source=path,
    )


def _to_array(page: PILImage.Image, path: Path) -> np.ndarray:
    mode = page.mode
    if mode in GREY_MODES:
        return np.asarray(page, dtype=GREY_MODES[mode])
    if mode == "LA":
        return np.asarray(page.getchannel("L"))
    if mode == "P":
        page = page.convert("RGBA" if "transparency" in page.info else "RGB")
    elif mode not in ("RGB", "RGBA"):
        try:
            page = page.convert("RGB")
        except ValueError:
            raise UnsupportedFormatError(f"{path}: image mode {mode} is not supported") from None
    return np.asarray(page)


def _stack(arrays: list[np.ndarray], path: Path) -> np.ndarray:
    if len(arrays) == 1:
        return arrays[0]
    if len({(a.shape, a.dtype) for a in arrays}) > 1 or arrays[0].ndim != 2:
        raise UnsupportedFormatError(f"{path}: pages differ in size or are colour; cannot stack")
    return np.stack(arrays)


def _spacing(pil: PILImage.Image) -> tuple[tuple[float, float], bool]:
    """Pixel size in mm (rows, cols) from the file's DPI, if it states one."""
    dpi = pil.info.get("dpi")
    try:
        x_dpi, y_dpi = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return (1.0, 1.0), False
    if x_dpi <= 1 or y_dpi <= 1:  # 0 or "1 dpi" mean unknown in practice
        return (1.0, 1.0), False
    return (25.4 / y_dpi, 25.4 / x_dpi), True


def write_png(image: Image | np.ndarray, path: str | Path, *, bits: int | None = None) -> Path:
    """Write a 2D image (grey or RGB) as PNG, atomically.

    Integer pixels are written unchanged when they fit ``bits`` (default: 8 for ``uint8``,
    16 for other integers); float pixels must lie in [0, 1] (e.g. the output of
    :func:`medlens.transforms.intensity.apply_window`) and are scaled to ``2**bits - 1``
    (default 8 bits). Anything else raises :class:`~medlens.errors.ConfigError`: window it first.
    """
    from PIL import Image as PILImage

    path = Path(path)
    array = image.array if isinstance(image, Image) else np.asarray(image)
    if isinstance(image, Image) and image.kind == "label" and _fits_palette(array):
        picture = _palette_image(array)
    else:
        picture = PILImage.fromarray(_png_pixels(array, path, bits))
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
    return path


#: Foreground class colours, the same in label-map PNGs, reports and the service's page.
CLASS_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6")


def class_colour(k: int) -> str:
    """The colour of foreground class index ``k`` (1 for the first class after background)."""
    return CLASS_COLOURS[(k - 1) % len(CLASS_COLOURS)]


def _fits_palette(array: np.ndarray) -> bool:
    return array.ndim == 2 and array.dtype.kind in "biu" and (array.size == 0 or (
        int(array.min()) >= 0 and int(array.max()) < 256))  # fmt: skip


def _palette_image(array: np.ndarray) -> PILImage.Image:
    """A palette PNG: pixel values are the label values, each shown in its own colour."""
    from PIL import Image as PILImage
    from PIL import ImageColor

    palette = [0] * (256 * 3)
    for k, value in enumerate((v for v in np.unique(array).tolist() if v != 0), start=1):
        palette[3 * value : 3 * value + 3] = ImageColor.getrgb(class_colour(k))
    picture = PILImage.fromarray(array.astype(np.uint8), mode="P")
    picture.putpalette(palette)
    return picture


def read_palette_indices(path: str | Path) -> np.ndarray:
    """The pixel values (palette indices) of a one-page palette PNG, as written for labels."""
    from PIL import Image as PILImage

    with PILImage.open(path) as pil:
        if pil.mode != "P":
            raise UnsupportedFormatError(f"{path}: not a palette image")
        return np.asarray(pil).copy()


def _png_pixels(array: np.ndarray, path: Path, bits: int | None) -> np.ndarray:
    grey = array.ndim == 2
    if not grey and not (array.ndim == 3 and array.shape[-1] in (3, 4)):
        raise ConfigError(f"{path}: PNG needs a 2D grey or RGB(A) image, got shape {array.shape}")
    if bits not in (None, 8, 16):
        raise ConfigError(f"{path}: PNG bit depth must be 8 or 16, not {bits}")
    if array.dtype.kind == "f":
        return _scale_float(array, path, bits or 8, grey)
    if array.dtype.kind not in "biu":
        raise ConfigError(f"{path}: cannot write {array.dtype} pixels as PNG")
    bits = bits or (8 if array.dtype.itemsize == 1 else 16)
    if not grey and bits == 16:
        raise ConfigError(f"{path}: 16-bit colour PNG is not supported; use --bits 8")
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if low < 0 or high >= 2**bits:
        raise ConfigError(
            f"{path}: values {low}..{high} do not fit a {bits}-bit PNG; apply a window first"
        )
    return array.astype(np.uint8 if bits == 8 else np.uint16)


def _scale_float(array: np.ndarray, path: Path, bits: int, grey: bool) -> np.ndarray:
    if array.size and (
        np.nanmin(array) < 0 or np.nanmax(array) > 1 or not np.isfinite(array).all()
    ):
        raise ConfigError(f"{path}: float pixels must lie in [0, 1]; apply a window first")
    if not grey and bits == 16:
        raise ConfigError(f"{path}: 16-bit colour PNG is not supported; use --bits 8")
    top = 2**bits - 1
    return np.rint(array * top).astype(np.uint8 if bits == 8 else np.uint16)
