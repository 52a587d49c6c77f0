"""``medlens audit``: print or export the service's audit log."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``24h``, ``7d`` (ago) or an ISO date/time (UTC unless it says otherwise)."""
    from medlens.errors import ConfigError

    now = now or datetime.now(timezone.utc)
    match = _RELATIVE.match(text.strip().lower())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: give a duration (30m, 24h, 7d) or an ISO date/time"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@handle_errors
def audit(
    run: Path | None = typer.Argument(
        None, help="Run directory whose default audit database (audit.sqlite) to read."
    ),
    db: str | None = typer.Option(None, "--db", help="Audit database: a SQLite file or a URL."),
    since: str | None = typer.Option(
        None, "--since", help="Only rows from then on: 30m, 24h, 7d or an ISO date/time."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or jsonl."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file (atomically) instead of the terminal."
    ),
    limit: int | None = typer.Option(None, "--limit", help="At most this many rows."),
) -> None:
    """Show the audit log: one row per file of every prediction request, refusals included.

    Examples:

        medlens audit runs/pneumonia --since 24h

        medlens audit --db postgresql://audit@db/medlens --format csv -o audit.csv
    """
    from medlens.errors import ConfigError
    from medlens.serve.audit import AuditStore, export_records, format_records
    from medlens.serve.settings import database_url

    if fmt not in ("table", "csv", "jsonl"):
        raise ConfigError(f"--format {fmt!r}: use table, csv or jsonl")
    if (run is None) == (db is None):
        raise ConfigError("give a run directory or --db (one of them)")
    source = db if db is not None else run / "audit.sqlite"  # type: ignore[operator]
    if "://" not in str(source) and not Path(str(source)).is_file():
        raise ConfigError(f"no audit database at {source}")
    store = AuditStore(database_url(source), create=False)
    try:
        records = store.read(since=parse_since(since) if since else None, limit=limit)
    finally:
        store.close()
    if fmt == "table":
        if output is not None:
            raise ConfigError("--output needs --format csv or jsonl")
        _print_table(records)
        return
    if output is None:
        typer.echo("".join(format_records(records, fmt)), nl=False)
        return
    export_records(records, fmt, output)
    console.print(f"{len(records)} audit rows written to {output}")


def _print_table(records: list) -> None:
    """A compact view; csv/jsonl carry every column (route, engine, input hash)."""
    from rich.table import Table

    table = Table(title=f"audit log ({len(records)} rows)")
    table.add_column("time (UTC)", no_wrap=True)
    for column in ("request", "item", "status", "reason", "model", "label"):
        table.add_column(column, overflow="fold")
    table.add_column("p", justify="right")
    table.add_column("ms", justify="right")
    for r in records:
        table.add_row(
            r.time.strftime("%m-%d %H:%M:%S"),
            r.request_id[:8],
            "" if r.item is None else str(r.item),
            str(r.status_code),
            r.reason or "",
            r.model_version or "",
            r.label or "",
            "" if r.probability is None else f"{r.probability:.3f}",
            f"{r.latency_ms:.0f}",
        )
    console.print(table)
