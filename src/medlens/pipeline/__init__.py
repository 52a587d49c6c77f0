"""The pipeline as three calls for every task, each writing its result to disk.

>>> run = train_run(load_config("configs/pneumoniamnist.yaml"))    # doctest: +SKIP
>>> evaluate_run(run, split="test")  # eval/test/{metrics.json,predictions.csv,report.html}
>>> evaluate_run(run, data="other_hospital/")  # eval/other_hospital-test/   # doctest: +SKIP
>>> predict_files(run, ["scans/"], "predictions.csv")               # doctest: +SKIP

The run's card says the task; classification and segmentation each have their module
(:mod:`.classification`, :mod:`.segmentation`). The CLI commands ``train``, ``evaluate``
and ``predict`` are thin wrappers over these.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medlens.card import read_card
from medlens.config import load_config
from medlens.data.sources import find_images
from medlens.tasks import train_run

__all__ = ["evaluate_run", "find_images", "load_config", "predict_files", "train_run"]


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    split: str = "test",
    n_bootstrap: int = 1000,
    examples: int = 4,
) -> Path:
    """Evaluate a run on one split; write metrics, predictions and report, return the folder.

    ``data`` is a manifest (CSV or folder holding ``manifest.csv``) or a dataset source
    (class folders, MedMNIST ``.npz``, a Decathlon or ``images/`` + ``masks/`` folder);
    default: the run's own ``manifest.csv``. Rows of ``split`` are used; a source without
    splits is used whole.

    The folder: ``eval/<split>/`` for the run's own data, ``eval/<data name>-<split>/``
    for other data, so that it never replaces the run's own evaluation; the name is the
    data folder's (a file's: its name without extension), sanitised. See
    :func:`medlens.evaluation._io.evaluation_dir`. A generation run is sampled and its
    samples scored against the real split (:mod:`medlens.pipeline.generation`).
    """
    options = {"data": data, "split": split, "n_bootstrap": n_bootstrap, "examples": examples}
    family = read_card(run_dir).family
    if family == "generation":  # samples vs real images: FID/KID, precision/recall, ...
        from medlens.pipeline.generation import evaluate_generation_run

        return evaluate_generation_run(run_dir, data=data, split=split)
    if family == "segmentation":
        from medlens.pipeline.segmentation import evaluate_segmentation

        return evaluate_segmentation(run_dir, **options)  # type: ignore[arg-type]
    from medlens.pipeline.classification import evaluate_classification

    return evaluate_classification(run_dir, **options)  # type: ignore[arg-type]


def predict_files(
    run_dir: str | Path, inputs: Sequence[str | Path], output: str | Path | None = None
) -> Path:
    """Predict every image under ``inputs`` (files or folders); write a CSV, return its path.

    Classification: one row per image with the decided label and each class's probability
    (a volume given to a 2D model is reduced to its middle slice). Segmentation: a label map
    per input beside the CSV (NIfTI, palette PNG for 2D raster inputs, DICOM SEG for DICOM
    series) and one row per input with each class's volume.
    """
    family = read_card(run_dir).family
    if family == "generation":
        from medlens.errors import ModelError

        raise ModelError(f"{run_dir} is a generation run: use `medlens generate`, not predict")
    if family == "segmentation":
        from medlens.pipeline.segmentation import predict_volumes

        return predict_volumes(run_dir, inputs, output)
    from medlens.pipeline.classification import predict_classification

    return predict_classification(run_dir, inputs, output)
