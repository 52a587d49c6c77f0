"""The :class:`Image` type every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

ImageKind = Literal["scalar", "label"]


@dataclass(frozen=True, eq=False)
class Image:
    """Pixels with their geometry and metadata.

    Axis convention (array order, the same for every format):

    * 2D: ``(rows, cols)``; RGB(A) raster images add a trailing channel axis ``(rows, cols, C)``.
    * 3D: ``(slices, rows, cols)``; a DICOM series or multi-frame object stacks its frames
      along axis 0, a NIfTI volume ``(i, j, k)`` is stored as ``(k, j, i)``.

    Attributes:
        array: pixel values; DICOM after the modality LUT (e.g. Hounsfield units for CT).
        spacing: physical size of one voxel in mm along each spatial axis, in array order.
        affine: 4x4 matrix mapping array indices ``(a0, a1, a2, 1)`` to RAS+ world mm
            (for 2D images the third index is 0).
        modality: DICOM modality code ("CT", "MR", "CR", "DX", "US", ...) or "OT" if unknown.
        kind: "scalar" for intensities, "label" for label maps (nearest-neighbour resampling).
        meta: non-identifying metadata (format, photometric interpretation, transfer syntax,
            window centre/width, ...). Never patient data.
        source: the file or folder the image was read from, if any.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    modality: str = "OT"
    kind: ImageKind = "scalar"
    meta: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def is_rgb(self) -> bool:
        """Colour pixels on a trailing channel axis (2D ``(rows, cols, C)`` or 3D frames)."""
        return self.array.ndim == len(self.spacing) + 1

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape[: len(self.spacing)])

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return len(self.spacing)

    def with_array(self, array: np.ndarray, **changes: Any) -> Image:
        """A copy with new pixels (and optionally other fields changed)."""
        fields = {**self.__dict__, "array": array, **changes}
        return Image(**fields)

    def __repr__(self) -> str:
        return (
            f"Image(shape={self.array.shape}, dtype={self.array.dtype}, spacing={self.spacing}, "
            f"modality={self.modality!r}, kind={self.kind!r})"
        )
