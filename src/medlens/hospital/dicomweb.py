"""DICOMweb in and out: QIDO-RS to find a series, WADO-RS to fetch it, STOW-RS to store.

>>> read_dicomweb("dicomweb://127.0.0.1:8042/dicom-web?StudyInstanceUID=1.2.3")  # doctest: +SKIP
Image(shape=(20, 512, 512), ...)

The fetched instances are written to a temporary folder and read by
:func:`medlens.io.read_series`, so a study from a PACS becomes exactly the volume its series
folder would. STOW-RS sends one multipart body with a ``Content-Length``: dicomweb-client
(0.61) switches to ``Transfer-Encoding: chunked`` for bodies over its ``chunk_size`` (1 MB),
which some servers silently drop; ``chunked=True`` keeps that behaviour when wanted.
"""

from __future__ import annotations

import io
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medlens.errors import InvalidImageError, PacsError
from medlens.hospital.uri import DicomWebAddress, parse_dicomweb

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from medlens.io import Image

__all__ = [
    "FetchedSeries",
    "dicomweb_client",
    "encode_multipart",
    "fetch_series",
    "find_series",
    "read_dicomweb",
    "store_dicomweb",
]

#: Series of these modalities are results, never the image series to predict on.
RESULT_MODALITIES = frozenset({"SR", "SEG", "KO", "PR", "RTSTRUCT", "REG", "DOC"})


@dataclass(frozen=True)
class FetchedSeries:
    """A series retrieved into ``folder`` (one ``.dcm`` file per instance)."""

    address: DicomWebAddress
    study_uid: str
    series_uid: str
    folder: Path
    files: tuple[Path, ...]


def dicomweb_client(address: DicomWebAddress, *, timeout: float = 60.0) -> Any:
    """A ``dicomweb_client.DICOMwebClient`` for the service, with credentials from the env."""
    from dicomweb_client import DICOMwebClient

    from medlens.hospital.auth import dicomweb_session

    return DICOMwebClient(address.base_url, session=dicomweb_session(), timeout=timeout)


def find_series(address: DicomWebAddress, client: Any = None) -> str:
    """The Series Instance UID to read: the one named, else the study's only image series."""
    client = client or dicomweb_client(address)
    filters = {"SeriesInstanceUID": address.series_uid} if address.series_uid else None
    found = _call(
        "QIDO series query",
        client.search_for_series,
        study_instance_uid=address.study_uid,
        search_filters=filters,
    )
    series = [(_value(s, "0020000E"), _value(s, "00080060")) for s in found]
    images = [uid for uid, modality in series if modality not in RESULT_MODALITIES]
    if address.series_uid:
        if address.series_uid not in [uid for uid, _ in series]:
            raise PacsError(f"{address.base_url}: the series asked for is not in that study")
        return address.series_uid
    if len(images) != 1:
        problem = "no image series" if not images else f"{len(images)} image series"
        raise PacsError(
            f"{address.base_url}: the study holds {problem}; name one with "
            f"SeriesInstanceUID=... (series: {', '.join(images) or 'none'})"
        )
    return images[0]


def fetch_series(uri: str | DicomWebAddress, folder: str | Path) -> FetchedSeries:
    """Find (QIDO) and retrieve (WADO) one series of a study into ``folder``."""
    address = uri if isinstance(uri, DicomWebAddress) else parse_dicomweb(uri, need_study=True)
    client = dicomweb_client(address)
    series_uid = find_series(address, client)
    datasets = _call(
        "WADO series retrieval",
        client.retrieve_series,
        study_instance_uid=address.study_uid,
        series_instance_uid=series_uid,
        media_types=(("application/dicom", "*"),),  # as stored: no transcoding on the server
    )
    if not datasets:
        raise PacsError(f"{address.base_url}: the series has no instances")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number, ds in enumerate(datasets):
        path = folder / f"{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    assert address.study_uid is not None
    return FetchedSeries(address, address.study_uid, series_uid, folder, tuple(files))


def read_dicomweb(uri: str) -> Image:
    """The volume of a ``dicomweb://`` study (or series), assembled like a series folder."""
    from medlens.io import read_series

    with tempfile.TemporaryDirectory(prefix="medlens-dicomweb-") as folder:
        fetched = fetch_series(uri, folder)
        try:
            image = read_series(fetched.folder)
        except InvalidImageError as exc:  # the message names the temp folder: say the series
            raise type(exc)(str(exc).replace(str(fetched.folder), "DICOMweb series")) from exc
    return replace(image, source=None, meta={**image.meta, "format": "DICOMweb series"})


def encode_multipart(datasets: Sequence[Dataset]) -> tuple[bytes, str]:
    """One ``multipart/related; type="application/dicom"`` body and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = []
    for ds in datasets:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        parts.append(
            b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
            + buffer.getvalue() + b"\r\n"
        )  # fmt: skip
    body = b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def store_dicomweb(
    datasets: Sequence[Dataset],
    target: str | DicomWebAddress,
    *,
    chunked: bool = False,
    timeout: float = 120.0,
) -> list[str]:
    """STOW-RS ``datasets``; return the stored SOP Instance UIDs; ``PacsError`` on failure."""
    address = target if isinstance(target, DicomWebAddress) else parse_dicomweb(target)
    if chunked:
        client = dicomweb_client(address, timeout=timeout)
        answer = _call("STOW store", client.store_instances, datasets=list(datasets))
        return _stored(answer, address, len(datasets))
    from pydicom.dataset import Dataset

    from medlens.hospital.auth import dicomweb_session

    body, content_type = encode_multipart(datasets)
    headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
    session = dicomweb_session()
    try:
        response = session.post(
            f"{address.base_url}/studies", data=body, headers=headers, timeout=timeout
        )
    except OSError as exc:
        raise PacsError(f"{address.base_url}: STOW store failed ({type(exc).__name__})") from exc
    if response.status_code not in (200, 202):
        raise PacsError(
            f"{address.base_url}: STOW store refused (HTTP {response.status_code} "
            f"{response.reason})"
        )
    answer = Dataset.from_json(response.content) if response.content else Dataset()
    return _stored(answer, address, len(datasets))


def _stored(answer: Any, address: DicomWebAddress, expected: int) -> list[str]:
    failed = list(answer.get("FailedSOPSequence", []))
    if failed:
        reasons = sorted({str(item.get("FailureReason", "?")) for item in failed})
        raise PacsError(
            f"{address.base_url}: {len(failed)} of {expected} instance(s) not stored "
            f"(failure reasons {', '.join(reasons)})"
        )
    stored = [str(i.ReferencedSOPInstanceUID) for i in answer.get("ReferencedSOPSequence", [])]
    if len(stored) != expected:  # Orthanc 1.10 answers 200 and drops instances it cannot index
        raise PacsError(
            f"{address.base_url}: the server acknowledged {len(stored)} of {expected} "
            "instance(s); the others were not stored"
        )
    return stored


def _value(item: dict[str, Any], tag: str) -> str:
    values = item.get(tag, {}).get("Value") or [""]
    return str(values[0])


def _call(what: str, function: Any, **kwargs: Any) -> Any:
    """``function(**kwargs)`` with HTTP and connection errors as ``PacsError`` (no URL query)."""
    import requests

    try:
        return function(**kwargs)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise PacsError(f"DICOMweb {what} failed (HTTP {status})") from exc
    except (requests.RequestException, OSError) as exc:
        raise PacsError(f"DICOMweb {what} failed ({type(exc).__name__})") from exc
