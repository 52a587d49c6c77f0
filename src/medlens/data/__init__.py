"""Datasets: sources -> manifest (patient-grouped splits) -> fingerprint.

Light to import: no torch. The tensors a task trains on are built from a manifest by the
task itself (:mod:`medlens.training.data` for classification, :mod:`medlens.segmentation.data`
for segmentation patches).

Example::

    from medlens.data import prepare_dataset, load_manifest
    manifest, fingerprint = prepare_dataset("chest_xray/", "data/chest", val_fraction=0.1)
"""

from __future__ import annotations

from medlens.data.build import build_manifest, open_source, prepare_dataset
from medlens.data.fingerprint import (
    compute_fingerprint,
    infer_channels,
    load_fingerprint,
    save_fingerprint,
)
from medlens.data.manifest import Manifest, Record, load_manifest
from medlens.data.medmnist import MEDMNIST_SETS, download_medmnist, from_medmnist
from medlens.data.pairs import from_decathlon, from_mask_folders
from medlens.data.reading import load_record_image
from medlens.data.sources import (
    DEFAULT_PATIENT_REGEX,
    from_csv,
    from_folder,
    hash_patient_id,
    patient_id_from_name,
)
from medlens.data.splits import assign_splits, patients_in_several_splits

__all__ = [
    "DEFAULT_PATIENT_REGEX",
    "MEDMNIST_SETS",
    "Manifest",
    "Record",
    "assign_splits",
    "build_manifest",
    "compute_fingerprint",
    "download_medmnist",
    "from_csv",
    "from_decathlon",
    "from_folder",
    "from_mask_folders",
    "from_medmnist",
    "hash_patient_id",
    "infer_channels",
    "load_fingerprint",
    "load_manifest",
    "load_record_image",
    "open_source",
    "patient_id_from_name",
    "patients_in_several_splits",
    "prepare_dataset",
    "save_fingerprint",
]
