"""De-identify DICOM files and folder trees: the :class:`Deidentifier` and its report.

A file goes through: read (never forced) -> burned-in text check (quarantine or redact) ->
patient pseudonyms and date offset -> the profile at every depth -> new file meta and
de-identification attributes -> atomic write -> a check that no original name, identifier,
UID or date remains anywhere in the written bytes. A file that fails is reported and never
stops a run; a run never writes into its input, and never writes the key into its output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import multiprocessing
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from medlens.errors import ConfigError, DeidentificationError
from medlens.privacy.keys import KeyedMapper, load_or_create_key, random_key
from medlens.privacy.pixels import Region, burned_in_risk, check_region, redact_regions
from medlens.privacy.profile import DatePolicy, ProfileContext, apply_profile, remember
from medlens.privacy.report import (
    REPORT_NAME,
    FileResult,
    Status,
    carries_identifier,
    path_identifiers,
    write_report,
)
from medlens.privacy.table import EDITION

__all__ = ["DeidOptions", "Deidentifier", "deidentify_file", "deidentify_tree"]

Progress = Callable[[int, int, "FileResult"], None]

QUARANTINE_DIR = "quarantine"
_DICOMDIR = "1.2.840.10008.1.3.10"
_DOCUMENTS = "1.2.840.10008.5.1.4.1.1.104."  # encapsulated PDF, CDA, STL, OBJ, MTL
_CODES = {
    "113100": "Basic Application Confidentiality Profile",
    "113101": "Clean Pixel Data Option",
    "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
    "113111": "Retain Safe Private Option",
}


@dataclass(frozen=True)
class DeidOptions:
    """How to de-identify.

    Attributes:
        dates: "remove" (Basic Profile) or "shift" by a per-patient keyed offset.
        keep_private_safe: keep the documented safe-private allow-list.
        uid_root: root of the replacement UIDs (``2.25`` needs no registration).
        redact: regions blanked in images at risk of burned-in text; empty = quarantine them.
        check_leaks: re-read each written file and fail it if an original value survived.
    """

    dates: DatePolicy = "remove"
    keep_private_safe: bool = False
    uid_root: str = "2.25"
    redact: tuple[Region, ...] = ()
    check_leaks: bool = True

    def __post_init__(self) -> None:
        if self.dates not in ("remove", "shift"):
            raise ConfigError(f"dates must be 'remove' or 'shift', not {self.dates!r}")
        for region in self.redact:
            check_region(region)


@dataclass
class _Outcome:
    status: Status = "done"
    reason: str = ""
    removed: set[str] = field(default_factory=set)


class Deidentifier:
    """Holds the secret key and the options; de-identifies datasets, files and trees."""

    def __init__(self, key: bytes | None = None, options: DeidOptions | None = None) -> None:
        self.options = options or DeidOptions()
        self.ephemeral_key = key is None
        self.mapper = KeyedMapper(
            key if key is not None else random_key(), uid_root=self.options.uid_root
        )

    @classmethod
    def from_key_file(
        cls,
        key_file: str | os.PathLike[str],
        options: DeidOptions | None = None,
        *,
        out: Path | None = None,
    ) -> Deidentifier:
        """Use the key in ``key_file`` (created if absent; never inside ``out``)."""
        return cls(load_or_create_key(key_file, forbidden_dir=out), options)

    # --- datasets -------------------------------------------------------------------------

    def deidentify_dataset(self, ds: Dataset, *, pixels_cleaned: bool = False) -> set[str]:
        """De-identify ``ds`` and its file meta in place; return the sensitive values removed.

        ``pixels_cleaned`` records that burned-in text was redacted (code 113101).
        """
        opts = self.options
        patient = (
            str(ds.get("PatientID", "") or "").strip()
            or str(ds.get("PatientName", "") or "").strip()
        )
        offset = self.mapper.date_offset(patient) if opts.dates == "shift" else 0
        ctx = ProfileContext(self.mapper, opts.dates, opts.keep_private_safe, offset)
        remember(ctx, "PN", [str(ds.get("PatientName", "") or ""), patient])
        pseudonym = self.mapper.pseudonym(patient)
        ds.PatientID, ds.PatientName = pseudonym, f"ANON^{pseudonym}"
        apply_profile(ds, ctx)
        self._set_file_meta(ds, ctx)
        self._mark(ds, pixels_cleaned)
        return ctx.to_check()

    def _set_file_meta(self, ds: Dataset, ctx: ProfileContext) -> None:
        old = getattr(ds, "file_meta", None) or FileMetaDataset()
        remember(ctx, "UI", [str(old.get("MediaStorageSOPInstanceUID", ""))])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.get("SOPClassUID") or old.get("MediaStorageSOPClassUID")
        instance = ds.get("SOPInstanceUID") or self.mapper.uid(
            str(old.get("MediaStorageSOPInstanceUID", ""))
        )
        meta.MediaStorageSOPInstanceUID = instance
        if not meta.MediaStorageSOPClassUID or not instance:
            raise DeidentificationError("not a composite instance: no SOP Class or Instance UID")
        ds.SOPInstanceUID = instance  # fills an empty one from the file meta
        meta.TransferSyntaxUID = old.get("TransferSyntaxUID") or _transfer_syntax(ds)
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "MEDLENS"
        ds.file_meta = meta
        ds.preamble = b"\0" * 128

    def _mark(self, ds: Dataset, pixels_cleaned: bool) -> None:
        """Add PatientIdentityRemoved, the method text and codes (appended, never duplicated)."""
        opts = self.options
        names = [f"medlens {EDITION} Basic Application Confidentiality Profile"]
        codes = ["113100"]
        if opts.dates == "shift":
            names.append("Retain Longitudinal Temporal Information Modified Dates")
            codes.append("113107")
        if opts.keep_private_safe:
            names.append("Retain Safe Private")
            codes.append("113111")
        if pixels_cleaned:
            names.append("Clean Pixel Data (burned-in text regions redacted)")
            codes.append("113101")
        ds.PatientIdentityRemoved = "YES"
        ds.LongitudinalTemporalInformationModified = (
            "MODIFIED" if opts.dates == "shift" else "REMOVED"
        )
        old = ds.get("DeidentificationMethod") or []
        old_names = [old] if isinstance(old, str) else [str(v) for v in old]
        ds.DeidentificationMethod = list(dict.fromkeys([*old_names, *names]))
        items = list(ds.get("DeidentificationMethodCodeSequence") or [])
        present = {str(item.get("CodeValue", "")) for item in items}
        for code in codes:
            if code not in present:
                items.append(_code_item(code))
        ds.DeidentificationMethodCodeSequence = Sequence(items)

    # --- files ----------------------------------------------------------------------------

    def deidentify_file(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        quarantine: str | os.PathLike[str] | None = None,
    ) -> FileResult:
        """De-identify one file into ``dst`` (at-risk images into ``quarantine``)."""
        dst = Path(dst)
        qdst = Path(quarantine) if quarantine else dst.parent / QUARANTINE_DIR / dst.name
        return self._one(
            Path(src),
            lambda _ds, status: qdst if status == "quarantined" else dst,
            src_label=Path(src).name,
            root=dst.parent,
        )

    def _one(
        self, src: Path, place: Callable[[Dataset, Status], Path], *, src_label: str, root: Path
    ) -> FileResult:
        """Read, de-identify, write and check one file; every failure becomes a report line."""
        dst: Path | None = None
        named = False
        with _quiet_pydicom():
            try:
                ds = pydicom.dcmread(src)
                named = carries_identifier(src_label, path_identifiers(ds))
                outcome = self._process(ds)
                if outcome.status == "skipped":
                    return FileResult(src_label, "", "skipped", outcome.reason)
                dst = place(ds, outcome.status)
                _write_atomic(ds, dst)
                if self.options.check_leaks and (leaks := _count_leaks(dst, outcome.removed, ds)):
                    raise DeidentificationError(
                        f"{leaks} original value(s) survived de-identification"
                    )
            except InvalidDicomError:
                return FileResult(src_label, "", "skipped", "not a DICOM Part 10 file")
            except Exception as exc:  # report it, never stop the run, never quote a value
                if dst is not None:
                    dst.unlink(missing_ok=True)
                return FileResult(src_label, "", "failed", _reason(exc), named)
        output = dst.relative_to(root) if dst.is_relative_to(root) else dst
        return FileResult(src_label, output.as_posix(), outcome.status, outcome.reason, named)

    def _process(self, ds: Dataset) -> _Outcome:
        sop_class = str(
            ds.get("SOPClassUID", "")
            or getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "")
        )
        if sop_class == _DICOMDIR:
            return _Outcome("skipped", "DICOMDIR: rebuild it from the de-identified files")
        if sop_class.startswith(_DOCUMENTS):
            raise DeidentificationError("encapsulated documents cannot be de-identified")
        outcome = _Outcome()
        risk = burned_in_risk(ds)
        if risk and self.options.redact:
            redact_regions(ds, self.options.redact)
            ds.BurnedInAnnotation = "NO"
            outcome = _Outcome("redacted", f"{risk}; regions redacted")
        elif risk:
            outcome = _Outcome("quarantined", risk)
        outcome.removed = self.deidentify_dataset(ds, pixels_cleaned=outcome.status == "redacted")
        return outcome

    # --- trees ----------------------------------------------------------------------------

    def deidentify_tree(
        self,
        src: str | os.PathLike[str],
        out: str | os.PathLike[str],
        *,
        keep_names: bool = False,
        report: str | os.PathLike[str] | None = None,
        progress: Progress | None = None,
        workers: int = 1,
    ) -> list[FileResult]:
        """De-identify a file or every file under a folder into ``out``; write the report.

        Outputs are named from de-identified UIDs (``<patient>/<study>/<series>/<instance>.dcm``),
        since input names often carry UIDs or patient names; ``keep_names`` mirrors the input
        layout instead. At-risk images go under ``out/quarantine``. The report goes to
        ``report`` (default ``out/deid_report.csv``); in a report inside ``out``, input paths
        that contain an identifier of their file are withheld. ``workers`` > 1 spreads files
        over that many processes; results keep input order.
        """
        src, out = Path(src), Path(out)
        _check_paths(src, out)
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
        base = src.parent if src.is_file() else src
        jobs = [(path, path.relative_to(base)) for path in files]
        work = functools.partial(self._tree_file, out=out, keep_names=keep_names)
        results = _mark_duplicates(_map(work, jobs, workers, progress))
        report_path = Path(report) if report else out / REPORT_NAME
        withhold = report_path.resolve().is_relative_to(out.resolve())
        write_report(results, report_path, withhold_identifying=withhold)
        return results

    def _tree_file(self, job: tuple[Path, Path], *, out: Path, keep_names: bool) -> FileResult:
        path, rel = job
        return self._one(
            path,
            lambda ds, status: _place(out, rel, ds, status, keep_names),
            src_label=rel.as_posix(),
            root=out,
        )


def _map(
    work: Callable[[tuple[Path, Path]], FileResult],
    jobs: list[tuple[Path, Path]],
    workers: int,
    progress: Progress | None,
) -> list[FileResult]:
    """Run ``work`` on every job, in this process or in a pool; report progress as it goes."""
    results: list[FileResult | None] = [None] * len(jobs)

    def record(index: int, result: FileResult, done: int) -> None:
        results[index] = result
        if progress is not None:
            progress(done, len(jobs), result)

    if workers <= 1:
        for done, job in enumerate(jobs, 1):
            record(done - 1, work(job), done)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(work, job): index for index, job in enumerate(jobs)}
            for done, future in enumerate(as_completed(futures), 1):
                record(futures[future], future.result(), done)
    return [r for r in results if r is not None]


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and log records: they may quote header values."""
    logger = logging.getLogger("pydicom")
    disabled = logger.disabled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger.disabled = True
        try:
            yield
        finally:
            logger.disabled = disabled


