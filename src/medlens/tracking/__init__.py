"""Experiment tracking and the model registry (MLflow, ``pip install 'medlens[track]'``).

>>> # medlens train CONFIG --track mlflow; medlens evaluate RUN --track     # doctest: +SKIP
>>> register_run("runs/demo", "pneumonia", alias="champion")              # doctest: +SKIP
>>> resolve_model_uri("models:/pneumonia@champion")                        # doctest: +SKIP

A tracked run directory holds ``tracking.json`` with its MLflow run id. The default
backend is a local SQLite file (``sqlite:///<cwd>/mlruns.db``, artifacts beside it in
``mlartifacts/``): no server. MLflow is imported only when tracking is used.
"""

from __future__ import annotations

from medlens.tracking.callback import TrackingCallback, log_evaluation
from medlens.tracking.mlflow_run import (
    TRACKING_FILE,
    default_tracking_uri,
    flatten,
    git_commit,
    open_tracked_run,
    read_tracking,
    run_tags,
)
from medlens.tracking.registry import (
    REGISTRY_FILE,
    ModelVersionInfo,
    is_model_uri,
    parse_model_uri,
    register_run,
    resolve_model_uri,
)

__all__ = [
    "REGISTRY_FILE",
    "TRACKING_FILE",
    "ModelVersionInfo",
    "TrackingCallback",
    "default_tracking_uri",
    "flatten",
    "git_commit",
    "is_model_uri",
    "log_evaluation",
    "open_tracked_run",
    "parse_model_uri",
    "read_tracking",
    "register_run",
    "resolve_model_uri",
    "run_tags",
]
