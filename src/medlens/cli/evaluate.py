"""``medlens evaluate``: metrics with confidence intervals and an HTML report for a run."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors

HEADLINE = ("roc_auc", "accuracy", "sensitivity", "specificity", "balanced_accuracy")
HEADLINE += ("mean_dice", "mean_hd95")  # segmentation runs


@handle_errors
def evaluate(
    run: Path = typer.Argument(..., help="Run directory written by medlens train."),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Other data: manifest, class folders or .npz (default: the run's); results go to "
        "eval/<data name>-<split>/.",
    ),
    split: str = typer.Option("test", "--split", help="Split to evaluate."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for CIs."),
    track: bool = typer.Option(
        False, "--track", help="Log metrics and report.html to the run's MLflow run."
    ),
    track_uri: str | None = typer.Option(
        None, "--track-uri", help="MLflow tracking URI for a run trained without tracking."
    ),
) -> None:
    """Write metrics.json, predictions.csv and report.html for a run, into eval/<split>/.

    With --data, into eval/<data name>-<split>/ instead, so the run's own evaluation stays:
    the data folder's name (a file's name without extension; for manifest.csv its folder's),
    characters other than letters, digits, '.', '_' and '-' replaced by '_'.

    Examples:

        medlens evaluate runs/pneumonia                       # runs/pneumonia/eval/test/

        medlens evaluate runs/pneumonia --data other_hospital/ --split test
        # runs/pneumonia/eval/other_hospital-test/

        medlens evaluate runs/pneumonia --track     # to the run's MLflow run (tracking.json)
    """
    import json

    from medlens.pipeline import evaluate_run

    out = evaluate_run(run, data=data, split=split, n_bootstrap=bootstrap)
    written = json.loads((out / "metrics.json").read_text())
    if "overall" in written:  # a generation run: its samples against the real split
        overall = written["overall"]
        console.print(
            f"FID {overall['fid']:.2f}, KID {overall['kid']['mean']:.4f}, precision "
            f"{overall['precision']:.3f}, recall {overall['recall']:.3f}, memorised "
            f"{100 * overall['memorisation_rate']:.1f}% ({written['extractor']} features)"
        )
        console.print(f"report: [bold]{out / 'report.html'}[/]", soft_wrap=True)
        return
    metrics = written["metrics"]
    if "ordinal" in written:  # graded runs: QWK, MAE and accuracy of the decided grade first
        ordinal = written["ordinal"]["metrics"]
        metrics = {**{f"grade_{k}": v for k, v in ordinal.items()}, **metrics}
    for name in [n for n in metrics if n.startswith("grade_")] + list(HEADLINE):
        m = metrics.get(name) or {}
        if m.get("value") is not None:
            ci = (
                f" (95% CI {m['ci_low']:.3f}-{m['ci_high']:.3f})"
                if m.get("ci_low") is not None
                else ""
            )
            console.print(f"{name:>18}: {m['value']:.3f}{ci}")
    console.print(f"written to: {out}/ (metrics.json, predictions.csv)", soft_wrap=True)
    console.print(f"report: [bold]{out / 'report.html'}[/]", soft_wrap=True)
    if track:
        from medlens.tracking import log_evaluation

        run_id = log_evaluation(run, out, uri=track_uri)
        console.print(f"logged to MLflow run {run_id}")
