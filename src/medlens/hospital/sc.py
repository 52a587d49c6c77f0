"""A Grad-CAM overlay as a DICOM Secondary Capture image marked as AI-generated.

The overlay (the picture ``medlens explain`` writes: image, heatmap, colour bar and the
prediction as text) becomes an RGB Secondary Capture with Image Type
``DERIVED\\SECONDARY\\AI_HEATMAP``, Burned In Annotation ``YES``, a Derivation Description
and Source Image Sequence naming the slice it explains, Conversion Type ``WSD``, and the
model as Contributing Equipment. Patient and Study modules come from the source; the Frame
of Reference UID is kept as a standard extended attribute.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from medlens.hospital.identity import ModelIdentity, copy_source_modules, sort_slices

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["SC_SERIES_NUMBER", "heatmap_sc", "patient_orientation", "png_to_rgb"]

SC_SERIES_NUMBER = 902


def png_to_rgb(png: bytes) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 array from PNG bytes (alpha dropped)."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(png)) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.uint8)


def patient_orientation(ds: Dataset) -> tuple[str, str]:
    """Patient Orientation (row, column directions, e.g. ``("L", "P")``) of a slice."""
    if "ImageOrientationPatient" not in ds:
        return ("L", "P")  # axial by convention when the source does not say
    cosines = np.asarray(ds.ImageOrientationPatient, dtype=float)
    return _direction(cosines[:3]), _direction(cosines[3:])


def _direction(vector: np.ndarray) -> str:
    axis = int(np.argmax(np.abs(vector)))
    return ("LR", "PA", "HF")[axis][0 if vector[axis] > 0 else 1]


def heatmap_sc(
    overlay: np.ndarray,
    sources: Sequence[Dataset],
    identity: ModelIdentity,
    *,
    description: str,
    slice_index: int | None = None,
) -> Dataset:
    """A Secondary Capture of ``overlay`` (RGB uint8) explaining the series ``sources``.

    ``slice_index`` (in sorted order) is the slice the overlay shows; default the middle one.
    """
    import highdicom as hd
    from pydicom.dataset import Dataset as PyDataset
    from pydicom.sequence import Sequence as PySequence

    sources = sort_slices(sources, "Secondary Capture")
    ref = sources[len(sources) // 2 if slice_index is None else slice_index]
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref,
        pixel_array=np.ascontiguousarray(overlay, dtype=np.uint8),
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        patient_orientation=patient_orientation(ref),
        series_instance_uid=hd.UID(),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="medlens",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        contributing_equipment=identity.contributing_equipment("AI heatmap (Grad-CAM)"),
    )
    copy_source_modules(sc, ref)
    identity.stamp(sc, f"AI heatmap: {identity.name}")
    sc.ImageType = ["DERIVED", "SECONDARY", "AI_HEATMAP"]
    sc.Laterality = ref.get("Laterality", "")  # Type 2C: empty when the source says nothing
    sc.BurnedInAnnotation = "YES"
    sc.ConversionType = "WSD"
    sc.DerivationDescription = f"AI-generated {description}; not for primary diagnosis"[:1024]
    source = PyDataset()
    source.ReferencedSOPClassUID = ref.SOPClassUID
    source.ReferencedSOPInstanceUID = ref.SOPInstanceUID
    sc.SourceImageSequence = PySequence([source])
    return sc
