"""The training callback that logs a run to MLflow, and the logging of an evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medlens.tracking.mlflow_run import RUN_ARTIFACTS, TrackedRun, open_tracked_run

if TYPE_CHECKING:
    from medlens.config import TrackingConfig
    from medlens.training.loop import EpochResult, Trainer

__all__ = ["TrackingCallback", "log_evaluation"]


class TrackingCallback:
    """Params and tags at the start, metrics every epoch, the run's files at the end.

    Build it in the main process only (rank 0), like the other writing callbacks. The
    training function calls :meth:`finish` once the weights and the card are written, and
    :meth:`fail` when training raised.
    """

    def __init__(self, run_dir: str | Path, config: TrackingConfig) -> None:
        self.run_dir, self.config = Path(run_dir), config
        self.run: TrackedRun | None = None
        self.logged_through = -1  # epochs already in MLflow (a resumed run re-runs some)

    def on_train_start(self, trainer: Trainer) -> None:
        self.run = open_tracked_run(
            self.run_dir, uri=self.config.uri, experiment=self.config.experiment
        )
        self.logged_through = self.run.last_step("train_loss")

    def on_epoch_end(self, trainer: Trainer, result: EpochResult) -> None:
        # an epoch re-run after a resume gives the same figures (resume is bit-for-bit):
        # logged once, not twice
        if self.run is not None and result.epoch > self.logged_through:
            figures = {"train_loss": result.train_loss, "lr": result.lr, **result.metrics}
            self.run.log_metrics(figures, step=result.epoch)

    def finish(self) -> None:
        """Log config, card, metrics and fingerprint; mark the MLflow run finished."""
        if self.run is None:
            return
        card = self.run_dir / "model.json"
        if card.is_file():
            training = json.loads(card.read_text()).get("training") or {}
            best = {f"best_{training.get('monitor')}": training.get("best"),
                    "best_epoch": training.get("best_epoch")}  # fmt: skip
            self.run.log_metrics(best, step=0)
        self.run.log_files(self.run_dir, RUN_ARTIFACTS, None)
        self.run.end("FINISHED")

    def fail(self) -> None:
        if self.run is not None:
            self.run.end("FAILED")


def log_evaluation(run_dir: str | Path, eval_dir: str | Path, *, uri: str | None = None) -> str:
    """Log an evaluation folder (metrics.json, report.html) to the run's MLflow run.

    Metrics are named ``<folder>_<metric>`` (``test_roc_auc``); files go under
    ``eval/<folder>/``. A run trained without tracking gets a new MLflow run (recorded in
    its ``tracking.json``). Returns the MLflow run id.
    """
    run_dir, eval_dir = Path(run_dir), Path(eval_dir)
    run = open_tracked_run(run_dir, uri=uri)
    written = json.loads((eval_dir / "metrics.json").read_text())
    figures = _values(written.get("metrics", {}))
    figures |= {
        f"grade_{k}": v for k, v in _values(written.get("ordinal", {}).get("metrics", {})).items()
    }
    run.log_metrics({f"{eval_dir.name}_{k}": v for k, v in figures.items()}, step=0)
    run.log_files(eval_dir, ("metrics.json", "report.html"), f"eval/{eval_dir.name}")
    run.log_files(run_dir, ("model.json",), None)
    run.end("FINISHED")
    return run.run_id


def _values(metrics: dict[str, Any]) -> dict[str, float]:
    """``{name: value}`` of a metrics.json section (entries ``{"value": ..., "ci_low": ...}``)."""
    out = {}
    for name, entry in metrics.items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out
