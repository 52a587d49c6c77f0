"""Small file helpers: hashes and atomic writes (temp file in the same folder + os.replace)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as indented JSON; readers never see a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        public_mode(tmp)
        with os.fdopen(fd, "w") as stream:
            json.dump(data, stream, indent=2, sort_keys=False)
            stream.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def public_mode(path: str | Path) -> None:
    """Give a ``mkstemp`` file (0600) mode 0644, so that a service running as another
    user can read what the CLI exported."""
    os.chmod(path, 0o644)


@contextlib.contextmanager
def staging_dir(parent: str | Path) -> Iterator[Path]:
    """A scratch folder inside ``parent`` that is always removed afterwards.

    Files are built and verified there, then moved into place with :func:`os.replace`
    (same file system, so each move is atomic); on any error nothing reaches ``parent``.
    """
    path = Path(tempfile.mkdtemp(dir=parent, prefix=".medlens-staging-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def file_record(path: Path) -> dict[str, Any]:
    """Name, size and hash of a file, as stored in ``export.json``."""
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
