"""Image/mask folder pairs: ``root/images/<name>`` with ``root/masks/<name>`` (or ``labels/``).

A mask has the same file name as its image (any extension medlens reads; ``case.png`` pairs
with ``case.png`` or ``case.nii.gz``). Each pair is its own patient unless the names follow the
folder source's patient pattern.
"""

from __future__ import annotations

from pathlib import Path

from medlens.data.manifest import Manifest, Record
from medlens.errors import DatasetError

__all__ = ["MASK_FOLDERS", "from_mask_folders", "is_mask_folder_layout"]

MASK_FOLDERS = ("masks", "labels")


def is_mask_folder_layout(root: str | Path) -> bool:
    """True for a folder holding ``images/`` and ``masks/`` (or ``labels/``)."""
    root = Path(root)
    return (root / "images").is_dir() and any((root / m).is_dir() for m in MASK_FOLDERS)


def from_mask_folders(root: str | Path) -> Manifest:
    """The manifest of every image in ``root/images`` with its mask (error if one is missing)."""
    from medlens.data.sources import image_stem, is_image_file, patient_id_from_name

    root = Path(root)
    masks_dir = next((root / m for m in MASK_FOLDERS if (root / m).is_dir()), None)
    if not (root / "images").is_dir() or masks_dir is None:
        raise DatasetError(f"{root}: needs images/ and masks/ (or labels/) folders")
    masks = {image_stem(p.name): p for p in sorted(masks_dir.iterdir()) if is_image_file(p)}
    records = []
    for image in sorted((root / "images").iterdir()):
        if not is_image_file(image):
            continue
        mask = masks.get(image_stem(image.name))
        if mask is None:
            raise DatasetError(f"{image}: no mask with the same name in {masks_dir.name}/")
        patient = patient_id_from_name(image.name)
        records.append(Record(str(image.resolve()), "", patient, "", str(mask.resolve())))
    if not records:
        raise DatasetError(f"{root / 'images'}: no images found")
    return Manifest(tuple(records))
