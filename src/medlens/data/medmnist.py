"""MedMNIST ``.npz`` files: a manifest with the official splits, and the official download.

A MedMNIST file holds ``{train,val,test}_images`` (N x H x W [x 3] for the 2D sets,
N x D x H x W for the 3D ones, uint8) and
``{train,val,test}_labels`` (N x 1 class index, or N x K for multi-label sets). Each image is
addressed in the manifest as ``<file>.npz#<split>_images/<index>``.
"""

from __future__ import annotations

import functools
import hashlib
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from medlens.data.manifest import Manifest, Record
from medlens.errors import DatasetError

__all__ = [
    "MEDMNIST_RECORD_URL",
    "MEDMNIST_SETS",
    "download_medmnist",
    "from_medmnist",
    "load_npz_item",
]

#: The official MedMNIST v2/v3 Zenodo record.
MEDMNIST_RECORD_URL = "https://zenodo.org/records/10519652/files/{name}.npz?download=1"

#: Known files: MD5 of the official release and class names in label-index order.
MEDMNIST_SETS: dict[str, dict[str, object]] = {
    "pneumoniamnist": {
        "md5": "28209eda62fecd6e6a2d98b1501bb15f",
        "classes": ("normal", "pneumonia"),
    },
}

# The six MedMNIST 3D sets (v3 release, Zenodo record 10519652): (MD5 at 28 px, MD5 at 64 px,
# class names). From ``INFO`` in medmnist/info.py of medmnist 3.0.2 (the ``MD5``/``MD5_64``
# fields); the two VesselMNIST3D values match the real files in shared/datasets/medmnist3d.
_MEDMNIST_3D = {
    "organmnist3d": (
        "a0c5a1ff56af4f155c46d46fbb45a2fe",
        "58a2205adf14a9d0a189cb06dc78bf10",
        (
            "liver",
            "kidney-right",
            "kidney-left",
            "femur-right",
            "femur-left",
            "bladder",
            "heart",
            "lung-right",
            "lung-left",
            "spleen",
            "pancreas",
        ),
    ),
    "nodulemnist3d": (
        "8755a7e9e05a4d9ce80a24c3e7a256f3",
        "c47c5b7d457bf6332200d2ea6d64ecd8",
        ("benign", "malignant"),
    ),
    "adrenalmnist3d": (
        "bbd3c5a5576322bc4cdfea780653b1ce",
        "17721accfe9fb005146a47d33bc54b2f",
        ("normal", "hyperplasia"),
    ),
    "fracturemnist3d": (
        "6aa7b0143a6b42da40027a9dda61302f",
        "f01d7e6316aedf4210da0da5b7437b42",
        ("buckle rib fracture", "nondisplaced rib fracture", "displaced rib fracture"),
    ),
    "vesselmnist3d": (
        "b41fd4f7e7e2feedddb201585ecafa1b",
        "6bb274a8846e1097066dcd64e2c4520f",
        ("vessel", "aneurysm"),
    ),
    "synapsemnist3d": (
        "1235b78a3cd6280881dd7850a78eadb6",
        "43bd14ebf3af9d3dd072446fedc14d5e",
        ("inhibitory synapse", "excitatory synapse"),
    ),
}
for _name, (_md5, _md5_64, _classes) in _MEDMNIST_3D.items():
    MEDMNIST_SETS[_name] = {"md5": _md5, "classes": _classes}
    MEDMNIST_SETS[f"{_name}_64"] = {"md5": _md5_64, "classes": _classes}

_ITEM = re.compile(r"^(?P<file>.+\.npz)#(?P<key>\w+)/(?P<index>\d+)$")
_SPLITS = ("train", "val", "test")


