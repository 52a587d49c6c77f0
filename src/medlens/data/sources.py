"""Dataset sources that produce a :class:`~medlens.data.manifest.Manifest`.

* :func:`from_folder`: ``root/<class>/*`` or ``root/<split>/<class>/*`` (Kermany layout);
* :func:`from_csv`: a CSV with ``path,label[,patient_id][,split][,label_path]``;
* :mod:`medlens.data.pairs`: image/label-map pairs (Decathlon, ``images/`` + ``masks/``);
* :func:`~medlens.data.medmnist.from_medmnist`: a MedMNIST ``.npz`` with its official splits.

Patient IDs group images for splitting. In folders they come from the file name (a regex)
or, for DICOM files, from PatientID, which is hashed (HMAC-SHA256) and never stored in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from medlens.data.manifest import Manifest, Record
from medlens.errors import DatasetError

__all__ = [
    "DEFAULT_PATIENT_REGEX",
    "compile_patient_regex",
    "find_images",
    "from_csv",
    "from_folder",
    "hash_patient_id",
    "patient_id_from_name",
]

#: Kermany names: ``person123_bacteria_456.jpeg`` -> ``person123``,
#: ``IM-0115-0001.jpeg`` -> ``IM-0115``, ``NORMAL2-IM-1427-0001.jpeg`` -> ``NORMAL2-IM-1427``.
DEFAULT_PATIENT_REGEX = r"^(?P<patient>person\d+|(?:NORMAL\d*-)?IM-\d+)"

NIFTI_SUFFIXES = (".nii", ".nii.gz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy", *NIFTI_SUFFIXES)
DICOM_SUFFIXES = (".dcm", ".dicom")
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "validation": "val"}
SPLIT_FOLDERS |= {"valid": "val", "test": "test", "testing": "test"}


def hash_patient_id(patient_id: str, salt: str = "medlens") -> str:
    """A keyed hash of a patient ID: stable for a salt, not reversible without it."""
    mac = hmac.new(salt.encode(), patient_id.encode("utf-8", "replace"), hashlib.sha256)
    return mac.hexdigest()[:16]


def patient_id_from_name(name: str, pattern: str | re.Pattern[str] = DEFAULT_PATIENT_REGEX) -> str:
    """The patient part of a file name (group ``patient``, else group 1, else the match).

    A name the pattern does not match is its own patient (its stem).
    """
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    match = regex.search(name)
    if match is None:
        return image_stem(name)
    if "patient" in regex.groupindex:
        return match.group("patient")
    return match.group(1) if regex.groups else match.group(0)


def compile_patient_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled, or a :class:`DatasetError` that names it."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise DatasetError(f"invalid patient regex {pattern!r}: {exc}") from None


def from_folder(
    root: str | Path,
    *,
    patient_regex: str = DEFAULT_PATIENT_REGEX,
    id_salt: str = "medlens",
) -> Manifest:
    """One sub-folder per class, optionally under ``train/``, ``val/``, ``test/`` folders."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    regex = compile_patient_regex(patient_regex)
    records = [
        Record(str(path.resolve()), label, _patient_of(path, regex, id_salt), split)
        for split, label, path in _walk_classes(root)
    ]
    if not records:
        raise DatasetError(f"{root}: no images found in class sub-folders")
    return Manifest(tuple(records))


def _walk_classes(root: Path) -> Iterator[tuple[str, str, Path]]:
    folders = _subfolders(root)
    split_folders = [f for f in folders if f.name.lower() in SPLIT_FOLDERS]
    if split_folders and len(split_folders) != len(folders):
        others = sorted(f.name for f in folders if f not in split_folders)
        raise DatasetError(f"{root}: mixes split folders with other folders {others}")
    layout = [(SPLIT_FOLDERS[f.name.lower()], f) for f in split_folders] or [("", root)]
    for split, base in layout:
        for class_folder in _subfolders(base):
            for path in sorted(class_folder.rglob("*")):
                if is_image_file(path):
                    yield split, class_folder.name, path


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_image_file(path: Path) -> bool:
    """A visible file medlens can read as an image, judged by name (or DICOM preamble)."""
    if path.name.startswith(".") or not path.is_file():
        return False
    return path.name.lower().endswith(IMAGE_SUFFIXES) or is_dicom_file(path)


def is_dicom_file(path: Path) -> bool:
    """A ``.dcm`` name, or the DICOM preamble (series files often have no extension)."""
    if path.name.lower().endswith(DICOM_SUFFIXES):
        return True
    with open(path, "rb") as handle:
        return handle.read(132)[128:] == b"DICM"


def _patient_of(path: Path, regex: re.Pattern[str], salt: str) -> str:
    if not path.name.lower().endswith(IMAGE_SUFFIXES):  # DICOM: PatientID, hashed
        patient = _dicom_patient_id(path)
        if patient:
            return hash_patient_id(patient, salt)
    return patient_id_from_name(path.name, regex)


def _dicom_patient_id(path: Path) -> str:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
    except (InvalidDicomError, OSError, ValueError):
        return ""
    return str(dataset.get("PatientID", "") or "").strip()


def from_csv(path: str | Path) -> Manifest:
    """A CSV of ``path,label`` plus optional ``patient_id``, ``split``, ``label_path``.

    Paths are relative to the CSV's folder (or absolute); ``label`` may hold several class
    names joined by ``|`` (multi-label). Rows without a patient ID are their own patient.
    A study-level CSV names the column ``study``: each entry is then a DICOM series folder,
    a NIfTI volume or a MedMNIST 3D item (``file.npz#train_images/3``).
    """
    manifest = Manifest.read(path)
    missing = [r.path for r in manifest if not Path(r.path.split("#", 1)[0]).exists()]
    if missing:
        raise DatasetError(f"{path}: {len(missing)} listed file(s) do not exist, e.g. {missing[0]}")
    return manifest


def image_stem(name: str) -> str:
    """A file name without its image suffix (``case_01.nii.gz`` -> ``case_01``)."""
    for suffix in (".nii.gz", *IMAGE_SUFFIXES, *DICOM_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def find_images(inputs: Sequence[str | Path], *, volumes: bool = False) -> Iterator[Path]:
    """Image files given directly or found under folders (sorted, hidden files skipped).

    With ``volumes`` (a 3D model), a folder whose visible files are all DICOM is one
    series, so it is yielded itself rather than slice by slice.
    """
    for item in map(Path, inputs):
        if volumes and is_series_folder(item):
            yield item
        elif item.is_dir():
            yield from (p for p in sorted(item.rglob("*")) if is_image_file(p))
        elif item.is_file():
            yield item
        else:
            raise DatasetError(f"input not found: {item}")


def is_series_folder(path: Path) -> bool:
    """A folder whose visible files are all DICOM (and that has at least one)."""
    if not path.is_dir():
        return False
    files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
    return bool(files) and all(is_dicom_file(p) for p in files)