def _reason(exc: Exception) -> str:
    """A report reason: our own messages (written without patient data), else the type only."""
    if isinstance(exc, DeidentificationError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"file system error ({type(exc).__name__})"
    return f"could not be read or de-identified ({type(exc).__name__})"


def _transfer_syntax(ds: Dataset) -> str:
    """The transfer syntax the dataset was read with, when its file meta does not say."""
    implicit, little = ds.original_encoding
    if implicit is None:
        raise DeidentificationError("the transfer syntax is unknown")
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _code_item(code: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, "DCM", _CODES[code]
    return item


def _mark_duplicates(results: list[FileResult]) -> list[FileResult]:
    """A second input with the same output path (same SOP Instance UID) is reported skipped."""
    seen: set[str] = set()
    marked = []
    for r in results:
        if r.output and r.output in seen:
            reason = "duplicate SOP Instance UID: same output as an earlier input"
            r = dataclasses.replace(r, status="skipped", reason=reason)
        seen.add(r.output)
        marked.append(r)
    return marked


def _place(out: Path, rel: Path, ds: Dataset, status: Status, keep_names: bool) -> Path:
    root = out / QUARANTINE_DIR if status == "quarantined" else out
    if keep_names:
        return root / rel
    parts = [
        str(ds.get(k, "") or "unknown")
        for k in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    ]
    return root.joinpath(*parts[:3], parts[3] + ".dcm")


def _check_paths(src: Path, out: Path) -> None:
    if not src.exists():
        raise ConfigError(f"input {src} does not exist")
    s, o = src.resolve(), out.resolve()
    if s == o or o.is_relative_to(s) or (src.is_dir() and s.is_relative_to(o)):
        raise ConfigError(f"output {out} and input {src} must not contain one another")


def _write_atomic(ds: Dataset, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".deid-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            ds.save_as(fh, enforce_file_format=True)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _count_leaks(path: Path, removed: Iterable[str], ds: Dataset) -> int:
    """How many removed values still occur in the file, outside the pixel data."""
    data = path.read_bytes()
    pixels = ds.get("PixelData") or b""
    count = 0
    for text in removed:
        needle = text.encode("utf-8", "replace")
        if needle in data and data.count(needle) > pixels.count(needle):
            count += 1
    return count


def deidentify_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    options: DeidOptions | None = None,
    quarantine: str | os.PathLike[str] | None = None,
) -> FileResult:
    """De-identify one file (a random key if none is given: UIDs then match no other run)."""
    return Deidentifier(key, options).deidentify_file(src, dst, quarantine=quarantine)


def deidentify_tree(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    options: DeidOptions | None = None,
    keep_names: bool = False,
    report: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    workers: int = 1,
) -> list[FileResult]:
    """De-identify a file or folder tree into ``out`` and write ``deid_report.csv``."""
    deid = Deidentifier(key, options)
    return deid.deidentify_tree(
        src, out, keep_names=keep_names, report=report, progress=progress, workers=workers
    )
