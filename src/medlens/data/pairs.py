"""Image/label-map pair sources for segmentation, as :class:`~medlens.data.manifest.Manifest`.

* :func:`from_decathlon`: the Medical Segmentation Decathlon layout, ``imagesTr/<case>[_0000]``
  with ``labelsTr/<case>`` (unsplit rows), and ``imagesTs/`` with ``labelsTs/`` when the held-out
  labels are there (split ``test``); a folder holding only the ``Ts`` pair is a test set.
  Unlabelled ``imagesTs/`` are left out (nothing to train or score on).
* :func:`from_mask_folders`: ``root/images/<name>`` with ``root/masks/<name>`` (or ``labels/``);
  a mask has its image's name with any extension medlens reads.

Patient IDs: the case name (Decathlon), or the patient part of the file name by the same
regex as class folders (``--patient-regex``), so that e.g. both eyes of one patient stay in
one split.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from medlens.data.manifest import Manifest, Record
from medlens.data.sources import (
    DEFAULT_PATIENT_REGEX,
    NIFTI_SUFFIXES,
    image_stem,
    is_image_file,
    patient_id_from_name,
)
from medlens.errors import DatasetError

__all__ = [
    "MASK_FOLDERS",
    "from_decathlon",
    "from_mask_folders",
    "is_decathlon_layout",
    "is_mask_folder_layout",
]

MASK_FOLDERS = ("masks", "labels")
_DECATHLON = (("imagesTr", "labelsTr", ""), ("imagesTs", "labelsTs", "test"))


def is_decathlon_layout(root: str | Path) -> bool:
    """True for a folder holding ``imagesTr/`` + ``labelsTr/`` or ``imagesTs/`` + ``labelsTs/``."""
    root = Path(root)
    return any((root / i).is_dir() and (root / lab).is_dir() for i, lab, _ in _DECATHLON)


def is_mask_folder_layout(root: str | Path) -> bool:
    """True for a folder holding ``images/`` and ``masks/`` (or ``labels/``)."""
    root = Path(root)
    return (root / "images").is_dir() and any((root / m).is_dir() for m in MASK_FOLDERS)


def from_decathlon(root: str | Path) -> Manifest:
    """Training pairs (unsplit) and labelled held-out pairs (``test``) of a Decathlon folder.

    Class names come from ``dataset.json`` ``labels`` when present (index order).
    """
    root = Path(root)
    if (root / "imagesTr").is_dir() and not (root / "labelsTr").is_dir():
        raise DatasetError(f"{root}: a Decathlon dataset needs imagesTr/ and labelsTr/ folders")
    records = [
        record
        for images, labels, split in _DECATHLON
        if (root / images).is_dir() and (root / labels).is_dir()
        for record in _decathlon_pairs(root / images, root / labels, split)
    ]
    if not records:
        raise DatasetError(f"{root}: no NIfTI image/label pairs in imagesTr/ or imagesTs/")
    return Manifest(tuple(records), _decathlon_classes(root / "dataset.json"))


def _decathlon_pairs(images: Path, labels: Path, split: str) -> list[Record]:
    records = []
    for image in sorted(images.iterdir()):
        if image.name.startswith(".") or not image.name.endswith(NIFTI_SUFFIXES):
            continue
        case = re.sub(r"_\d{4}$", "", image_stem(image.name))
        label = labels / image.name.replace(image_stem(image.name), case, 1)
        if not label.is_file():
            raise DatasetError(f"{image}: no matching label file {label.name} in {labels.name}/")
        records.append(Record(str(image.resolve()), "", case, split, str(label.resolve())))
    return records


def _decathlon_classes(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ()
    try:
        labels = json.loads(path.read_text(encoding="utf-8")).get("labels", {})
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        raise DatasetError(f"{path}: not a valid dataset.json") from None
    if labels and all(isinstance(v, int) for v in labels.values()):  # nnU-Net v2: name -> id
        labels = {str(v): k for k, v in labels.items()}
    try:
        return tuple(str(labels[k]) for k in sorted(labels, key=int))
    except (ValueError, TypeError):
        raise DatasetError(f"{path}: 'labels' must map integer ids to names") from None


def from_mask_folders(root: str | Path, *, patient_regex: str = DEFAULT_PATIENT_REGEX) -> Manifest:
    """Every image in ``root/images`` with its mask (error if one is missing)."""
    root = Path(root)
    masks_dir = next((root / m for m in MASK_FOLDERS if (root / m).is_dir()), None)
    if not (root / "images").is_dir() or masks_dir is None:
        raise DatasetError(f"{root}: needs images/ and masks/ (or labels/) folders")
    try:
        regex = re.compile(patient_regex)
    except re.error as exc:
        raise DatasetError(f"invalid patient regex {patient_regex!r}: {exc}") from None
    masks = {image_stem(p.name): p for p in sorted(masks_dir.iterdir()) if is_image_file(p)}
    records = []
    for image in sorted((root / "images").iterdir()):
        if not is_image_file(image):
            continue
        mask = masks.get(image_stem(image.name))
        if mask is None:
            raise DatasetError(f"{image}: no mask with the same name in {masks_dir.name}/")
        patient = patient_id_from_name(image.name, regex)
        records.append(Record(str(image.resolve()), "", patient, "", str(mask.resolve())))
    if not records:
        raise DatasetError(f"{root / 'images'}: no images found")
    return Manifest(tuple(records))
