"""``medlens export``: ONNX (optionally int8) beside a run, verified before it is written."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import console, handle_errors


class Format(str, Enum):
    onnx = "onnx"


class Quantization(str, Enum):
    none = "none"
    dynamic = "dynamic"
    int8 = "int8"


@handle_errors
def export(
    run: Path = typer.Argument(..., help="A trained run directory (model.json)."),
    fmt: Format = typer.Option(Format.onnx, "--format", help="Export format."),
    quantize: Quantization = typer.Option(
        Quantization.none, "--quantize", help="int8: static QDQ, calibrated; dynamic: weights."
    ),
    calibration_data: Path | None = typer.Option(
        None,
        "--calibration-data",
        help="Manifest: calibration on its train rows, verification on its val rows "
        "(default: the run's manifest.csv).",
    ),
    opset: int | None = typer.Option(None, "--opset", help="ONNX opset (default 20)."),
    max_abs_diff: float = typer.Option(
        1e-3, "--max-abs-diff", min=0.0, help="fp32: largest |logit difference| allowed."
    ),
    min_agreement: float = typer.Option(
        0.97, "--min-agreement", min=0.0, max=1.0, help="int8: least label agreement."
    ),
    max_auc_drop: float = typer.Option(
        0.005, "--max-auc-drop", min=0.0, help="int8: largest AUC fall allowed."
    ),
    min_dice_agreement: float = typer.Option(
        0.99,
        "--min-dice-agreement",
        min=0.0,
        max=1.0,
        help="Segmentation: least Dice overlap per class of the exported and PyTorch label maps.",
    ),
    reduce_range: bool = typer.Option(
        False, "--reduce-range", help="int8: 7-bit weights (CPUs without VNNI)."
    ),
) -> None:
    """Export a run to ONNX beside its weights, verify it against PyTorch, write export.json.

    Segmentation runs are verified by sliding windows over held-out volumes (logits and
    Dice agreement of the label maps). An export that fails its tolerance is refused
    (exit code 1) and nothing is written.

    Examples:

        medlens export runs/pneumonia

        medlens export runs/pneumonia --quantize int8

        medlens export runs/hippocampus --quantize int8
    """
    from medlens.export import DEFAULT_OPSET, Tolerance
    from medlens.export.run import export_run

    tolerance = Tolerance(max_abs_diff, min_agreement, max_auc_drop, min_dice_agreement)
    result = export_run(
        run,
        quantize=quantize.value,  # type: ignore[arg-type]
        data=calibration_data,
        opset=opset or DEFAULT_OPSET,
        tolerance=tolerance,
        reduce_range=reduce_range,
    )
    _print_verification(result.verifications)
    for path in result.files:
        console.print(f"wrote [bold]{path}[/] ({path.stat().st_size / 1e6:.2f} MB)")
    console.print(f"deployed: {result.model.name} (see {run / 'export.json'})")


def _print_verification(verifications: dict[str, dict[str, Any]]) -> None:
    from rich.table import Table

    if any("dice_agreement" in v for v in verifications.values()):
        _print_segmentation(verifications)
        return
    table = Table(title="verification against PyTorch")
    for column in ("model", "images", "max |Δlogit|", "label agreement", "AUC", "AUC change"):
        table.add_column(column)
    for name, v in verifications.items():
        table.add_row(
            name,
            str(v["n_images"]),
            f"{v['max_abs_diff']:.2e}",
            f"{v['label_agreement']:.4f}",
            _num(v["auc_exported"]),
            _num(v["auc_change"], signed=True),
        )
    console.print(table)


def _print_segmentation(verifications: dict[str, dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="verification against PyTorch (sliding windows, held-out volumes)")
    for column in ("model", "volumes", "max |Δlogit|", "voxel agreement", "Dice agreement"):
        table.add_column(column)
    for name, v in verifications.items():
        dice = ", ".join(f"{k} {_num(d)}" for k, d in v["dice_agreement"].items())
        table.add_row(
            name,
            str(v["n_cases"]),
            f"{v['max_abs_diff']:.2e}",
            f"{v['voxel_agreement']:.4f}",
            dice,
        )
    console.print(table)


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
