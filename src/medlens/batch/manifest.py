"""Read a batch manifest: a CSV, text or Parquet list of image files or folders.

Each item is a string. A plain path is a file (read with :func:`medlens.io.read_image`) or a
folder, expanded to the images under it (sorted) — except a folder made only of DICOM
files, which stays one item (one series). Items with a URI scheme (``scheme://...``) are
resolved by a reader registered in :data:`ITEM_READERS`: ``dicomweb://`` and
``dicomwebs://`` (a study or series on a DICOMweb server, :mod:`medlens.hospital.dicomweb`)
are built in; other schemes are refused with a clear error.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from medlens.errors import ConfigError, DatasetError

__all__ = ["ITEM_READERS", "read_manifest"]

ITEM_READERS: dict[str, Callable[[str], object]] = {}
"""URI scheme -> a function that reads one item into a :class:`medlens.io.Image`."""


def _read_dicomweb(item: str) -> object:
    from medlens.hospital.dicomweb import read_dicomweb  # imported when such an item is read

    return read_dicomweb(item)


ITEM_READERS.update({"dicomweb": _read_dicomweb, "dicomwebs": _read_dicomweb})

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_COLUMNS = ("path", "item", "file", "study_uid")


def read_manifest(path: str | Path) -> list[str]:
    """The manifest's items in order, folders expanded (see the module docstring).

    ``.csv``: the column ``path`` (or ``item``, ``file``, ``study_uid``), else the first
    column; ``.parquet``: the same columns; anything else: one item per non-empty line
    (``#`` starts a comment). Relative paths are taken from the manifest's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest not found: {path}")
    raw = list(_raw_items(path))
    items = [expanded for item in raw for expanded in _expand(item, path.parent)]
    if not items:
        raise DatasetError(f"manifest {path} lists no images")
    return items


def scheme_of(item: str) -> str | None:
    """The URI scheme of an item (``"dicomweb"``), or ``None`` for a plain path."""
    match = _SCHEME.match(item)
    return match.group(1).lower() if match else None


def _raw_items(path: Path) -> Iterator[str]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        yield from (str(v) for v in table.column(_column(table.column_names, path)).to_pylist())
    elif suffix == ".csv":
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            column = _column(reader.fieldnames or [], path)
            yield from (row[column].strip() for row in reader if row[column].strip())
    else:
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                yield line


def _column(names: list[str], path: Path) -> str:
    if not names:
        raise DatasetError(f"manifest {path} has no columns")
    return next((c for c in _COLUMNS if c in names), names[0])


def _expand(item: str, base: Path) -> Iterator[str]:
    scheme = scheme_of(item)
    if scheme is not None:
        if scheme not in ITEM_READERS:
            raise ConfigError(
                f"manifest items of type {scheme}:// are not supported (known: "
                f"{', '.join(sorted(ITEM_READERS)) or 'plain paths only'})"
            )
        yield item
        return
    path = Path(item) if Path(item).is_absolute() else base / item
    if path.is_dir():
        from medlens.data.sources import is_dicom_file, is_image_file

        files = [p for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith(".")]
        if files and all(is_dicom_file(p) for p in files):
            yield str(path)
        else:
            yield from (str(p) for p in files if is_image_file(p))
    else:
        yield str(path)  # a missing file becomes that item's error, not the whole run's