def from_medmnist(path: str | Path, classes: Sequence[str] = ()) -> Manifest:
    """A manifest over every image of a MedMNIST file, with its official splits.

    Class names default to the known ones for the file's name, else ``"0"``, ``"1"``, ...
    Each image is its own patient (MedMNIST carries no patient IDs).
    """
    path = Path(path).resolve()
    arrays = _open_npz(str(path))
    missing = [
        f"{s}_{k}" for s in _SPLITS for k in ("images", "labels") if f"{s}_{k}" not in arrays
    ]
    if missing:
        raise DatasetError(f"{path}: not a MedMNIST file (missing {', '.join(missing)})")
    labels = {split: np.asarray(arrays[f"{split}_labels"]) for split in _SPLITS}
    width = labels["train"].reshape(len(labels["train"]), -1).shape[1]
    names = tuple(classes) or _default_classes(path, labels, width)
    records = []
    for split in _SPLITS:
        rows = labels[split].reshape(len(labels[split]), -1)
        for index, row in enumerate(rows):
            label = _label_names(row, names, multilabel=width > 1, where=path)
            item = f"{path}#{split}_images/{index}"
            records.append(Record(item, label, f"{split}/{index}", split))
    return Manifest(tuple(records), names)


def _default_classes(path: Path, labels: dict[str, np.ndarray], width: int) -> tuple[str, ...]:
    known = MEDMNIST_SETS.get(re.sub(r"_\d+$", "", path.stem), {}).get("classes")
    if known:
        return tuple(known)  # type: ignore[arg-type]
    count = width if width > 1 else int(max(int(v.max(initial=0)) for v in labels.values())) + 1
    return tuple(str(i) for i in range(count))


def _label_names(row: np.ndarray, names: Sequence[str], *, multilabel: bool, where: Path) -> str:
    indices = np.flatnonzero(row) if multilabel else [int(row[0])]
    try:
        return "|".join(names[int(i)] for i in indices)
    except IndexError:
        raise DatasetError(f"{where}: label {row.tolist()} has no class name in {names}") from None


@functools.lru_cache(maxsize=4)
def _open_npz(path: str) -> dict[str, np.ndarray]:
    """All arrays of an npz, loaded once per process (npz members cannot be memory-mapped)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise DatasetError(f"MedMNIST file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc.__class__.__name__})") from None


def is_npz_item(path: str) -> bool:
    return _ITEM.match(path) is not None


def load_npz_item(path: str) -> np.ndarray:
    """The array addressed by ``file.npz#key/index``."""
    match = _ITEM.match(path)
    if match is None:
        raise DatasetError(f"not an npz item address (file.npz#key/index): {path}")
    arrays = _open_npz(match["file"])
    key, index = match["key"], int(match["index"])
    if key not in arrays or index >= len(arrays[key]):
        raise DatasetError(f"{match['file']}: no item {key}/{index}")
    return arrays[key][index]


Opener = Callable[[str], IO[bytes]]


def download_medmnist(
    name: str,
    root: str | Path,
    *,
    md5: str | None = None,
    url: str | None = None,
    opener: Opener | None = None,
) -> Path:
    """Download ``<name>.npz`` from the official MedMNIST record into ``root``; return its path.

    The file is checked against its MD5 (the known one for ``name``, or ``md5``) and moved
    into place only if it matches. An existing file with the right MD5 is not fetched again.
    Offline, or on a mismatch, a :class:`DatasetError` says what to do.
    """
    expected = md5 or MEDMNIST_SETS.get(name, {}).get("md5")
    if expected is None:
        raise DatasetError(
            f"no known MD5 for MedMNIST file {name!r} (known: {sorted(MEDMNIST_SETS)}); "
            "pass md5=... from the MedMNIST INFO table"
        )
    target = Path(root) / f"{name}.npz"
    if target.is_file() and _md5(target) == expected:
        return target
    url = url or MEDMNIST_RECORD_URL.format(name=name)
    from medlens.io.base import atomic_path

    with atomic_path(target) as tmp:
        digest = _fetch(url, tmp, opener or _urlopen)
        if digest != expected:
            raise DatasetError(
                f"{url}: MD5 {digest} does not match the expected {expected}; "
                f"the download is corrupt or not the official file ({target} left untouched)"
            )
    return target


def _urlopen(url: str) -> IO[bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": "medlens"})
    return urllib.request.urlopen(request, timeout=60)  # noqa: S310 (https or file URL)


def _fetch(url: str, dest: Path, opener: Opener) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with opener(url) as response, open(dest, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DatasetError(
            f"could not download {url} ({exc.__class__.__name__}: {exc}); are you offline? "
            "Fetch the file by hand and pass its path instead"
        ) from None
    return digest.hexdigest()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
