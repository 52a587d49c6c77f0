"""Helpers shared by the CLI commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from medlens.errors import MedlensError

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)


def version_callback(value: bool) -> None:
    if value:
        from medlens import __version__

        console.print(f"medlens {__version__}")
        raise typer.Exit()


def handle_errors(func: F) -> F:
    """Turn a :class:`MedlensError` into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MedlensError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]
