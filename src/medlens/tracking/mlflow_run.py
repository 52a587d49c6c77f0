"""MLflow runs for medlens run directories: start or reopen one, log what a run holds.

MLflow is imported only here (and in :mod:`.registry`), inside functions: medlens works
without it and says how to install it when tracking is asked for. A run directory that is
tracked holds ``tracking.json`` (tracking URI, experiment and MLflow run id), so that
``--resume``, ``medlens evaluate --track`` and ``medlens register`` log to the same run.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from medlens.errors import ConfigError, MedlensError
from medlens.training.checkpoint import atomic_write_text, sha256_file

__all__ = [
    "TRACKING_FILE",
    "TrackedRun",
    "default_tracking_uri",
    "flatten",
    "git_commit",
    "open_tracked_run",
    "read_tracking",
    "run_tags",
]

TRACKING_FILE = "tracking.json"
RUN_ARTIFACTS = ("config.yaml", "model.json", "metrics.jsonl", "fingerprint.json", "plan.json")
_MAX_PARAM = 6000  # MLflow's longest parameter value
_BATCH = 100  # MLflow's most params per log_batch call


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else a SQLite file ``mlruns.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlruns.db'}"


def mlflow_client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri`` (tracking and model registry alike)."""
    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        raise ConfigError("experiment tracking needs MLflow: pip install 'medlens[track]'") from exc
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def artifact_root(uri: str) -> str | None:
    """``<folder of the SQLite file>/mlartifacts`` as a file URI; a server decides itself."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    return (database.parent / "mlartifacts").resolve().as_uri()


class TrackedRun:
    """One MLflow run of a medlens run directory; every call logs at once (no buffering)."""

    def __init__(self, client: Any, run_id: str, uri: str) -> None:
        self.client, self.run_id, self.uri = client, run_id, uri

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k[:250], str(v)[:_MAX_PARAM]) for k, v in params.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + _BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Finite metrics only (a NaN AUC of a one-class validation split is left out)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, step)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def last_step(self, key: str) -> int:
        """The highest step logged for metric ``key`` (-1: none yet)."""
        history = self.client.get_metric_history(self.run_id, key)
        return max((m.step for m in history), default=-1)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items()]
        if items:
            self.client.log_batch(self.run_id, tags=items)

    def log_files(self, folder: Path, names: tuple[str, ...], artifact_path: str | None) -> None:
        """Those of ``names`` that exist in ``folder``, as artifacts under ``artifact_path``."""
        for name in names:
            if (folder / name).is_file():
                self.client.log_artifact(self.run_id, str(folder / name), artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    @property
    def artifact_uri(self) -> str:
        return str(self.client.get_run(self.run_id).info.artifact_uri)


def open_tracked_run(
    run_dir: Path, *, uri: str | None = None, experiment: str = "medlens"
) -> TrackedRun:
    """The MLflow run recorded in ``run_dir/tracking.json``, else a new one (recorded there).

    A new run is tagged with :func:`run_tags` and gets the flattened config as params.
    """
    recorded = read_tracking(run_dir)
    if recorded is not None:
        uri = recorded["tracking_uri"]
        client = mlflow_client(uri)
        client.update_run(recorded["run_id"], status="RUNNING")
        return TrackedRun(client, recorded["run_id"], uri)
    uri = uri or default_tracking_uri()
    client = mlflow_client(uri)
    experiment_id = _experiment_id(client, experiment, uri)
    tags = {"mlflow.runName": run_dir.resolve().name, **run_tags(run_dir)}
    run = client.create_run(experiment_id, tags=tags, run_name=run_dir.resolve().name)
    tracked = TrackedRun(client, run.info.run_id, uri)
    if (run_dir / "config.yaml").is_file():
        import yaml

        tracked.log_params(flatten(yaml.safe_load((run_dir / "config.yaml").read_text()) or {}))
    record = {"backend": "mlflow", "tracking_uri": uri, "experiment_id": experiment_id,
              "experiment": experiment, "run_id": tracked.run_id}  # fmt: skip
    atomic_write_text(run_dir / TRACKING_FILE, json.dumps(record, indent=2) + "\n")
    return tracked


def read_tracking(run_dir: Path) -> dict[str, Any] | None:
    """The contents of ``tracking.json`` (None when the run is not tracked)."""
    path = Path(run_dir) / TRACKING_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(record, dict) and {"tracking_uri", "run_id"} <= record.keys():
            return record
    except ValueError:
        pass
    raise ConfigError(f"{path}: not a medlens tracking record (tracking_uri, run_id)")


def _experiment_id(client: Any, name: str, uri: str) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=artifact_root(uri)))
    except MlflowException:  # another process created it meanwhile
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def run_tags(run_dir: Path) -> dict[str, str]:
    """Identity tags: config and data hashes, per-split hashes, git commit when there is one."""
    from medlens import __version__

    tags = {"medlens.version": __version__}
    if (run_dir / "config.yaml").is_file():
        tags["medlens.config_sha256"] = sha256_file(run_dir / "config.yaml")
    if (run_dir / "fingerprint.json").is_file():
        fingerprint = json.loads((run_dir / "fingerprint.json").read_text())
        tags["medlens.data_fingerprint"] = str(fingerprint.get("manifest_sha256"))
        tags["medlens.fingerprint_sha256"] = sha256_file(run_dir / "fingerprint.json")
    tags.update({f"medlens.split_sha256.{k}": v for k, v in split_hashes(run_dir).items()})
    commit = git_commit(Path.cwd())
    if commit is not None:
        tags["mlflow.source.git.commit"] = commit
    return tags


def split_hashes(run_dir: Path) -> dict[str, str]:
    """``{split: sha256}`` of the run's ``manifest.csv`` rows per split (location-free)."""
    if not (run_dir / "manifest.csv").is_file():
        return {}
    from medlens.data import load_manifest

    try:
        manifest = load_manifest(run_dir / "manifest.csv")
    except MedlensError:
        return {}
    splits = sorted({r.split for r in manifest if r.split})
    return {split: manifest.split(split).sha256() for split in splits}


def git_commit(folder: Path) -> str | None:
    """The commit checked out at ``folder`` (None outside a git repository or without git)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; lists as JSON text."""
    return dict(_flat(data, prefix))


def _flat(data: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flat(value, name + ".")
        elif isinstance(value, (list, tuple)):
            yield name, json.dumps(value)
        else:
            yield name, value
