"""Keyed UIDs, pseudonyms and date offsets; the key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from medlens.errors import ConfigError
from medlens.privacy import KeyedMapper, load_or_create_key

UID = "1.2.826.0.1.3680043.2.1125.1.12345678901234567890"


def test_uid_is_keyed_deterministic_and_valid(key: bytes) -> None:
    mapper = KeyedMapper(key)
    new = mapper.uid(UID)
    assert new == mapper.uid(UID)
    assert new != UID and new.startswith("2.25.") and len(new) <= 64
    assert new[5:].isdigit() and not new[5:].startswith("0")
    assert KeyedMapper(b"another key, 16+ bytes").uid(UID) != new
    assert mapper.uid(UID + ".1") != new


def test_uid_is_idempotent_and_well_known_uids_are_kept(key: bytes) -> None:
    mapper = KeyedMapper(key)
    new = mapper.uid(UID)
    assert mapper.is_own_uid(new) and not mapper.is_own_uid(UID)
    assert mapper.uid(new) == new
    assert not KeyedMapper(b"another key, 16+ bytes").is_own_uid(new)
    assert mapper.uid("1.2.840.10008.5.1.4.1.1.2") == "1.2.840.10008.5.1.4.1.1.2"


def test_uid_root(key: bytes) -> None:
    mapper = KeyedMapper(key, uid_root="1.2.3.4.5.6.7.8.9.10.11")
    new = mapper.uid(UID)
    assert new.startswith("1.2.3.4.5.6.7.8.9.10.11.") and len(new) <= 64
    for bad in ("1.02.3", "abc", "1..2", "1.2.3.4.5.6.7.8.9.10.11.12.13"):
        with pytest.raises(ConfigError):
            KeyedMapper(key, uid_root=bad)


def test_pseudonym_is_keyed_checkable_and_idempotent(key: bytes) -> None:
    mapper = KeyedMapper(key)
    pseudo = mapper.pseudonym("MRN-1")
    assert pseudo == mapper.pseudonym(" MRN-1 ") and pseudo != mapper.pseudonym("MRN-2")
    assert len(pseudo) == 24 and "MRN" not in pseudo
    assert mapper.is_own_pseudonym(pseudo) and mapper.pseudonym(pseudo) == pseudo
    assert KeyedMapper(b"another key, 16+ bytes").pseudonym("MRN-1") != pseudo
    assert not mapper.is_own_pseudonym("0" * 24)


def test_date_offset_is_per_patient_and_zero_once_pseudonymised(key: bytes) -> None:
    mapper = KeyedMapper(key)
    offsets = {mapper.date_offset(f"MRN-{i}") for i in range(50)}
    assert all(-3652 <= o <= -366 for o in offsets) and len(offsets) > 40
    assert mapper.date_offset("MRN-1") == mapper.date_offset("MRN-1")
    assert mapper.date_offset(mapper.pseudonym("MRN-1")) == 0


def test_short_key_refused() -> None:
    with pytest.raises(ConfigError):
        KeyedMapper(b"short")


def test_key_file_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "site.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key


def test_key_file_inside_output_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="inside the output"):
        load_or_create_key(tmp_path / "out" / "k.key", forbidden_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_key_file_readable_by_others_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text("00" * 32)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_key(path)


@pytest.mark.parametrize("text", ["not hex at all", "00ff"])
def test_bad_key_file_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "k.key"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigError):
        load_or_create_key(path)


def test_key_file_that_is_a_folder_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="folder"):
        load_or_create_key(tmp_path)
