"""The dataset manifest: one row per image, written as ``manifest.csv``.

Columns: ``path,label,patient_id,split`` and ``label_path`` (segmentation pairs). Paths are
stored relative to the manifest's folder (so a dataset and its manifest move together);
multi-label rows join their class names with ``|``; a segmentation row has an empty label.
A MedMNIST image is addressed inside its file as ``file.npz#train_images/17``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from medlens.errors import DatasetError

__all__ = ["COLUMNS", "SPLITS", "Manifest", "Record", "Task", "load_manifest"]

COLUMNS = ("path", "label", "patient_id", "split", "label_path")
#: Split names a manifest uses; "excluded" keeps rows out of every split on purpose.
SPLITS = ("train", "val", "test", "excluded")
LABEL_SEPARATOR = "|"

Task = Literal["multiclass", "multilabel", "segmentation"]


@dataclass(frozen=True)
class Record:
    """One image of a dataset. ``path`` and ``label_path`` are absolute in memory."""

    path: str
    label: str = ""
    patient_id: str = ""
    split: str = ""
    label_path: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        """The class names of this row (several for multi-label rows)."""
        return tuple(name for name in self.label.split(LABEL_SEPARATOR) if name)


@dataclass(frozen=True)
class Manifest:
    """An ordered list of :class:`Record` plus the class names, in model output order."""

    records: tuple[Record, ...]
    classes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.classes:
            names = {name for record in self.records for name in record.labels}
            object.__setattr__(self, "classes", tuple(sorted(names)))
        unknown = {n for r in self.records for n in r.labels} - set(self.classes)
        if unknown:
            raise DatasetError(f"labels {sorted(unknown)} are not among classes {self.classes}")

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    @property
    def task(self) -> Task:
        if any(record.label_path for record in self.records):
            return "segmentation"
        if any(len(record.labels) != 1 for record in self.records):
            return "multilabel"
        return "multiclass"

    def split(self, name: str) -> Manifest:
        """The rows of one split (same classes, so targets keep their indices)."""
        return Manifest(tuple(r for r in self.records if r.split == name), self.classes)

    def with_records(self, records: Iterable[Record]) -> Manifest:
        return Manifest(tuple(records), self.classes)

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of images per split and class (``{split: {class: n}}``)."""
        out: dict[str, Counter[str]] = {}
        for record in self.records:
            counter = out.setdefault(record.split or "unsplit", Counter())
            counter.update(record.labels or ("(label map)" if record.label_path else "(none)",))
        return {split: dict(sorted(c.items())) for split, c in sorted(out.items())}

    def to_csv(self, root: Path) -> str:
        """The CSV text, with paths relative to ``root`` where possible."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in self.records:
            rel_label = _relative(r.label_path, root) if r.label_path else ""
            writer.writerow([_relative(r.path, root), r.label, r.patient_id, r.split, rel_label])
        return buffer.getvalue()

    def sha256(self) -> str:
        """A hash of classes and rows, with paths relative to their common folder.

        It does not depend on where the dataset lies on a machine, nor on the row order.
        """
        paths = [r.path for r in self.records] + [
            r.label_path for r in self.records if r.label_path
        ]
        common = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
        rows = sorted(
            (
                _relative(r.path, common),
                r.label,
                r.patient_id,
                r.split,
                _relative(r.label_path, common) if r.label_path else "",
            )
            for r in self.records
        )
        return hashlib.sha256(json.dumps([self.classes, rows]).encode()).hexdigest()

    def write(self, path: str | Path) -> Path:
        """Write ``manifest.csv`` atomically; return its path."""
        from medlens.io.base import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_csv(path.parent.resolve()), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | Path, classes: Sequence[str] = ()) -> Manifest:
        """Read a manifest CSV (paths resolved against its folder)."""
        path = Path(path)
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except FileNotFoundError:
            raise DatasetError(f"manifest not found: {path}") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError(f"{path}: not a readable CSV ({exc.__class__.__name__})") from None
        if rows and "path" not in rows[0] and "study" in rows[0]:  # a study-level CSV
            rows = [{**row, "path": row.get("study")} for row in rows]
        if not rows or "path" not in rows[0]:
            raise DatasetError(
                f"{path}: a manifest needs a header with a 'path' column "
                "(or 'study', for a study-level CSV)"
            )
        root = path.parent.resolve()
        records = [_record_from_row(row, root, path, i) for i, row in enumerate(rows, start=2)]
        return cls(tuple(records), tuple(classes))


def load_manifest(path: str | Path) -> Manifest:
    """Read ``manifest.csv`` (or a folder holding it) with the class order of its fingerprint."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.csv"
    fingerprint = path.parent / "fingerprint.json"
    classes: list[str] = []
    if fingerprint.is_file():
        try:
            classes = json.loads(fingerprint.read_text(encoding="utf-8")).get("classes", [])
        except (json.JSONDecodeError, AttributeError):
            raise DatasetError(f"{fingerprint}: not a valid fingerprint JSON") from None
    return Manifest.read(path, classes)


def _record_from_row(row: dict[str, str | None], root: Path, path: Path, line: int) -> Record:
    if not row.get("path"):
        raise DatasetError(f"{path}, line {line}: empty 'path'")
    values = {key: (row.get(key) or "").strip() for key in COLUMNS}
    split = values["split"]
    if split == "validation":
        split = "val"
    if split and split not in SPLITS:
        raise DatasetError(f"{path}, line {line}: unknown split {split!r} (use {SPLITS})")
    return Record(
        path=_absolute(values["path"], root),
        label=values["label"],
        patient_id=values["patient_id"],
        split=split,
        label_path=_absolute(values["label_path"], root) if values["label_path"] else "",
    )


def _absolute(path: str, root: Path) -> str:
    return os.path.normpath(os.path.join(root, path))


def _relative(path: str, root: str | Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:  # another drive (Windows): keep it absolute
        return path
