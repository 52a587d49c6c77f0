"""The secret key and the keyed mappings built on it: UIDs, patient pseudonyms, date offsets.

Every mapping is an HMAC-SHA256 of the original value under the user's key, so the same
input maps to the same output in every file and every run that shares the key, and nobody
without the key can recover an identifier by hashing candidates. Each output also carries a
short keyed tag, which makes it recognisable (under the same key) as already pseudonymised:
a second pass maps it to itself, so de-identifying an output again changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from pathlib import Path

from medlens.errors import ConfigError

__all__ = ["KeyedMapper", "load_or_create_key", "random_key"]

KEY_BYTES = 32
_UID_BODY_BITS = 88  # keyed hash of the original UID
_UID_TAG_BITS = 40  # keyed check value, marks the UID as ours
_MAX_ROOT_CHARS = 64 - 1 - 39  # a 128-bit integer has at most 39 decimal digits
_ROOT = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_PSEUDONYM = re.compile(r"^[0-9A-F]{24}$")
_MIN_SHIFT_DAYS, _SHIFT_SPAN_DAYS = 366, 3287  # offsets from -366 to -3652 days


def random_key() -> bytes:
    """A fresh random key (for a run without a key file)."""
    return secrets.token_bytes(KEY_BYTES)


def load_or_create_key(path: str | os.PathLike[str], *, forbidden_dir: Path | None = None) -> bytes:
    """Read the hex key in ``path``, or create it (random, mode 0600) if it does not exist.

    ``forbidden_dir`` (the output folder) must not contain the key file.
    """
    path = Path(path).expanduser()
    if forbidden_dir is not None and path.resolve().is_relative_to(forbidden_dir.resolve()):
        raise ConfigError(f"key file {path} must not be inside the output folder {forbidden_dir}")
    if path.is_dir():
        raise ConfigError(f"key file {path} is a folder")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(random_key().hex() + "\n")
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ConfigError(f"key file {path} is readable by others: run chmod 600 on it")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, UnicodeDecodeError, ValueError):
        raise ConfigError(f"key file {path} does not hold a hexadecimal key") from None
    if len(key) < 16:
        raise ConfigError(f"key file {path} holds {len(key)} bytes; at least 16 are needed")
    return key


class KeyedMapper:
    """Keyed, deterministic and idempotent replacements for UIDs, patient IDs and dates."""

    def __init__(self, key: bytes, *, uid_root: str = "2.25") -> None:
        if len(key) < 16:
            raise ConfigError("the de-identification key must be at least 16 bytes")
        if not _ROOT.match(uid_root) or len(uid_root) > _MAX_ROOT_CHARS:
            raise ConfigError(
                f"UID root {uid_root!r} must be dotted decimal, at most {_MAX_ROOT_CHARS} chars"
            )
        self._key = key
        self.uid_root = uid_root

    def _mac(self, purpose: str, value: bytes) -> bytes:
        return hmac.new(self._key, purpose.encode() + b"\0" + value, hashlib.sha256).digest()

    def _uid_tag(self, body: int) -> int:
        digest = self._mac("uid-tag", body.to_bytes(_UID_BODY_BITS // 8, "big"))
        return int.from_bytes(digest[: _UID_TAG_BITS // 8], "big")

    def is_own_uid(self, uid: str) -> bool:
        """True if ``uid`` was produced by :meth:`uid` with this key and root."""
        prefix = self.uid_root + "."
        digits = uid[len(prefix) :]
        if not uid.startswith(prefix) or not digits.isdigit() or len(digits) > 39:
            return False
        number = int(digits)
        body, tag = number >> _UID_TAG_BITS, number & ((1 << _UID_TAG_BITS) - 1)
        return body < (1 << _UID_BODY_BITS) and hmac.compare_digest(
            tag.to_bytes(5, "big"), self._uid_tag(body).to_bytes(5, "big")
        )

    def uid(self, uid: str) -> str:
        """Replace a UID by ``<root>.<keyed integer>``; DICOM-defined UIDs are kept."""
        uid = uid.strip().rstrip("\0")
        if not uid or uid.startswith("1.2.840.10008.") or self.is_own_uid(uid):
            return uid
        body = int.from_bytes(self._mac("uid", uid.encode())[: _UID_BODY_BITS // 8], "big")
        return f"{self.uid_root}.{body << _UID_TAG_BITS | self._uid_tag(body)}"

    def is_own_pseudonym(self, value: str) -> bool:
        """True if ``value`` is a patient pseudonym made with this key."""
        if not _PSEUDONYM.match(value):
            return False
        body = bytes.fromhex(value[:16])
        return hmac.compare_digest(value[16:], self._mac("patient-tag", body)[:4].hex().upper())

    def pseudonym(self, patient: str) -> str:
        """A 24-character pseudonym for a patient identifier (keyed, checkable, idempotent)."""
        patient = patient.strip()
        if self.is_own_pseudonym(patient):
            return patient
        body = self._mac("patient", patient.encode())[:8]
        return (body + self._mac("patient-tag", body)[:4]).hex().upper()

    def date_offset(self, patient: str) -> int:
        """Days to add to every date of this patient: between -3652 and -366, never 0.

        A patient whose identifier is already one of our pseudonyms had its dates shifted
        in an earlier pass, so the offset is 0.
        """
        patient = patient.strip()
        if self.is_own_pseudonym(patient):
            return 0
        draw = int.from_bytes(self._mac("date-shift", patient.encode())[:4], "big")
        return -(_MIN_SHIFT_DAYS + draw % _SHIFT_SPAN_DAYS)
