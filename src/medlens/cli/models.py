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
    info: str | None = typer.Option(
        None, "--info", help="Show one foundation backbone's catalogue entry.", show_default=False
    ),
    download: str | None = typer.Option(
        None,
        "--download",
        help="Fetch and verify a foundation backbone's hub weights.",
        show_default=False,
    ),  # fmt: skip
    accept_license: list[str] = typer.Option(
        [], "--accept-license", help="Accept this licence for gated/non-commercial weights."
    ),
) -> None:
    """List the registered models: kind, image dimensions, ImageNet weights, options;
    then the foundation backbones: source, licence, gate, input size, embedding size.

    Examples:

        medlens models

        medlens models --kind segmenter

        medlens models 'efficientnet*' --json

        medlens models --info rad_dino

        medlens models --download uni --accept-license CC-BY-NC-ND-4.0
    """
    import json

    from rich.table import Table

    from medlens.errors import ConfigError
    from medlens.models import list_models, model_info

    if info is not None or download is not None:
        _foundation(info, download, accept_license, as_json)
        return
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
    _catalog_table(pattern)


def _catalog_table(pattern: str | None) -> None:
    import fnmatch

    from rich.table import Table

    from medlens.models.foundation import catalog

    entries = [e for e in catalog() if not pattern or fnmatch.fnmatch(e.name, pattern)]
    if not entries:
        return
    table = Table(
        "backbone", "source", "hub id", "licence", "gated", "commercial", "input", "dim",
        title="Foundation backbones (medlens models --info NAME)",
    )  # fmt: skip
    for e in entries:
        table.add_row(
            e.name, e.source, e.repo_id, e.license, "yes" if e.gated else "no",
            "no" if e.non_commercial else "yes", str(e.input_size), str(e.dim),
        )  # fmt: skip
    console.print(table)


def _foundation(info: str | None, download: str | None, accepted: list[str], as_json: bool) -> None:
    """``--info``: the entry (and parameter count); ``--download``: fetch and verify."""
    import json

    from medlens.models.foundation import fetch_weights, foundation_entry

    if download is not None:
        snapshot = fetch_weights(download, accept_license=accepted)
        console.print(f"{download}: verified weights in [bold]{snapshot.folder}[/]", soft_wrap=True)
        for name, sha in snapshot.sha256.items():
            console.print(f"  {name} sha256 {sha}", soft_wrap=True)
        return
    entry = foundation_entry(info)  # type: ignore[arg-type]
    data = entry.to_dict()
    if entry.loadable:
        data["backbone_params"] = _param_count(entry.name, entry.input_size)
    if as_json:
        console.print_json(json.dumps(data))
        return
    unset = {
        "sha256": "not verified: hashed and recorded at first use",
        "revision": "not pinned (hub main; its commit is recorded)",
        "arch": "-",
    }
    for key, value in data.items():
        shown = unset[key] if key in unset and value in ({}, None) else value
        console.print(f"[bold]{key}[/]: {shown}", soft_wrap=True)


def _param_count(name: str, image_size: int) -> int:
    """Backbone parameters of the architecture at random initialisation."""
    import torch

    from medlens.models import create_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=1, in_chans=3, image_size=image_size)
    return sum(p.numel() for p in model.backbone.parameters())  # type: ignore[union-attr]


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
        **_licence(info),
    }


def _licence(info: ModelInfo) -> dict[str, Any]:
    """Licence fields of a foundation backbone (none for other models)."""
    if info.family != "foundation":
        return {}
    from medlens.models.foundation import foundation_entry

    entry = foundation_entry(info.name)
    return {"license": entry.license, "gated": entry.gated, "non_commercial": entry.non_commercial}
