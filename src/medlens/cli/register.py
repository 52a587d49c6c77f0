"""``medlens register``: register a run's model in the MLflow model registry."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def register(
    run: Path = typer.Argument(..., help="Run directory written by medlens train."),
    name: str = typer.Option(..., "--name", help="Registered model name."),
    alias: str | None = typer.Option(None, "--alias", help="Alias to point at this version."),
    track_uri: str | None = typer.Option(
        None,
        "--track-uri",
        help="MLflow tracking URI (default: the run's tracking.json, else sqlite:///./mlruns.db).",
    ),
) -> None:
    """Register RUN's weights and model card as a new version of a registered model.

    Serve it with `medlens serve models:/NAME/VERSION` or `models:/NAME@ALIAS`.

    Examples:

        medlens register runs/pneumonia --name pneumonia --alias champion

        medlens serve models:/pneumonia@champion
    """
    from medlens.tracking import register_run

    info = register_run(run, name, alias=alias, tracking_uri=track_uri)
    aliased = f" (alias {alias})" if alias else ""
    console.print(f"registered [bold]models:/{info.name}/{info.version}[/]{aliased}")
