"""The MLflow model registry for medlens runs: register a run, resolve ``models:/`` URIs.

A registered model version's artifacts are the run directory's own files (weights as
safetensors, ``model.json``, ``config.yaml``, ``plan.json`` when there is one), logged
under ``medlens-model/`` of the run's MLflow run. Resolving ``models:/NAME/VERSION`` or
``models:/NAME@ALIAS`` downloads them once into a cache folder (``<cache>/NAME/VERSION``),
checks the weights' SHA-256 against the card and loads them with the safe loader before
the folder is used; ``registry.json`` there records name, version, aliases and run id.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medlens.errors import ConfigError, ModelError
from medlens.tracking.mlflow_run import (
    default_tracking_uri,
    mlflow_client,
    open_tracked_run,
    read_tracking,
)
from medlens.training.checkpoint import atomic_write_text

__all__ = [
    "MODEL_ARTIFACT",
    "REGISTRY_FILE",
    "ModelVersionInfo",
    "default_cache_dir",
    "is_model_uri",
    "parse_model_uri",
    "register_run",
    "resolve_model_uri",
    "verify_model_dir",
]

MODEL_ARTIFACT = "medlens-model"
MODEL_FILES = ("model.safetensors", "model.json", "config.yaml", "plan.json", "fingerprint.json")
REGISTRY_FILE = "registry.json"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w.-]+))$")


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered model version, as written to ``registry.json``."""

    name: str
    version: str
    run_id: str
    source: str
    aliases: list[str] = field(default_factory=list)
    tracking_uri: str = ""


def is_model_uri(text: str) -> bool:
    return str(text).startswith("models:/")


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, version, alias)`` of ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``."""
    match = _URI.match(str(uri))
    if match is None:
        raise ConfigError(f"not a model URI: {uri!r} (models:/NAME/VERSION or models:/NAME@ALIAS)")
    return match["name"], match["version"], match["alias"]


def default_cache_dir() -> Path:
    """``MEDLENS_MODEL_CACHE``, else ``~/.cache/medlens/models``."""
    return Path(os.environ.get("MEDLENS_MODEL_CACHE") or Path.home() / ".cache/medlens/models")


def register_run(
    run_dir: str | Path, name: str, *, alias: str | None = None, tracking_uri: str | None = None
) -> ModelVersionInfo:
    """Register a finished run's model as a new version of ``name`` (optionally ``alias``).

    The weights are verified first. The run's MLflow run (``tracking.json``) gets the model
    files; a run trained without tracking gets a new MLflow run first.
    """
    run_dir = Path(run_dir)
    card = verify_model_dir(run_dir)
    recorded = read_tracking(run_dir)
    run = open_tracked_run(run_dir, uri=tracking_uri if recorded is None else None)
    from mlflow.exceptions import MlflowException

    run.log_files(run_dir, MODEL_FILES, MODEL_ARTIFACT)
    run.end("FINISHED")
    client = run.client
    try:
        client.create_registered_model(name, description="medlens run directory files")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise ConfigError(f"cannot register model {name!r}: {exc.message}") from None
    tags = {"medlens.sha256": card.sha256, "medlens.task": card.task}
    version = client.create_model_version(
        name, f"{run.artifact_uri}/{MODEL_ARTIFACT}", run_id=run.run_id, tags=tags
    )
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    aliases = [alias] if alias else []
    return ModelVersionInfo(
        name, str(version.version), run.run_id, version.source, aliases, run.uri
    )


def resolve_model_uri(
    uri: str, *, cache_dir: str | Path | None = None, tracking_uri: str | None = None
) -> Path:
    """A verified local folder holding the model version ``uri`` points to.

    An alias is resolved to its version at every call; a version already in the cache
    (and still matching its card) is not downloaded again.
    """
    name, number, alias = parse_model_uri(uri)
    tracking_uri = tracking_uri or default_tracking_uri()
    client = mlflow_client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        if alias is not None:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = client.get_model_version(name, number)
    except MlflowException as exc:
        raise ModelError(f"{uri}: not in the model registry at {tracking_uri}") from exc
    info = ModelVersionInfo(name, str(found.version), str(found.run_id), str(found.source),
                            list(getattr(found, "aliases", []) or []), tracking_uri)  # fmt: skip
    target = Path(cache_dir or default_cache_dir()) / _safe(name) / info.version
    if not _usable(target):
        _download(info, target)
    atomic_write_text(target / REGISTRY_FILE, json.dumps(asdict(info), indent=2) + "\n")
    return target


def verify_model_dir(folder: Path) -> Any:
    """The folder's card, after its weights matched the card's SHA-256 and loaded safely."""
    from medlens.card import read_card
    from medlens.models import create_model
    from medlens.training.checkpoint import load_weights

    card = read_card(folder)
    model = create_model(**card.create_model)  # safetensors only, hash-checked (WeightsError)
    load_weights(model, folder / "model.safetensors", sha256=card.sha256)
    return card


def _usable(folder: Path) -> bool:
    try:
        verify_model_dir(folder)
    except ModelError:
        return False
    return True


def _download(info: ModelVersionInfo, target: Path) -> None:
    """Download into a temporary folder beside ``target``, verify, then move into place."""
    from mlflow.artifacts import download_artifacts

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with _quiet_downloads():
            local = Path(
                download_artifacts(
                    artifact_uri=info.source, dst_path=str(tmp), tracking_uri=info.tracking_uri
                )
            )
        verify_model_dir(local)
        if target.exists():
            shutil.rmtree(target)
        os.replace(local, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No MLflow progress bar on the terminal while downloading (restored afterwards)."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)
