"""The audit store and the ``medlens audit`` command."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medlens.cli import app
from medlens.errors import ConfigError, ServiceError
from medlens.serve.audit import AuditRecord, AuditStore, format_records

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def record(minutes: int, **changes) -> AuditRecord:
    values = dict(
        time=T0 + timedelta(minutes=minutes),
        request_id=f"req{minutes:04d}",
        route="/v1/predict",
        status_code=200,
        latency_ms=12.5,
        model_version="abc123",
        input_sha256="f" * 64,
        label="PNEUMONIA",
        probability=0.9,
        engine="torch",
    )
    return AuditRecord(**{**values, **changes})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.sqlite"
    store = AuditStore(f"sqlite:///{path}")
    store.write(
        [
            record(0),
            record(
                30,
                status_code=415,
                reason="unsupported_media_type",
                label=None,
                probability=None,
                engine=None,
            ),
        ]
    )
    store.write([record(90, item=0), record(90, item=1, request_id="req0090")])
    store.close()
    return path


def test_round_trip_and_since(db: Path) -> None:
    store = AuditStore(f"sqlite:///{db}", create=False)
    rows = store.read()
    store.close()
    assert [r.request_id for r in rows] == ["req0000", "req0030", "req0090", "req0090"]
    assert rows[0] == record(0)
    assert rows[1].reason == "unsupported_media_type" and rows[1].label is None
    assert [r.item for r in store.read(since=T0 + timedelta(minutes=60))] == [0, 1]
    assert len(store.read(limit=1)) == 1  # a closed engine reconnects on demand


def test_formats(db: Path) -> None:
    store = AuditStore(f"sqlite:///{db}")
    rows = store.read()
    store.close()
    lines = "".join(format_records(rows, "jsonl")).splitlines()
    assert json.loads(lines[0])["time"] == T0.isoformat()
    table = list(csv.DictReader(io.StringIO("".join(format_records(rows, "csv")))))
    assert [r["status_code"] for r in table] == ["200", "415", "200", "200"]
    with pytest.raises(ConfigError):
        list(format_records(rows, "xml"))


def test_unusable_database_is_a_service_error(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="audit database"):
        AuditStore(f"sqlite:///{tmp_path}/missing/dir/audit.sqlite")
    with pytest.raises(ServiceError, match="audit database"):
        AuditStore("nosuchdialect://user:secret@host/db")


def test_cli_table_csv_jsonl(db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    table = runner.invoke(app, ["audit", "--db", str(db)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "4 rows" in table.output and "unsupported_media_type" in table.output
    jsonl = runner.invoke(app, ["audit", "--db", str(db), "--format", "jsonl", "--limit", "2"])
    assert [json.loads(line)["request_id"] for line in jsonl.output.splitlines()] == [
        "req0000",
        "req0030",
    ]
    out = tmp_path / "audit.csv"
    since = (T0 + timedelta(minutes=60)).isoformat()
    written = runner.invoke(
        app, ["audit", "--db", str(db), "-f", "csv", "-o", str(out), "--since", since]
    )
    assert written.exit_code == 0, written.output
    assert [r["item"] for r in csv.DictReader(io.StringIO(out.read_text()))] == ["0", "1"]


def test_cli_reads_a_run_directory(db: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["audit", str(db.parent), "--format", "jsonl"])
    assert result.exit_code == 0 and len(result.output.splitlines()) == 4


@pytest.mark.parametrize(
    "args",
    [["audit"], ["audit", "--db", "nowhere.sqlite"], ["audit", "--db", "x", "-f", "xml"]],
)
def test_cli_errors(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "error:" in result.output


def test_parse_since() -> None:
    from medlens.cli.audit import parse_since

    now = T0
    assert parse_since("30m", now) == T0 - timedelta(minutes=30)
    assert parse_since("7d", now) == T0 - timedelta(days=7)
    assert parse_since("2026-01-01T00:00:00", now) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ConfigError):
        parse_since("yesterday", now)


def test_a_database_of_an_older_medlens_gains_the_model_name_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # the audit_log table as medlens 0.1 made it
        conn.execute(
            "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, time DATETIME, request_id "
            "VARCHAR(36), item INTEGER, route VARCHAR(64), status_code INTEGER, reason "
            "VARCHAR(32), model_version VARCHAR(64), input_sha256 VARCHAR(64), label "
            "VARCHAR(128), probability FLOAT, engine VARCHAR(32), latency_ms FLOAT)"
        )
        conn.execute(
            "INSERT INTO audit_log (time, request_id, route, status_code, model_version, "
            "latency_ms) VALUES ('2026-01-02 03:04:05', 'old', '/v1/predict', 200, 'v0', 1.0)"
        )
    reader = AuditStore(f"sqlite:///{path}", create=False)  # medlens audit on the old file
    (old,) = reader.read()
    reader.close()
    assert (old.request_id, old.model_version, old.model_name) == ("old", "v0", None)
    store = AuditStore(f"sqlite:///{path}")
    store.write([record(1, model_name="pneumonia", model_version="3")])
    rows = store.read()
    store.close()
    assert [(r.model_name, r.model_version) for r in rows] == [(None, "v0"), ("pneumonia", "3")]
    again = AuditStore(f"sqlite:///{path}")  # migrating twice changes nothing
    assert len(again.read()) == 2
    again.close()
