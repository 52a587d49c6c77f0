"""DICOM SEG output (highdicom) for a label map predicted on a DICOM series.

The label map is in the array order of :func:`medlens.io.read_series` (slices sorted along
the slice normal), so the source datasets are sorted the same way before highdicom pairs
each frame with its source slice. One segment per foreground class, binary.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medlens.errors import InvalidImageError

__all__ = ["write_dicom_seg"]


def write_dicom_seg(
    labels: np.ndarray,
    series_folder: str | Path,
    path: str | Path,
    *,
    class_names: Sequence[str],
    label_values: Sequence[int],
    algorithm: str = "medlens",
    version: str = "0",
) -> Path:
    """Write ``labels`` (``(slices, rows, cols)``, values from ``label_values``) as DICOM SEG.

    ``class_names[0]``/``label_values[0]`` are the background, not written as a segment.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from medlens.training.checkpoint import atomic_write_bytes

    sources = _sorted_series(Path(series_folder))
    if labels.shape != (len(sources), int(sources[0].Rows), int(sources[0].Columns)):
        raise InvalidImageError(
            f"{series_folder}: label map shape {labels.shape} does not match the series"
        )
    identification = hd.AlgorithmIdentificationSequence(
        name=algorithm, version=version, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions, masks = [], []
    for number, (name, value) in enumerate(
        zip(class_names[1:], label_values[1:], strict=True), start=1
    ):
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=str(name)[:64],
                segmented_property_category=codes.cid7150.Tissue,
                segmented_property_type=codes.cid7166.ConnectiveTissue,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=identification,
            )
        )
        masks.append(labels == value)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=np.stack(masks, axis=-1).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="medlens",
        manufacturer_model_name=algorithm,
        software_versions=version,
        device_serial_number="0",
        omit_empty_frames=False,
    )
    import io

    buffer = io.BytesIO()
    seg.save_as(buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _sorted_series(folder: Path) -> list:
    """The series' datasets sorted along the slice normal, as ``read_series`` orders them."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    datasets = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            datasets.append(pydicom.dcmread(file))
        except (InvalidDicomError, OSError):
            continue
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if not datasets or len(series) != 1:
        raise InvalidImageError(f"{folder}: DICOM SEG needs a folder holding one DICOM series")
    for ds in datasets:  # some exporters leave SOPClassUID empty; the file meta has it
        if not ds.get("SOPClassUID") and "MediaStorageSOPClassUID" in ds.get("file_meta", {}):
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    orientation = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    return sorted(datasets, key=lambda ds: float(np.dot(ds.ImagePositionPatient, normal)))
