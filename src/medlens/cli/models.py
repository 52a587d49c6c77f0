"""``medlens models``: the model registry, one row per model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from medlens.cli._common import console, handle_errors

if TYPE_CHECKING:
    from medlens.models import ModelInfo


@handle_errors
def models(
    pattern: str | None = typer.Argument(None, help="Shell-style filter, e.g. 'resnet*'."),
    kind: str | None = typer.Option(
        None, "--kind", help="classifier, segmenter or generator.", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the registered models: kind, image dimensions, ImageNet weights, options.

    Examples:

        medlens models

        medlens models --kind segmenter

        medlens models 'efficientnet*' --json
    """
    import json

    from rich.table import Table

    from medlens.errors import ConfigError
    from medlens.models import list_models, model_info

    if kind not in (None, "classifier", "segmenter", "generator"):
        raise ConfigError(f"--kind is classifier, segmenter or generator, not {kind!r}")
    rows = [_row(model_info(name)) for name in list_models(pattern, kind=kind)]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("model", "kind", "dims", "ImageNet", "input", "options", "description")
    for row in rows:
        table.add_row(
            row["name"], row["kind"], "/".join(f"{d}D" for d in row["spatial_dims"]),
            row["imagenet"] or "-", str(row["input_size"] or "plan"),
            ", ".join(row["options"]) or "-", row["description"],
        )  # fmt: skip
    console.print(table)


def _row(info: ModelInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "kind": info.kind,
        "family": info.family,
        "spatial_dims": list(info.spatial_dims),
        "imagenet": info.cfg.imagenet,
        "input_size": info.cfg.input_size,
        "options": list(info.options),
        "description": info.description,
    }
