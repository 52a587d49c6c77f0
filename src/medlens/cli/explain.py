"""``medlens explain``: heatmaps of where a trained run's model looked."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def explain(
    run: Path = typer.Argument(..., help="Run directory written by medlens train."),
    inputs: list[Path] = typer.Argument(
        ..., help="Image files or folders (DICOM, NIfTI, PNG/JPEG, ...).", show_default=False
    ),
    out: Path = typer.Option(..., "-o", "--out", help="Folder for the overlays and heatmaps."),
    method: str = typer.Option(
        "gradcam", "-m", "--method", help="gradcam, gradcam++, scorecam or occlusion."
    ),
    target: str | None = typer.Option(
        None, "-t", "--target", help="Class to explain (name or index); default: the predicted one."
    ),
    layer: str | None = typer.Option(
        None, "--layer", help="Target layer (dotted module name); default: the model's cam_layer."
    ),
) -> None:
    """Explain the prediction for every image in INPUTS.

    For each image, OUT gets NAME.METHOD.png, the heatmap over the windowed
    image with a colour bar, the predicted class and its probability, and
    NAME.METHOD.npy, the raw heatmap in [0, 1] on the model's input grid.
    Volumes get a volume heatmap and an overlay of their most relevant slices.

    Examples:

        medlens explain runs/pneumonia xrays/case1.png -o heatmaps/
        medlens explain runs/pneumonia xrays/ -m occlusion -t PNEUMONIA -o maps/
    """
    from medlens.errors import ConfigError
    from medlens.explain import METHODS, explain_files

    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    saved = explain_files(run, inputs, out, method=method, target=target, target_layer=layer)  # type: ignore[arg-type]
    for item in saved:
        console.print(
            f"{item.overlay.name}: predicted {item.label or '(none)'}, "
            f"{method} for {item.target} (p={item.probability:.2f})"
        )
    console.print(f"{len(saved)} explanation(s) written to [bold]{out}[/]")
