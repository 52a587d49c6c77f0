"""DICOM SEG output (highdicom) for a label map predicted on a DICOM series.

The label map is in the array order of :func:`medlens.io.read_series` (slices sorted along
the slice normal), so the source datasets are sorted the same way before highdicom pairs
each frame with its source slice. One segment per foreground class, binary.

:func:`build_dicom_seg` works on datasets in memory (a series fetched from a PACS) and
carries the model's identity (:class:`medlens.hospital.identity.ModelIdentity`): the SEG has
the source's Patient/Study modules and Frame of Reference, new Series/SOP Instance UIDs, a
ReferencedSeriesSequence naming the source series, per-frame Derivation/Source Image
references to each slice, and Contributing Equipment naming the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medlens.errors import InvalidImageError

__all__ = ["SEG_SERIES_NUMBER", "build_dicom_seg", "write_dicom_seg"]

SEG_SERIES_NUMBER = 900


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
    from medlens.training.checkpoint import atomic_write_bytes

    seg = build_dicom_seg(
        labels,
        _read_series(Path(series_folder)),
        class_names=class_names,
        label_values=label_values,
        identity=_identity(algorithm, version),
        where=str(series_folder),
    )
    import io

    buffer = io.BytesIO()
    seg.save_as(buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def build_dicom_seg(
    labels: np.ndarray,
    sources: Sequence[Any],
    *,
    class_names: Sequence[str],
    label_values: Sequence[int],
    identity: Any,
    where: str = "series",
) -> Any:
    """The DICOM SEG dataset of ``labels`` on the series ``sources`` (see the module docstring).

    ``identity`` is a :class:`~medlens.hospital.identity.ModelIdentity`.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from medlens.hospital.identity import copy_source_modules, sort_slices

    sources = sort_slices(sources, where)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.shape != (len(sources), int(sources[0].Rows), int(sources[0].Columns)):
        raise InvalidImageError(
            f"{where}: label map shape {labels.shape} does not match the series"
        )
    algorithm = identity.algorithm()
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
                algorithm_identification=algorithm,
            )
        )
        masks.append(labels == value)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=np.stack(masks, axis=-1).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="medlens",
        manufacturer_model_name=identity.model_name,
        software_versions=identity.software_versions[0],  # stamp() sets both below
        device_serial_number=identity.version,
        omit_empty_frames=False,
        contributing_equipment=identity.contributing_equipment("AI segmentation"),
    )
    copy_source_modules(seg, sources[0])
    identity.stamp(seg, f"AI result: {identity.name} segmentation")
    return seg


def _identity(algorithm: str, version: str) -> Any:
    from medlens import __version__
    from medlens.hospital.identity import ModelIdentity

    return ModelIdentity(algorithm, version, algorithm, __version__)


def _read_series(folder: Path) -> list:
    """The datasets of the one series in ``folder``."""
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
    return datasets
