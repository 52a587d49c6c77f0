"""The audit log: one row per prediction request, rejections included, never PHI.

Stored through SQLAlchemy 2: SQLite by default (WAL journal, ``synchronous=FULL``, so a
row that was committed survives a crash) or any database given by URL (PostgreSQL).
A row holds what is needed to trace a result back to a model and an input, and nothing
that identifies a patient: the input is known only by its SHA-256.

The service appends through one writer thread that commits whatever is queued in one
transaction (group commit): under load, requests share commits instead of queueing one
fsync each behind the database lock.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    Float,
    Integer,
    String,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from medlens.errors import ConfigError, MedlensError, ServiceError

__all__ = ["AuditRecord", "AuditStore", "export_records", "format_records", "migrate"]


class _Base(DeclarativeBase):
    pass


class _AuditRow(_Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    item: Mapped[int | None] = mapped_column(Integer)
    route: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(32))
    model_version: Mapped[str | None] = mapped_column(String(64))
    input_sha256: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(128))
    probability: Mapped[float | None] = mapped_column(Float)
    engine: Mapped[str | None] = mapped_column(String(32))
    latency_ms: Mapped[float] = mapped_column(Float)
    model_name: Mapped[str | None] = mapped_column(String(128))


@dataclass(frozen=True)
class AuditRecord:
    """One audit row. ``item`` is the file's index within a batch (None for single files)."""

    time: datetime
    request_id: str
    route: str
    status_code: int
    latency_ms: float
    item: int | None = None
    reason: str | None = None
    model_version: str | None = None
    input_sha256: str | None = None
    label: str | None = None
    probability: float | None = None
    engine: str | None = None
    model_name: str | None = None


log = logging.getLogger("medlens.serve")

COLUMNS = [f.name for f in fields(AuditRecord)]
MAX_BATCH = 512  # queued appends committed together at most

#: Called from the writer thread once records are committed (None) or failed (the error).
Done = Callable[[MedlensError | None], None]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class AuditStore:
    """Append and read audit records in one database."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self._label = _safe_url(url)
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ServiceError(f"cannot open the audit database {self._label}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if create:
            self._run(lambda: _Base.metadata.create_all(self.engine))
        self._run(lambda: migrate(self.engine))  # a database of an older medlens
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()

    def _run(self, action: Any) -> Any:
        try:
            return action()
        except SQLAlchemyError as exc:
            detail = exc.args[0] if exc.args else ""
            raise ServiceError(
                f"audit database {self._label}: {type(exc).__name__}: {detail}"
            ) from exc

    def write(self, records: Sequence[AuditRecord]) -> None:
        """Append ``records`` in one committed transaction."""
        if not records:
            return
        rows = [asdict(r) for r in records]

        def _insert() -> None:
            with self.engine.begin() as conn:
                conn.execute(insert(_AuditRow), rows)

        self._run(_insert)

    def append(self, records: Sequence[AuditRecord], done: Done | None = None) -> None:
        """Queue ``records`` for the writer thread; ``done`` is told when they are committed.

        Appends are committed in the order they were queued.
        """
        self._start_writer()
        self._queue.put((list(records), done))

    def flush(self) -> None:
        """Wait until every record queued so far is committed (or failed)."""
        if self._writer is None:
            return
        reached = threading.Event()
        self._queue.put(reached)
        reached.wait()

    def _start_writer(self) -> None:
        with self._writer_lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_queued, name="medlens-audit-writer", daemon=True
                )
                self._writer.start()

    def _write_queued(self) -> None:
        """The writer thread: take what is queued, commit it at once, tell the waiters."""
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get())
            stop = None in batch
            appends = [item for item in batch if isinstance(item, tuple)]
            error: MedlensError | None = None
            try:
                self.write([record for records, _done in appends for record in records])
            except MedlensError as exc:
                error = exc
            for _records, done in appends:
                if done is not None:
                    _tell(done, error)
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()

    def read(self, since: datetime | None = None, limit: int | None = None) -> list[AuditRecord]:
        """Records in time order, optionally only those at or after ``since`` (queued
        appends are committed first)."""
        self.flush()
        query = select(*(getattr(_AuditRow, c) for c in COLUMNS)).order_by(_AuditRow.id)
        if since is not None:
            query = query.where(_AuditRow.time >= since)
        if limit is not None:
            query = query.limit(limit)

        def _select() -> list[AuditRecord]:
            with self.engine.connect() as conn:
                return [AuditRecord(**_normalise(row._asdict())) for row in conn.execute(query)]

        return self._run(_select)

    def close(self) -> None:
        """Commit what is queued, stop the writer, release the database."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None
        self.engine.dispose()


def migrate(engine: Engine) -> list[str]:
    """Add the columns a database made by an older medlens lacks; return their names.

    Only new nullable columns are ever added, so old rows read back with ``None`` there.
    """
    from sqlalchemy import inspect, text

    table = _AuditRow.__table__
    inspector = inspect(engine)
    if not inspector.has_table(table.name):
        return []
    present = {c["name"] for c in inspector.get_columns(table.name)}
    missing = [c for c in table.columns if c.name not in present]
    for column in missing:
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
        except SQLAlchemyError:  # another worker added it first: fine; else a real error
            columns = inspect(engine).get_columns(table.name)
            if column.name not in {c["name"] for c in columns}:
                raise
    if missing:
        log.info("audit database: added column(s) %s", ", ".join(c.name for c in missing))
    return [c.name for c in missing]


def _tell(done: Done, error: MedlensError | None) -> None:
    try:
        done(error)
    except Exception:  # a waiter's bug must not stop the writer
        log.exception("audit completion callback failed")


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """SQLite returns naive datetimes; audit times are always UTC."""
    t = row["time"]
    if isinstance(t, datetime) and t.tzinfo is None:
        row["time"] = t.replace(tzinfo=timezone.utc)
    return row


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<unparsable URL>"


def _as_row(record: AuditRecord) -> dict[str, Any]:
    row = asdict(record)
    row["time"] = record.time.isoformat()
    return row


def export_records(records: Sequence[AuditRecord], fmt: str, path: str | Path) -> None:
    """Write records as ``csv`` or ``jsonl`` to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.writelines(format_records(records, fmt))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_records(records: Iterable[AuditRecord], fmt: str) -> Iterator[str]:
    """Render records as ``csv`` or ``jsonl`` text, chunk by chunk."""
    if fmt == "jsonl":
        for r in records:
            yield json.dumps(_as_row(r), sort_keys=False) + "\n"
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow(_as_row(r))
        yield buffer.getvalue()
    else:
        raise ConfigError(f"unknown audit format {fmt!r} (csv or jsonl)")
