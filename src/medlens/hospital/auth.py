"""Credentials for DICOMweb, read from the environment or a file; never logged.

- ``MEDLENS_DICOMWEB_TOKEN`` or ``MEDLENS_DICOMWEB_TOKEN_FILE``: a bearer token;
- ``MEDLENS_DICOMWEB_BASIC`` or ``MEDLENS_DICOMWEB_BASIC_FILE``: ``user:password``.

A ``*_FILE`` variable names a file whose first line is the secret (as Docker secrets are).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medlens.errors import ConfigError

__all__ = ["dicomweb_session"]


def _secret(env: Mapping[str, str], name: str) -> str | None:
    if env.get(name):
        return env[name].strip()
    file = env.get(f"{name}_FILE")
    if not file:
        return None
    try:
        lines = Path(file).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE: cannot read the file it names ({exc.strerror})") from exc
    if not lines or not lines[0].strip():
        raise ConfigError(f"{name}_FILE names an empty file")
    return lines[0].strip()


def dicomweb_session(env: Mapping[str, str] | None = None) -> Any:
    """A ``requests.Session`` carrying the configured credentials (or none)."""
    import requests

    env = os.environ if env is None else env
    session = requests.Session()
    token, basic = _secret(env, "MEDLENS_DICOMWEB_TOKEN"), _secret(env, "MEDLENS_DICOMWEB_BASIC")
    if token and basic:
        raise ConfigError("set either a DICOMweb token or basic credentials, not both")
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    elif basic:
        user, sep, password = basic.partition(":")
        if not sep or not user:
            raise ConfigError("MEDLENS_DICOMWEB_BASIC must be user:password")
        session.auth = (user, password)
    return session
