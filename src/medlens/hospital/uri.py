"""Addresses of PACS endpoints: ``dicomweb://``, ``dicomwebs://`` and ``dimse://``.

``dicomweb://HOST:PORT/PATH?StudyInstanceUID=...&SeriesInstanceUID=...`` is the DICOMweb
service at ``http://HOST:PORT/PATH`` (``dicomwebs://`` for https), with the study and
optionally the series to read. ``dimse://AET@HOST:PORT`` is a DICOM node for C-STORE.
Credentials never go in an address (they would end up in CSVs and logs): see
:mod:`medlens.hospital.auth`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from medlens.errors import ConfigError

__all__ = ["DicomWebAddress", "DimseAddress", "parse_dicomweb", "parse_dimse", "parse_store"]

_HTTP = {"dicomweb": "http", "dicomwebs": "https"}
_KEYS = {"studyinstanceuid": "study_uid", "seriesinstanceuid": "series_uid"}


@dataclass(frozen=True)
class DicomWebAddress:
    """A DICOMweb service (``base_url``) and, for reading, a study and maybe a series."""

    base_url: str
    study_uid: str | None = None
    series_uid: str | None = None

    def with_uids(self, study_uid: str, series_uid: str | None = None) -> str:
        """This service as a ``dicomweb://`` item for one study (and series)."""
        scheme = "dicomwebs" if self.base_url.startswith("https") else "dicomweb"
        query = f"StudyInstanceUID={study_uid}"
        if series_uid:
            query += f"&SeriesInstanceUID={series_uid}"
        return f"{scheme}://{self.base_url.split('://', 1)[1]}?{query}"


@dataclass(frozen=True)
class DimseAddress:
    """A DICOM node: its AE title, host and port."""

    ae_title: str
    host: str
    port: int


def parse_dicomweb(uri: str, *, need_study: bool = False) -> DicomWebAddress:
    """Parse a ``dicomweb://`` or ``dicomwebs://`` address (see the module docstring)."""
    parts = urlsplit(uri)
    if parts.scheme.lower() not in _HTTP:
        raise ConfigError(f"not a DICOMweb address (dicomweb:// or dicomwebs://): {uri!r}")
    if parts.username or parts.password:
        raise ConfigError(
            "credentials in a DICOMweb address are refused (they would be logged); set "
            "MEDLENS_DICOMWEB_TOKEN(_FILE) or MEDLENS_DICOMWEB_BASIC(_FILE) instead"
        )
    if not parts.hostname:
        raise ConfigError(f"DICOMweb address without a host: {uri!r}")
    uids: dict[str, str] = {}
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        field = _KEYS.get(key.lower())
        if field is None:
            raise ConfigError(
                f"unknown DICOMweb address parameter {key!r} (use StudyInstanceUID, "
                "SeriesInstanceUID)"
            )
        uids[field] = values[-1].strip()
    if need_study and not uids.get("study_uid"):
        raise ConfigError("a DICOMweb address to read needs ?StudyInstanceUID=...")
    port = f":{parts.port}" if parts.port else ""
    base = f"{_HTTP[parts.scheme.lower()]}://{parts.hostname}{port}{parts.path.rstrip('/')}"
    return DicomWebAddress(base, uids.get("study_uid") or None, uids.get("series_uid") or None)


def parse_dimse(uri: str) -> DimseAddress:
    """Parse ``dimse://AET@HOST:PORT``."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "dimse" or not parts.username or not parts.hostname:
        raise ConfigError(f"a DICOM node is written dimse://AET@HOST:PORT, not {uri!r}")
    if parts.password:
        raise ConfigError("dimse:// addresses take no password")
    if len(parts.username) > 16:
        raise ConfigError(f"AE title {parts.username!r} is longer than 16 characters")
    return DimseAddress(parts.username, parts.hostname, parts.port or 104)


def parse_store(uri: str) -> DicomWebAddress | DimseAddress:
    """A ``--store`` target: a DICOMweb service (STOW-RS) or a DICOM node (C-STORE)."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme == "dimse":
        return parse_dimse(uri)
    if scheme in _HTTP:
        return parse_dicomweb(uri)
    raise ConfigError(f"--store takes dicomweb://, dicomwebs:// or dimse:// addresses, not {uri!r}")
