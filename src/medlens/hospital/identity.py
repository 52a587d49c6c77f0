"""Who made an AI result: the model's identity as DICOM equipment and algorithm attributes.

Every result object (SR, SEG, SC) carries Manufacturer ``medlens``, Manufacturer's Model Name
(the run's name and architecture), Software Versions (medlens and the weights' SHA-256
prefix) and a Contributing Equipment item (purpose: processing equipment) saying the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medlens.errors import InvalidImageError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from medlens.card import ModelCard

__all__ = ["MANUFACTURER", "ModelIdentity", "copy_source_modules", "sort_slices"]

MANUFACTURER = "medlens"


@dataclass(frozen=True)
class ModelIdentity:
    """A model as results name it: ``name`` (the run), ``version`` (weights' SHA-256
    prefix), ``architecture`` and the medlens ``software`` version."""

    name: str
    version: str
    architecture: str
    software: str

    @classmethod
    def from_card(cls, card: ModelCard, run_dir: str | Path) -> ModelIdentity:
        from medlens import __version__

        return cls(Path(run_dir).resolve().name, card.sha256[:12], card.architecture, __version__)

    @property
    def model_name(self) -> str:
        """Manufacturer's Model Name (LO, 64 characters)."""
        return f"{self.name} ({self.architecture})"[:64]

    @property
    def software_versions(self) -> list[str]:
        return [f"medlens {self.software}", f"weights {self.version}"]

    @property
    def device_uid(self) -> str:
        """A UID for this model (the same for the same run and weights)."""
        from pydicom.uid import generate_uid

        return str(generate_uid(entropy_srcs=["medlens", self.name, self.version]))

    def algorithm(self) -> Any:
        """highdicom's Algorithm Identification Sequence (family: artificial intelligence)."""
        import highdicom as hd
        from pydicom.sr.codedict import codes

        return hd.AlgorithmIdentificationSequence(
            name=self.model_name,
            version=self.version,
            family=codes.cid7162.ArtificialIntelligence,
            source=MANUFACTURER,
        )

    def contributing_equipment(self, description: str) -> list[Any]:
        """One Contributing Equipment item: this model as processing equipment."""
        import highdicom as hd
        from pydicom.sr.codedict import codes

        return [
            hd.ContributingEquipment(
                manufacturer=MANUFACTURER,
                purpose_of_reference=codes.DCM.ProcessingEquipment,
                manufacturer_model_name=self.model_name,
                software_versions=self.software_versions,
                device_serial_number=self.version,
                contribution_description=description[:64],
            )
        ]

    def stamp(self, ds: Dataset, description: str) -> None:
        """Set the General Equipment attributes and a Series Description on ``ds``."""
        ds.Manufacturer = MANUFACTURER
        ds.ManufacturerModelName = self.model_name
        ds.SoftwareVersions = self.software_versions
        ds.SeriesDescription = description[:64]


#: Patient and General Study attributes copied from the source (those it has).
PATIENT_STUDY = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
    "PatientAge", "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID",
    "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
)  # fmt: skip


def copy_source_modules(ds: Dataset, source: Dataset, *, frame_of_reference: bool = True) -> None:
    """Copy the Patient and Study modules (and the Frame of Reference UID) from ``source``."""
    for keyword in PATIENT_STUDY:
        if keyword in source:
            setattr(ds, keyword, source[keyword].value)
    if frame_of_reference and "FrameOfReferenceUID" in source:
        ds.FrameOfReferenceUID = source.FrameOfReferenceUID


def sort_slices(datasets: Sequence[Dataset], where: str = "series") -> list[Dataset]:
    """One series' datasets sorted along the slice normal, as ``read_series`` orders them."""
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if not datasets or len(series) != 1:
        raise InvalidImageError(f"{where}: needs the datasets of exactly one DICOM series")
    for ds in datasets:  # some exporters leave SOPClassUID empty; the file meta has it
        if not ds.get("SOPClassUID") and "MediaStorageSOPClassUID" in ds.get("file_meta", {}):
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    if len(datasets) == 1 or "ImageOrientationPatient" not in datasets[0]:
        return list(datasets)
    orientation = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    return sorted(datasets, key=lambda ds: float(np.dot(ds.ImagePositionPatient, normal)))
