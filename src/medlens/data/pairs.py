"""Image/label-map pair sources for segmentation, as :class:`~medlens.data.manifest.Manifest`.

* :func:`from_decathlon`: the Medical Segmentation Decathlon layout, ``imagesTr/<case>[_0000]``
  with ``labelsTr/<case>`` (unsplit rows), and ``imagesTs/`` with ``labelsTs/`` when the held-out
  labels are there (split ``test``); a folder holding only the ``Ts`` pair is a test set.
  Unlabelled ``imagesTs/`` are left out (nothing to train or score on), with a logged warning.
* :func:`from_mask_folders`: ``root/images/<name>`` with ``root/masks/<name>`` (or ``labels/``);
  a mask has its image's name with any extension medlens reads.

Patient IDs: the case name (Decathlon), or the patient part of the file name by the same
regex as class folders (``--patient-regex``), so that e.g. both eyes of one patient stay in
one split.

Pairing refuses what it cannot pair for sure: a label file without an image, two files of one
case (``a.png`` + ``a.nii.gz``), several channel files of one Decathlon case (``_0000``,
``_0001``: multi-channel input is not supported), ``masks/`` and ``labels/`` side by side.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from medlens.data.manifest import Manifest, Record
from medlens.data.sources import (
    DEFAULT_PATIENT_REGEX,
    NIFTI_SUFFIXES,
    compile_patient_regex,
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

logger = logging.getLogger(__name__)

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
    if (root / "imagesTs").is_dir() and not (root / "labelsTs").is_dir():
        count = sum(1 for p in (root / "imagesTs").iterdir() if is_image_file(p))
        logger.warning("%s: %d image(s) without labelsTs/ left out", root / "imagesTs", count)
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
    records, cases = [], {}
    for image in sorted(images.iterdir()):
        if image.name.startswith(".") or not image.name.endswith(NIFTI_SUFFIXES):
            continue
        case = re.sub(r"_\d{4}$", "", image_stem(image.name))
        if case in cases:
            raise DatasetError(
                f"{image}: case {case} already has image {cases[case]} "
                "(multi-channel cases are not supported)"
            )
        cases[case] = image.name
        label = labels / image.name.replace(image_stem(image.name), case, 1)
        if not label.is_file():
            raise DatasetError(f"{image}: no matching label file {label.name} in {labels.name}/")
        records.append(Record(str(image.resolve()), "", case, split, str(label.resolve())))
    _refuse_orphans(labels, {image_stem(Path(r.label_path).name) for r in records}, images)
    return records


def _refuse_orphans(labels: Path, paired: set[str], images: Path) -> None:
    """A label file no image points to is a typo or a lost image: say so, do not drop it."""
    extra = sorted(
        p.name for p in labels.iterdir() if is_image_file(p) and image_stem(p.name) not in paired
    )
    if extra:
        raise DatasetError(
            f"{labels}: {len(extra)} label file(s) have no image in {images.name}/, e.g. {extra[0]}"
        )


def _files_by_case(folder: Path) -> dict[str, Path]:
    """``{stem: file}`` for the image files in ``folder``; two files of one stem are refused."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not is_image_file(path):
            continue
        stem = image_stem(path.name)
        if stem in found:
            raise DatasetError(f"{folder}: {found[stem].name} and {path.name} are the same case")
        found[stem] = path
    return found


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
    found = [root / m for m in MASK_FOLDERS if (root / m).is_dir()]
    if not (root / "images").is_dir() or not found:
        raise DatasetError(f"{root}: needs images/ and masks/ (or labels/) folders")
    if len(found) > 1:
        raise DatasetError(f"{root}: holds both masks/ and labels/; keep one")
    masks_dir = found[0]
    regex = compile_patient_regex(patient_regex)
    masks = _files_by_case(masks_dir)
    records = []
    for image in _files_by_case(root / "images").values():
        mask = masks.get(image_stem(image.name))
        if mask is None:
            raise DatasetError(f"{image}: no mask with the same name in {masks_dir.name}/")
        patient = patient_id_from_name(image.name, regex)
        records.append(Record(str(image.resolve()), "", patient, "", str(mask.resolve())))
    if not records:
        raise DatasetError(f"{root / 'images'}: no images found")
    _refuse_orphans(masks_dir, {image_stem(Path(r.path).name) for r in records}, root / "images")
    return Manifest(tuple(records))
