"""Predict DICOM studies (from a PACS or a series folder) and write PACS-ready results.

>>> predict_studies("runs/ct", ["dicomweb://127.0.0.1:8042/dicom-web?StudyInstanceUID=1.2"],
...                 "out/predictions.csv", stores=["dicomweb://127.0.0.1:8042/dicom-web"])
... # doctest: +SKIP

Each study's series is fetched (DICOMweb) or read (folder), assembled by
:func:`medlens.io.read_series`, predicted with the run's predictor, and its results written
as DICOM beside the CSV, in ``<csv without .csv>/<SeriesInstanceUID>/``: ``sr.dcm``
(classification, TID 1500), ``sc.dcm`` (Grad-CAM, when ``heatmap``) or ``seg.dcm``
(segmentation). Then they are sent to every store (STOW-RS or C-STORE).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlens.errors import ConfigError
from medlens.hospital.identity import ModelIdentity

__all__ = ["StudyResult", "is_dicomweb", "predict_studies", "predict_study", "store_results"]


@dataclass
class StudyResult:
    """One study's prediction: its CSV row, the DICOM objects written and where stored."""

    source: str
    study_uid: str
    series_uid: str
    row: dict[str, Any]
    objects: list[Any] = field(default_factory=list, repr=False)
    files: list[Path] = field(default_factory=list)
    stored: dict[str, list[str]] = field(default_factory=dict)


def is_dicomweb(item: str | Path) -> bool:
    """Whether ``item`` is a ``dicomweb://`` / ``dicomwebs://`` address."""
    return str(item).lower().startswith(("dicomweb://", "dicomwebs://"))


@contextmanager
def _series_folder(source: str | Path) -> Iterator[Path]:
    """A folder holding the series (fetched into a temporary one for DICOMweb)."""
    if not is_dicomweb(source):
        yield Path(source)
        return
    from medlens.hospital.dicomweb import fetch_series

    with tempfile.TemporaryDirectory(prefix="medlens-dicomweb-") as folder:
        fetched = fetch_series(str(source), folder)
        yield fetched.folder


def predict_study(
    predictor: Any,
    identity: ModelIdentity,
    source: str | Path,
    *,
    heatmap: bool = False,
) -> StudyResult:
    """Predict one series and build its result objects (not yet written or stored)."""
    import pydicom

    from medlens.io import read_series

    with _series_folder(source) as folder:
        image = read_series(folder)
        files = [p for p in sorted(folder.rglob("*")) if p.is_file() and _is_dicom(p)]
        datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    first = datasets[0]
    result = StudyResult(str(source), str(first.StudyInstanceUID), str(first.SeriesInstanceUID), {})
    if predictor.family == "segmentation":
        _segment(predictor, identity, image, datasets, result)
    else:
        _classify(predictor, identity, image, datasets, result, heatmap)
    result.row = {
        "source": str(source), "study_uid": result.study_uid, "series_uid": result.series_uid,
        **result.row,
    }  # fmt: skip
    return result


def _is_dicom(path: Path) -> bool:
    from medlens.data.sources import is_dicom_file

    return not path.name.startswith(".") and is_dicom_file(path)


def _classify(
    predictor: Any,
    identity: ModelIdentity,
    image: Any,
    datasets: list[Any],
    result: StudyResult,
    heatmap: bool,
) -> None:
    from medlens.hospital.sr import classification_sr

    wants_2d = len(predictor.preprocessing.spatial_size or (0, 0)) == 2
    middle = image.array.shape[0] // 2 if image.ndim == 3 else 0
    if image.ndim == 3 and wants_2d:  # as medlens predict does: the middle slice
        image = image.with_array(image.array[middle], spacing=image.spacing[1:])
    prediction = predictor.predict([image])[0]
    result.row = {k: v for k, v in prediction.to_dict().items() if k != "source"}
    result.row["predicted_label"] = result.row.pop("label")
    sr = classification_sr(
        prediction, datasets, identity, task=predictor.task, classes=predictor.classes
    )
    result.objects.append(("sr", sr))
    if heatmap:
        from medlens.explain import explain_images
        from medlens.hospital.sc import heatmap_sc, png_to_rgb

        explained = explain_images(predictor, [image])[0]
        sc = heatmap_sc(
            png_to_rgb(explained.overlay_png()),
            datasets,
            identity,
            description=f"Grad-CAM for {explained.target}",
            slice_index=middle if wants_2d else None,
        )
        result.objects.append(("sc", sc))


def _segment(
    predictor: Any, identity: ModelIdentity, image: Any, datasets: list[Any], result: StudyResult
) -> None:
    from medlens.segmentation.dicom_seg import build_dicom_seg

    prediction = predictor.predict([image])[0]
    result.row = {k: v for k, v in prediction.to_dict().items() if k != "source"}
    seg = build_dicom_seg(
        prediction.label_map.array,
        datasets,
        class_names=predictor.classes,
        label_values=predictor.label_values,
        identity=identity,
    )
    result.objects.append(("seg", seg))


def write_results(result: StudyResult, folder: Path) -> list[Path]:
    """Write the result objects as ``<kind>.dcm`` in ``folder`` (atomically)."""
    from medlens.training.checkpoint import atomic_write_bytes

    written = []
    for kind, ds in result.objects:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        atomic_write_bytes(folder / f"{kind}.dcm", buffer.getvalue())
        written.append(folder / f"{kind}.dcm")
    result.files = written
    return written


def store_results(result: StudyResult, stores: Sequence[str], *, chunked: bool = False) -> None:
    """Send the result objects to each store (``dicomweb://`` STOW-RS, ``dimse://`` C-STORE)."""
    from medlens.hospital.dicomweb import store_dicomweb
    from medlens.hospital.dimse import store_dimse
    from medlens.hospital.uri import DimseAddress, parse_store

    datasets = [ds for _, ds in result.objects]
    for target in stores:
        address = parse_store(target)
        if isinstance(address, DimseAddress):
            result.stored[target] = store_dimse(datasets, address)
        else:
            result.stored[target] = store_dicomweb(datasets, address, chunked=chunked)


def predict_studies(
    run_dir: str | Path,
    sources: Sequence[str | Path],
    output: str | Path,
    *,
    stores: Sequence[str] = (),
    heatmap: bool = False,
    chunked: bool = False,
    engine: str = "auto",
) -> Path:
    """Predict each study (see the module docstring); write the CSV and return its path."""
    from medlens.hospital.uri import parse_store
    from medlens.inference import Predictor

    for target in stores:  # refuse a bad address before any work
        parse_store(target)
    if not sources:
        raise ConfigError("no studies to predict")
    output = Path(output)
    predictor = Predictor.from_run(run_dir, engine="torch" if heatmap else engine)
    identity = ModelIdentity.from_card(predictor.card, run_dir)
    rows = []
    for source in sources:
        result = predict_study(predictor, identity, source, heatmap=heatmap)
        write_results(result, output.with_suffix("") / result.series_uid)
        store_results(result, stores, chunked=chunked)
        result.row["results"] = "|".join(str(p) for p in result.files)
        result.row["stored"] = sum(len(uids) for uids in result.stored.values())
        rows.append(result.row)
    _write_csv(output, rows)
    return output


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    from medlens.training.checkpoint import atomic_write_text

    buffer = io.StringIO()
    names = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())
