"""The run report, ``deid_report.csv``: one line per input file, free of patient data.

Input file and folder names often carry identifiers (a SOP Instance UID as file name, a
patient's name as folder name). A report written inside the output folder withholds such
input paths, so that nothing under OUT carries an original identifier.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydicom.dataset import Dataset

__all__ = [
    "REPORT_NAME",
    "WITHHELD",
    "FileResult",
    "Status",
    "carries_identifier",
    "path_identifiers",
    "write_report",
]

Status = Literal["done", "redacted", "quarantined", "skipped", "failed"]
REPORT_NAME = "deid_report.csv"
WITHHELD = "(withheld: the path holds an identifier; use --report outside OUT)"
_UID = re.compile(r"^[0-9.]+$")


@dataclass(frozen=True)
class FileResult:
    """One line of the report: paths (relative), status and a reason free of patient data."""

    input: str
    output: str
    status: Status
    reason: str = ""
    identifying_input: bool = False  # the input path holds a name, ID, date or UID of the file


def carries_identifier(label: str, values: Iterable[str]) -> bool:
    """True if the path ``label`` contains a UID, or a name/ID/date token, of its file."""
    text = label.upper()
    for value in filter(None, (v.strip().upper() for v in values)):
        tokens = [value] if _UID.match(value) else [value, *re.split(r"[^0-9A-Z]+", value)]
        if any(len(t) >= (6 if t.isdigit() else 4) and t in text for t in tokens):
            return True
    return False


def path_identifiers(ds: Dataset) -> list[str]:
    """The values a file or folder name is most often built from."""
    keys = ("PatientID", "PatientName", "AccessionNumber", "StudyDate", "PatientBirthDate")
    keys += ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    values = [str(ds.get(k, "") or "") for k in keys]
    meta = getattr(ds, "file_meta", None)
    return values + ([str(meta.get("MediaStorageSOPInstanceUID", ""))] if meta else [])


def write_report(
    results: Iterable[FileResult], path: Path, *, withhold_identifying: bool = False
) -> None:
    """Write ``deid_report.csv`` (input, output, status, reason) atomically.

    With ``withhold_identifying``, input paths that hold an identifier are not written.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["input", "output", "status", "reason"])
    for r in results:
        shown = WITHHELD if withhold_identifying and r.identifying_input else r.input
        writer.writerow([shown, r.output, r.status, r.reason])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".report-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(buffer.getvalue())
    os.replace(tmp, path)
