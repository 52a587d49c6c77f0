"""Datasets: sources -> manifest (patient-grouped splits) -> fingerprint -> torch Dataset.

Light to import: torch and the readers load only when :class:`ManifestDataset` is used.

Example::

    from medlens.data import prepare_dataset, load_manifest, ManifestDataset
    manifest, fingerprint = prepare_dataset("chest_xray/", "data/chest", val_fraction=0.1)
    train = ManifestDataset(load_manifest("data/chest"), Preprocessing(spatial_size=(224, 224)),
                            split="train", augmentation=Augmentation.preset("light"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from medlens.data.dataset import ManifestDataset

__all__ = [
    "DEFAULT_PATIENT_REGEX",
    "MEDMNIST_SETS",
    "Manifest",
    "ManifestDataset",
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


def __getattr__(name: str) -> Any:
    if name == "ManifestDataset":  # imports torch
        from medlens.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'medlens.data' has no attribute {name!r}")
