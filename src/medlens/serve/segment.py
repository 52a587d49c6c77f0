"""The work done for one upload to a segmentation model: segment, measure, render, export.

Synchronous, run in the inference thread pool like :mod:`medlens.serve.pipeline`. The
preview of a volume shows the slice with the most foreground; the overlay is a separate
RGBA layer of the preview's size (class colour, opaque inside the mask, clear outside), so
a client chooses its opacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medlens.errors import InvalidImageError
from medlens.io import Image
from medlens.io.raster import class_colour
from medlens.segmentation.overlay import largest_slice
from medlens.serve.pipeline import encode_png, render_preview
from medlens.serve.uploads import Upload

__all__ = [
    "Download",
    "SegAnalysis",
    "check_download",
    "is_segmentation",
    "render_overlay",
    "segment_upload",
    "write_download",
]

Download = Literal["nifti", "dicom-seg"]
MEDIA_TYPES: dict[str, str] = {"nifti": "application/gzip", "dicom-seg": "application/dicom"}
FILE_NAMES: dict[str, str] = {"nifti": "segmentation.nii.gz", "dicom-seg": "segmentation.dcm"}


@dataclass(frozen=True)
class SegAnalysis:
    """What one upload to a segmentation model produced."""

    labels: Image
    volumes: dict[str, float]
    engine: str
    modality: str
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    colours: dict[str, str]
    slice_index: int | None = None
    preview_png: bytes | None = None
    overlay_png: bytes | None = None

    @property
    def found(self) -> list[str]:
        """The foreground classes present in the label map."""
        return [name for name, volume in self.volumes.items() if volume > 0]

    @property
    def label(self) -> str:
        return "|".join(self.found)

    @property
    def volume_unit(self) -> str:
        return "mm3" if self.labels.ndim == 3 else "mm2"


def is_segmentation(predictor: Any) -> bool:
    return getattr(predictor, "family", "") == "segmentation"


def segment_upload(
    predictor: Any, upload: Upload, *, preview: bool = False, window: str = "auto"
) -> SegAnalysis:
    """Segment ``upload.image``; with ``preview``, render its preview and mask overlay."""
    image = upload.image
    prediction = predictor.predict([image])[0]
    labels: Image = prediction.label_map
    names = list(predictor.classes[1:])
    colours = {name: class_colour(k) for k, name in enumerate(names, start=1)}
    background = predictor.label_values[0]
    index = largest_slice(labels.array, background=background) if labels.ndim == 3 else None
    preview_png = overlay_png = None
    if preview:
        preview_png, size = render_preview(image, window, index)
        plane = labels.array if index is None else labels.array[index]
        overlay_png = render_overlay(plane, size, predictor.label_values[1:])
    return SegAnalysis(
        labels=labels,
        volumes={str(k): float(v) for k, v in prediction.volumes.items()},
        engine=str(prediction.engine),
        modality=image.modality,
        shape=tuple(int(s) for s in image.array.shape),
        spacing=tuple(float(s) for s in image.spacing),
        colours=colours,
        slice_index=index,
        preview_png=preview_png,
        overlay_png=overlay_png,
    )


def render_overlay(plane: np.ndarray, size: tuple[int, int], values: list[int]) -> bytes:
    """An RGBA PNG of ``size`` (rows, cols): the colour of each class in ``values``
    (:func:`~medlens.io.raster.class_colour` of its rank) where the plane holds
    it, transparent elsewhere."""
    from PIL import Image as PILImage
    from PIL import ImageColor

    resized = PILImage.fromarray(np.ascontiguousarray(plane)).resize(
        (size[1], size[0]), PILImage.Resampling.NEAREST
    )
    array = np.asarray(resized)
    rgba = np.zeros((*array.shape, 4), dtype=np.uint8)
    for k, value in enumerate(values, start=1):
        rgba[array == value] = (*ImageColor.getrgb(class_colour(k)), 255)
    return encode_png(PILImage.fromarray(rgba))


def check_download(upload: Upload, fmt: str) -> None:
    """Refuse, before segmenting, a DICOM SEG asked for an upload that is not DICOM."""
    if fmt == "dicom-seg" and not upload.is_dicom:
        raise InvalidImageError(
            "DICOM SEG needs a DICOM upload (a DICOM file or a zip of one DICOM series)"
        )


def write_download(predictor: Any, upload: Upload, labels: Image, fmt: Download) -> bytes:
    """The label map as NIfTI (the input's geometry) or DICOM SEG (on the uploaded DICOM).

    Written in a folder beside the upload (removed with it) and returned as bytes.

    Raises:
        InvalidImageError: DICOM SEG asked for an upload that is not DICOM, or whose
            series does not match the label map.
    """
    target = upload.path.with_name(FILE_NAMES[fmt])
    if fmt == "nifti":
        from medlens.io import write_image

        write_image(labels, target)
    else:
        _write_dicom_seg(predictor, upload, labels, target)
    return target.read_bytes()


def _write_dicom_seg(predictor: Any, upload: Upload, labels: Image, target: Path) -> None:
    from medlens import __version__
    from medlens.segmentation.dicom_seg import write_dicom_seg

    check_download(upload, "dicom-seg")
    folder = upload.dicom_folder()
    assert folder is not None  # a DICOM upload always has one
    array = labels.array if labels.ndim == 3 else labels.array[np.newaxis]
    write_dicom_seg(
        array,
        folder,
        target,
        class_names=predictor.classes,
        label_values=predictor.label_values,
        version=__version__,
    )
