"""Typed service settings, validated once and passed to :func:`create_app`."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from medlens.errors import ServiceError

MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True if ``host`` only accepts connections from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_private(path: Path) -> None:
    """Refuse a secret file that others can read (as the de-identification key file)."""
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ServiceError(f"token file {path} is readable by others: run chmod 600 on it")


def database_url(value: str | Path) -> str:
    """A SQLAlchemy URL from a URL or a plain file path (SQLite)."""
    text = str(value)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


class ServeSettings(BaseSettings):
    """Everything the service needs to start; environment variables ``MEDLENS_SERVE_*``.

    Built explicitly (``ServeSettings(run_dir=...)``) or from the environment by the
    multi-worker factory :func:`medlens.serve.create_app_from_env`; never at import time.
    """

    model_config = SettingsConfigDict(env_prefix="MEDLENS_SERVE_", extra="forbid")

    run_dir: Path
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    api_token: SecretStr | None = None
    token_file: Path | None = None
    max_upload_mb: float = Field(64.0, gt=0)
    max_batch_files: int = Field(16, ge=1)
    max_concurrency: int = Field(2, ge=1)
    torch_threads: int = Field(1, ge=1, le=256)
    queue_size: int = Field(8, ge=0)
    inference_timeout_s: float = Field(30.0, gt=0)
    retry_after_s: int = Field(1, ge=1)
    body_timeout_s: float = Field(60.0, gt=0)
    max_uploads_per_client: int = Field(4, ge=1)
    database_url: str | None = None
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("run_dir", "token_file")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def audit_url(self) -> str:
        """The audit database: the given URL or path, else ``audit.sqlite`` in the run dir."""
        return database_url(self.database_url or self.run_dir / "audit.sqlite")

    def token(self) -> str | None:
        """The API token, from ``api_token`` or the first line of ``token_file``."""
        if self.api_token is not None:
            return self.api_token.get_secret_value() or None
        if self.token_file is None:
            return None
        try:
            check_private(self.token_file)
            text = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ServiceError(f"cannot read the token file {self.token_file}: {exc}") from exc
        if not text:
            raise ServiceError(f"the token file {self.token_file} is empty")
        return text.splitlines()[0].strip()

    def check_safe(self) -> None:
        """Refuse settings that would expose the service: non-loopback host without a token."""
        token = self.token()
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ServiceError(f"the API token must have at least {MIN_TOKEN_LENGTH} characters")
        if not is_loopback(self.host) and not token:
            raise ServiceError(
                f"refusing to listen on {self.host} without an API token: "
                "give --token-file (or bind to 127.0.0.1)"
            )
        if not (self.run_dir / "model.json").is_file():
            raise ServiceError(f"{self.run_dir} is not a run directory (no model.json)")
