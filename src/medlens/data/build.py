"""From a source to ``manifest.csv`` + ``fingerprint.json``: what ``medlens data`` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medlens.data.fingerprint import compute_fingerprint, save_fingerprint
from medlens.data.manifest import Manifest
from medlens.data.medmnist import download_medmnist, from_medmnist
from medlens.data.pairs import (
    from_decathlon,
    from_mask_folders,
    is_decathlon_layout,
    is_mask_folder_layout,
)
from medlens.data.sources import DEFAULT_PATIENT_REGEX, from_csv, from_folder
from medlens.data.splits import Overlap, assign_splits
from medlens.errors import DatasetError

__all__ = ["build_manifest", "open_source", "prepare_dataset"]

MEDMNIST_PREFIX = "medmnist:"
#: Folders that are one half of a segmentation layout, not a dataset of their own.
PAIR_HALVES = ("imagesTr", "labelsTr", "imagesTs", "labelsTs", "images", "masks", "labels")


def open_source(
    source: str | Path,
    *,
    patient_regex: str = DEFAULT_PATIENT_REGEX,
    id_salt: str = "medlens",
    download_root: str | Path | None = None,
) -> Manifest:
    """The unsplit manifest of a source, recognised by its shape.

    ``medmnist:<name>`` (downloaded into ``download_root``), a MedMNIST ``.npz``, a ``.csv``
    manifest, a Decathlon folder (``imagesTr/`` + ``labelsTr/``, and/or ``imagesTs/`` +
    ``labelsTs/``), ``images/`` + ``masks/``, or a folder per class. ``patient_regex`` finds
    the patient in file names of class folders and of ``images/``.
    """
    text = str(source)
    if text.startswith(MEDMNIST_PREFIX):
        if download_root is None:
            raise DatasetError(f"{text}: say where to download it (download_root / -o)")
        return from_medmnist(download_medmnist(text[len(MEDMNIST_PREFIX) :], download_root))
    path = Path(source)
    if not path.exists():
        raise DatasetError(f"dataset source not found: {path}")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return from_medmnist(path)
        if suffix == ".csv":
            return from_csv(path)
        raise DatasetError(f"{path}: a file source must be a MedMNIST .npz or a .csv manifest")
    if (path / "imagesTr").is_dir() or is_decathlon_layout(path):
        return from_decathlon(path)
    if is_mask_folder_layout(path):  # images/ + masks/: segmentation pairs
        return from_mask_folders(path, patient_regex=patient_regex)
    parent = path.resolve().parent
    if path.name in PAIR_HALVES and (is_decathlon_layout(parent) or is_mask_folder_layout(parent)):
        raise DatasetError(f"{path} is half of an image/label pair: pass {parent} instead")
    return from_folder(path, patient_regex=patient_regex, id_salt=id_salt)


def build_manifest(
    source: str | Path,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
    group_by_patient: bool = True,
    overlap: Overlap = "exclude",
    **source_options: Any,
) -> Manifest:
    """Open ``source`` and give every row a split (see :func:`assign_splits`)."""
    return assign_splits(
        open_source(source, **source_options),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        group_by_patient=group_by_patient,
        overlap=overlap,
    )


def prepare_dataset(
    source: str | Path,
    out_dir: str | Path,
    *,
    sample_size: int = 200,
    **options: Any,
) -> tuple[Manifest, dict[str, Any]]:
    """Build the manifest and its fingerprint and write both into ``out_dir``."""
    out_dir = Path(out_dir)
    options.setdefault("download_root", out_dir)
    manifest = build_manifest(source, **options)
    manifest.write(out_dir / "manifest.csv")
    fingerprint = compute_fingerprint(
        manifest, sample_size=sample_size, seed=options.get("seed", 0)
    )
    fingerprint["source"] = {"kind": _kind(source), "options": _plain(options)}
    save_fingerprint(fingerprint, out_dir / "fingerprint.json")
    return manifest, fingerprint


def _kind(source: str | Path) -> str:
    text = str(source)
    if text.startswith(MEDMNIST_PREFIX) or text.lower().endswith(".npz"):
        return "medmnist"
    if text.lower().endswith(".csv"):
        return "csv"
    return "decathlon" if (Path(source) / "imagesTr").is_dir() else "folder"


def _plain(options: dict[str, Any]) -> dict[str, Any]:
    """Options as JSON values, without local paths or the ID salt."""
    hidden = {"download_root", "id_salt"}
    return {k: v for k, v in sorted(options.items()) if k not in hidden}
