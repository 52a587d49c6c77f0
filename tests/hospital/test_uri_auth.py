"""Addresses and credentials: what maps to what, what is refused, and no secret in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from medlens.errors import ConfigError
from medlens.hospital.auth import dicomweb_session
from medlens.hospital.uri import parse_dicomweb, parse_dimse, parse_store


def test_dicomweb_addresses_map_to_http_and_https() -> None:
    address = parse_dicomweb(
        "dicomweb://pacs:8042/dicom-web/?StudyInstanceUID=1.2&SeriesInstanceUID=1.2.3",
        need_study=True,
    )
    assert (address.base_url, address.study_uid, address.series_uid) == (
        "http://pacs:8042/dicom-web", "1.2", "1.2.3",
    )  # fmt: skip
    assert parse_dicomweb("dicomwebs://pacs/wado").base_url == "https://pacs/wado"
    assert address.with_uids("9.8") == "dicomweb://pacs:8042/dicom-web?StudyInstanceUID=9.8"


@pytest.mark.parametrize(
    "uri",
    [
        "http://pacs/dicom-web?StudyInstanceUID=1",
        "dicomweb://user:secret@pacs/dicom-web?StudyInstanceUID=1",
        "dicomweb://pacs/dicom-web?PatientID=123",
        "dicomweb://pacs/dicom-web",
    ],
)
def test_bad_dicomweb_addresses_are_refused(uri: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_dicomweb(uri, need_study=True)
    assert "secret" not in str(error.value)


def test_dimse_addresses() -> None:
    node = parse_dimse("dimse://ORTHANC@127.0.0.1:4242")
    assert (node.ae_title, node.host, node.port) == ("ORTHANC", "127.0.0.1", 4242)
    assert parse_store("dimse://A@h").port == 104
    for bad in ("dimse://127.0.0.1:4242", "dimse://A:pw@h:1", "dimse://ABCDEFGHIJKLMNOPQ@h:1"):
        with pytest.raises(ConfigError):
            parse_dimse(bad)
    with pytest.raises(ConfigError):
        parse_store("ftp://pacs")


def test_credentials_from_env_and_files(tmp_path: Path) -> None:
    assert "Authorization" not in dicomweb_session({}).headers
    assert dicomweb_session({"MEDLENS_DICOMWEB_TOKEN": "t0k"}).headers["Authorization"] == (
        "Bearer t0k"
    )
    (tmp_path / "basic").write_text("alice:pa:ss\n")
    session = dicomweb_session({"MEDLENS_DICOMWEB_BASIC_FILE": str(tmp_path / "basic")})
    assert session.auth == ("alice", "pa:ss")
    (tmp_path / "empty").write_text("")
    bad = [
        {"MEDLENS_DICOMWEB_TOKEN": "t", "MEDLENS_DICOMWEB_BASIC": "a:b"},
        {"MEDLENS_DICOMWEB_BASIC": "no-colon-secret"},
        {"MEDLENS_DICOMWEB_TOKEN_FILE": str(tmp_path / "empty")},
        {"MEDLENS_DICOMWEB_TOKEN_FILE": str(tmp_path / "missing")},
    ]
    for env in bad:
        with pytest.raises(ConfigError) as error:
            dicomweb_session(env)
        assert "secret" not in str(error.value)
