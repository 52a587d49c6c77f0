"""``medlens curve``: label-efficiency curves of adaptation modes."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def curve(
    config: Path = typer.Argument(..., help="Training config (YAML)."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for the runs and curve."),
    fractions: str = typer.Option("1,5,10,25,100", help="Percent of training labels."),
    seeds: str = typer.Option("0,1,2", help="Seeds per point."),
    modes: str = typer.Option("scratch,probe,lora,full", help="Adaptation modes (see below)."),
    override: list[str] = typer.Option(
        [], "--set", help="MODE.key=value, e.g. scratch.model.name=simple_cnn (repeatable)."
    ),
    n_bootstrap: int = typer.Option(500, min=0, help="Bootstrap resamples for the AUC CIs."),
    accept_license: list[str] = typer.Option(
        [], "--accept-license", help="Accept this licence for gated/non-commercial weights."
    ),
) -> None:
    """Train every (mode, label fraction, seed) point, evaluate on the test split, plot AUC.

    Modes: scratch (no pretrained weights), probe (head on cached embeddings), lora (LoRA
    adapters + head on the frozen ImageNet backbone), full (fine-tune all weights from
    ImageNet with layer-wise lr decay 0.75). Finished points are reused on a rerun.

    Examples:

        medlens curve pneumonia.yaml -o curves/pneumonia --set scratch.model.name=simple_cnn
    """
    from medlens.pipeline.curve import label_efficiency, parse_mode_overrides, summarise

    chosen = parse_mode_overrides([m.strip() for m in modes.split(",") if m.strip()], override)
    for mode in chosen.values():
        if accept_license:
            mode["model.accept_license"] = list(accept_license)
    out = label_efficiency(
        config,
        output,
        fractions=[float(f) / 100 for f in fractions.split(",")],
        seeds=[int(s) for s in seeds.split(",")],
        modes=chosen,
        n_bootstrap=n_bootstrap,
        console=console,
    )
    import json

    for mode, rows in summarise(json.loads((out / "curve.json").read_text())["points"]).items():
        line = ", ".join(f"{r['fraction']:.0%}: {r['auc']:.3f}" for r in rows)
        console.print(f"{mode}: {line}")
    console.print(f"curve written to [bold]{out / 'report.html'}[/]")
