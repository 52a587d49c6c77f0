"""``medlens evaluate-generation``: synthetic images against real data, in one report."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def evaluate_generation(
    synthetic: Path = typer.Argument(..., help="Folder of class sub-folders of images."),
    real: Path = typer.Option(..., "--real", help="Real data: a manifest or dataset source."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for metrics and report."),
    features: str = typer.Option("lite0", help="lite0[@SIZE] (offline), run:PATH, inception."),
    split: str = typer.Option("test", help="The real split to compare with."),
    train_split: str = typer.Option("train", help="The split checked for memorisation."),
    tstr: bool = typer.Option(False, help="Also train on synthetic, test on real (AUC)."),
    tstr_epochs: int = typer.Option(10, min=1),
    seed: int = typer.Option(0),
    cache: Path | None = typer.Option(
        None, help="Keep the features of each image set here and reuse them next time."
    ),
) -> None:
    """FID, KID, precision/recall, MS-SSIM diversity and memorisation of SYNTHETIC images.

    Examples:

        medlens evaluate-generation gen-out/ --real pneumoniamnist.npz -o eval/gen
        medlens evaluate-generation gen-out/ --real data.npz --features run:runs/cnn --tstr -o e
    """
    import json

    from medlens.evaluation.generative import evaluate_generation as run_evaluation

    out = run_evaluation(
        synthetic,
        real,
        output,
        features=features,
        split=split,
        train_split=train_split,
        seed=seed,
        tstr=tstr,
        tstr_options={"epochs": tstr_epochs},
        feature_cache=cache,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    overall = metrics["overall"]
    console.print(
        f"FID {overall['fid']:.2f}, KID {overall['kid']['mean']:.4f}, precision "
        f"{overall['precision']:.3f}, recall {overall['recall']:.3f}, memorised "
        f"{100 * overall['memorisation_rate']:.1f}% ({metrics['extractor']} features)"
    )
    if metrics.get("tstr"):
        auc = metrics["tstr"]["tstr"]["roc_auc"]["value"]
        console.print(f"TSTR AUC {auc:.3f}")
    console.print(f"report: [bold]{out / 'report.html'}[/]", soft_wrap=True)
