"""AI results as DICOM: SR (TID 1500), SEG and Secondary Capture, each read back and checked.

highdicom validates each object as it builds it; here they are written, read back with
pydicom/highdicom and checked for the attributes a PACS needs, and validated by ``dciodvfy``
(dicom3tools) when it is installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from medlens.hospital.identity import ModelIdentity
from medlens.hospital.sc import heatmap_sc
from medlens.hospital.sr import classification_sr
from medlens.inference import Prediction

hd = pytest.importorskip("highdicom")
IDENTITY = ModelIdentity("ct-run", "0123456789ab", "simple_cnn", "0.1.0")
#: Type 1/2 attributes of the Patient, General Study, General Series, General Equipment and
#: SOP Common modules that every result must carry.
REQUIRED = (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
    "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "Modality", "SeriesInstanceUID", "SeriesNumber", "Manufacturer", "SOPClassUID",
    "SOPInstanceUID", "InstanceNumber",
)  # fmt: skip


def _reread(ds: pydicom.Dataset) -> pydicom.Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def _check_common(ds: pydicom.Dataset, source: pydicom.Dataset) -> None:
    missing = [k for k in REQUIRED if k not in ds]
    assert not missing, missing
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyID"):
        assert ds[keyword].value == source[keyword].value
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    assert ds.SOPInstanceUID != source.SOPInstanceUID
    assert (ds.Manufacturer, ds.ManufacturerModelName) == ("medlens", "ct-run (simple_cnn)")
    assert list(ds.SoftwareVersions) == ["medlens 0.1.0", "weights 0123456789ab"]
    ours = [e for e in ds.ContributingEquipmentSequence if e.Manufacturer == "medlens"]
    assert ours and ours[0].ManufacturerModelName == "ct-run (simple_cnn)"
    assert ours[0].PurposeOfReferenceCodeSequence[0].CodeValue == "109102"  # processing equipment


@pytest.mark.parametrize(
    ("task", "classes", "probabilities", "label", "threshold", "groups"),
    [
        ("binary", ["normal", "tumour"], [0.3, 0.7], "tumour", 0.6, {"tumour": "Present"}),
        ("multiclass", ["a", "b", "c"], [0.2, 0.5, 0.3], "b", None,
         {"a": "Absent", "b": "Present", "c": "Absent"}),
    ],
)  # fmt: skip
def test_classification_sr_is_a_tid1500_report(
    ct_datasets, task, classes, probabilities, label, threshold, groups
) -> None:
    prediction = Prediction(dict(zip(classes, probabilities, strict=True)), label, threshold, "t")
    sr = _reread(classification_sr(prediction, ct_datasets, IDENTITY, task=task, classes=classes))
    _check_common(sr, ct_datasets[0])
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert sr.Modality == "SR" and sr.CompletionFlag == "COMPLETE"
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.SeriesInstanceUID == ct_datasets[0].SeriesInstanceUID
    assert len(evidence.ReferencedSOPSequence) == len(ct_datasets)
    report = hd.sr.MeasurementReport.from_sequence([hd.sr.srread(io.BytesIO(_bytes(sr)))])
    observer = report.get_observer_contexts()[0].observer_identifying_attributes
    assert observer.model_name == "ct-run (simple_cnn)"
    found = {}
    for group in report.get_image_measurement_groups():
        name = group.finding_type.value
        found[name] = group.get_qualitative_evaluations()[0].value.meaning
        values = {m.name.meaning: m.value for m in group.get_measurements()}
        assert values["Probability"] == pytest.approx(probabilities[classes.index(name)])
        assert values.get("Threshold Value") == (None if threshold is None else threshold)
        names = [i.TextValue for i in group[0].ContentSequence if _code(i) == "111001"]
        assert names == [IDENTITY.model_name]  # Algorithm Name (TID 4019)
        assert len(group.source_images) == len(ct_datasets)
    assert found == groups


def _code(item: pydicom.Dataset) -> str:
    return str(item.ConceptNameCodeSequence[0].CodeValue)


def _bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_seg_references_the_series_and_each_source_frame(small_series) -> None:
    from medlens.io import read_series
    from medlens.segmentation.dicom_seg import build_dicom_seg

    sources = [pydicom.dcmread(p) for p in sorted(small_series.iterdir())][::-1]  # any order
    volume = read_series(small_series)
    labels = (volume.array > 1300).astype(np.uint8)
    seg = build_dicom_seg(
        labels, sources, class_names=["background", "blob"], label_values=[0, 1],
        identity=IDENTITY,
    )  # fmt: skip
    back = hd.seg.segread(io.BytesIO(_bytes(seg)))
    _check_common(back, sources[0])
    assert back.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    (series,) = back.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence} == {
        s.SOPInstanceUID for s in sources
    }
    by_position = {tuple(map(float, s.ImagePositionPatient)): s.SOPInstanceUID for s in sources}
    assert back.NumberOfFrames == labels.shape[0]
    for frame in back.PerFrameFunctionalGroupsSequence:
        position = tuple(map(float, frame.PlanePositionSequence[0].ImagePositionPatient))
        source = frame.DerivationImageSequence[0].SourceImageSequence[0]
        assert source.ReferencedSOPInstanceUID == by_position[position]
    algorithm = back.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == IDENTITY.model_name
    frames = back.get_volume().array  # highdicom puts the frames back in space
    assert frames.shape[-1] == 1 and int(frames.sum()) == int(labels.sum())


def test_heatmap_is_a_secondary_capture_marked_as_ai(ct_datasets) -> None:
    overlay = np.zeros((30, 40, 3), np.uint8)
    overlay[..., 0] = np.arange(40, dtype=np.uint8)
    sc = _reread(heatmap_sc(overlay, ct_datasets, IDENTITY, description="Grad-CAM", slice_index=3))
    _check_common(sc, ct_datasets[0])
    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert list(sc.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert sc.BurnedInAnnotation == "YES" and sc.ConversionType == "WSD"
    assert "AI-generated" in sc.DerivationDescription
    assert sc.FrameOfReferenceUID == ct_datasets[0].FrameOfReferenceUID
    from medlens.hospital.identity import sort_slices

    explained = sort_slices(ct_datasets)[3]
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == explained.SOPInstanceUID
    assert sc.PhotometricInterpretation == "RGB"
    assert np.array_equal(sc.pixel_array, overlay)


def test_dciodvfy_finds_no_iod_error(ct_datasets, small_series, tmp_path) -> None:
    """David Clunie's IOD validator (Debian ``dicom3tools``) on each object: no *Error* line."""
    import shutil
    import subprocess

    from medlens.io import read_series
    from medlens.segmentation.dicom_seg import build_dicom_seg

    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy not installed (apt-get install dicom3tools); highdicom checks only")
    prediction = Prediction({"a": 0.2, "b": 0.8}, "b", 0.5, "torch")
    small = [pydicom.dcmread(p) for p in sorted(small_series.iterdir())]
    labels = (read_series(small_series).array > 1300).astype(np.uint8)
    objects = {
        "sr": classification_sr(
            prediction, ct_datasets, IDENTITY, task="binary", classes=["a", "b"]
        ),
        "sc": heatmap_sc(np.zeros((30, 40, 3), np.uint8), ct_datasets, IDENTITY, description="x"),
        "seg": build_dicom_seg(
            labels, small, class_names=["bg", "blob"], label_values=[0, 1], identity=IDENTITY
        ),
    }
    for name, ds in objects.items():
        ds.save_as(tmp_path / f"{name}.dcm", enforce_file_format=True)
        done = subprocess.run(
            ["dciodvfy", "-new", str(tmp_path / f"{name}.dcm")], capture_output=True, text=True
        )
        report = done.stdout + done.stderr
        assert [line for line in report.splitlines() if line.startswith("Error")] == [], report
