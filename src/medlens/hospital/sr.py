"""A classification as a DICOM Comprehensive SR: TID 1500 Measurement Report.

The report's observer is the model (a device observer: its UID, name, manufacturer and
model name). One measurement group (TID 1501) per reported class: binary models report the
positive class, multi-class, ordinal and multi-label models every class. Each group has

- finding type: the class, coded in the private scheme ``99MEDLENS`` (the class name);
- a qualitative evaluation: the class -> SNOMED CT *Present* / *Absent* (the decision);
- measurements: *Probability* (DCM 122157, unit ``1``) and, where the model decides by a
  threshold, *Threshold Value* (DCM 122411);
- the algorithm identification (the model) and the source images as references.

Patient and Study modules come from the source series, Series/SOP Instance UIDs are new,
and the source instances are listed as evidence (Current Requested Procedure Evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medlens.hospital.identity import ModelIdentity, copy_source_modules, sort_slices

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["CODING_SCHEME", "SR_SERIES_NUMBER", "classification_sr", "reported_classes"]

CODING_SCHEME = "99MEDLENS"
SR_SERIES_NUMBER = 901


def reported_classes(task: str, classes: Sequence[str], label: str) -> list[tuple[int, bool]]:
    """``(class index, decided present)`` of the classes a report lists (module docstring)."""
    chosen = set(label.split("|")) if label else set()
    indices = [1] if task == "binary" else range(len(classes))
    return [(i, classes[i] in chosen) for i in indices]


def class_concept(name: str) -> Any:
    """A class as a coded concept of the private scheme ``99MEDLENS``."""
    from highdicom.sr import CodedConcept

    return CodedConcept(value=name[:64], scheme_designator=CODING_SCHEME, meaning=name[:64])


def classification_sr(
    prediction: Any,
    sources: Sequence[Dataset],
    identity: ModelIdentity,
    *,
    task: str,
    classes: Sequence[str],
) -> Dataset:
    """The SR of one classification ``prediction`` (a :class:`~medlens.inference.Prediction`)
    of the series ``sources``; validated by highdicom as it is built."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sources = sort_slices(sources, "SR")
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=identity.device_uid,
        name=identity.name[:64],
        manufacturer_name="medlens",
        model_name=identity.model_name,
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.cid270.Device, observer_identifying_attributes=device
        )
    )
    thresholds = _thresholds(prediction.threshold, task, len(classes))
    groups = [
        _group(classes[i], present, prediction.probabilities[classes[i]], thresholds[i],
               identity, sources)
        for i, present in reported_classes(task, classes, prediction.label)
    ]  # fmt: skip
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=groups,
    )  # no image library (optional; 0.1 s per image in highdicom): the evidence lists them
    sr = hd.sr.ComprehensiveSR(
        evidence=list(sources),
        content=report[0],
        series_instance_uid=hd.UID(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="medlens",
        is_complete=True,
        contributing_equipment=identity.contributing_equipment("AI classification"),
    )
    copy_source_modules(sr, sources[0], frame_of_reference=False)
    sr.CodingSchemeIdentificationSequence = [_private_scheme()]
    identity.stamp(sr, f"AI result: {identity.name} classification")
    return sr


def _private_scheme() -> Any:
    """The Coding Scheme Identification item that declares ``99MEDLENS``."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodingSchemeDesignator = CODING_SCHEME
    item.CodingSchemeName = "medlens model class names"
    item.CodingSchemeResponsibleOrganization = "medlens"
    return item


def _thresholds(threshold: Any, task: str, n: int) -> list[float | None]:
    if task == "binary":
        return [None, 0.5 if threshold is None else float(threshold)]
    if task == "multilabel":
        return [float(t) for t in (threshold or [0.5] * n)]
    return [None] * n  # multi-class and ordinal decide by argmax / grade rule


def _group(
    name: str,
    present: bool,
    probability: float,
    threshold: float | None,
    identity: ModelIdentity,
    sources: Sequence[Dataset],
) -> Any:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = hd.sr.AlgorithmIdentification(
        name=identity.model_name, version=identity.version, manufacturer="medlens"
    )
    unit = hd.sr.CodedConcept("1", "UCUM", "no units")
    measurements = [
        hd.sr.Measurement(
            name=codes.DCM.Probability, value=float(probability), unit=unit, algorithm_id=algorithm
        )
    ]
    if threshold is not None:
        measurements.append(
            hd.sr.Measurement(
                name=codes.DCM.ThresholdValue, value=threshold, unit=unit, algorithm_id=algorithm
            )
        )
    concept = class_concept(name)
    evaluation = hd.sr.QualitativeEvaluation(
        name=concept, value=codes.SCT.Present if present else codes.SCT.Absent
    )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"medlens {name}"),
        finding_type=concept,
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=[evaluation],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(s) for s in sources],
    )
