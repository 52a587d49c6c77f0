"""Experiment tracking to a local SQLite MLflow store, and the model registry."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlflow")
pytestmark = [  # MLflow's own SQLAlchemy and pydantic deprecations, not ours
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore:.*noload.*:DeprecationWarning"),
]

from medlens.errors import ConfigError, ModelError  # noqa: E402
from medlens.tracking import (  # noqa: E402
    flatten,
    git_commit,
    parse_model_uri,
    register_run,
    resolve_model_uri,
)


def _git_repo(folder: Path) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)
        return done.stdout.decode().strip()

    folder.mkdir(parents=True, exist_ok=True)
    git("init", "-q")
    (folder / "README").write_text("project\n")
    git("add", "README")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "first")
    return git("rev-parse", "HEAD")


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, image_folder: Path, make_config) -> dict:
    """A tiny run trained with tracking (from inside a git repository) and evaluated."""
    from typer.testing import CliRunner

    from medlens.cli import app
    from medlens.tasks.run import train_run

    root = tmp_path_factory.mktemp("tracked")
    commit = _git_repo(root / "project")
    uri = f"sqlite:///{root / 'mlruns.db'}"
    config = make_config(image_folder, root / "project" / "run", epochs=2,
                         tracking={"uri": uri, "experiment": "tests"})  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root / "project")
        run = train_run(config)
    done = CliRunner().invoke(app, ["evaluate", str(run), "--bootstrap", "10", "--track"])
    assert done.exit_code == 0, done.output  # evaluate --track: the run's MLflow run
    return {"run": run, "uri": uri, "commit": commit, "root": root}


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.mark.slow
def test_run_logs_params_metrics_tags_and_artifacts(tracked: dict) -> None:
    run_dir = tracked["run"]
    record = json.loads((run_dir / "tracking.json").read_text())
    client = _client(tracked["uri"])
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["epochs"] == "2" and params["model.name"] == "simple_cnn"
    assert params["tracking.experiment"] == "tests"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_auc")] == [0, 1]
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 2
    assert "test_roc_auc" in run.data.metrics and "best_val_auc" in run.data.metrics
    tags = run.data.tags
    config_sha = hashlib.sha256((run_dir / "config.yaml").read_bytes()).hexdigest()
    assert tags["medlens.config_sha256"] == config_sha
    fingerprint = json.loads((run_dir / "fingerprint.json").read_text())
    assert tags["medlens.data_fingerprint"] == fingerprint["manifest_sha256"]
    assert {"medlens.split_sha256.train", "medlens.split_sha256.val"} <= tags.keys()
    assert tags["mlflow.source.git.commit"] == tracked["commit"]
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "model.json", "metrics.jsonl", "fingerprint.json"} <= top
    evaluated = {a.path for a in client.list_artifacts(run.info.run_id, "eval/test")}
    assert evaluated == {"eval/test/metrics.json", "eval/test/report.html"}


@pytest.mark.slow
def test_register_and_resolve_versions_and_aliases(tracked: dict, tmp_path: Path) -> None:
    run_dir, uri = tracked["run"], tracked["uri"]
    first = register_run(run_dir, "pneumonia", alias="champion")
    second = register_run(run_dir, "pneumonia")
    assert (first.version, second.version) == ("1", "2")
    cache = tmp_path / "cache"
    by_alias = resolve_model_uri("models:/pneumonia@champion", cache_dir=cache, tracking_uri=uri)
    by_number = resolve_model_uri("models:/pneumonia/2", cache_dir=cache, tracking_uri=uri)
    assert by_alias == cache / "pneumonia" / "1" and by_number == cache / "pneumonia" / "2"
    weights = (run_dir / "model.safetensors").read_bytes()
    assert (by_alias / "model.safetensors").read_bytes() == weights
    registry = json.loads((by_alias / "registry.json").read_text())
    assert (registry["name"], registry["version"], registry["aliases"]) == (
        "pneumonia", "1", ["champion"],
    )  # fmt: skip
    (by_alias / "model.safetensors").write_bytes(b"tampered")  # a broken cache is fetched again
    assert resolve_model_uri("models:/pneumonia/1", cache_dir=cache, tracking_uri=uri) == by_alias
    assert (by_alias / "model.safetensors").read_bytes() == weights
    with pytest.raises(ModelError, match="not in the model registry"):
        resolve_model_uri("models:/pneumonia@missing", cache_dir=cache, tracking_uri=uri)


@pytest.mark.slow
def test_serving_a_registered_model_audits_its_name_and_version(
    tracked: dict, image_folder: Path, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from medlens.serve import ServeSettings, create_app

    uri = tracked["uri"]
    register_run(tracked["run"], "served", alias="prod")
    folder = resolve_model_uri("models:/served@prod", cache_dir=tmp_path, tracking_uri=uri)
    settings = ServeSettings(run_dir=folder, database_url=str(tmp_path / "audit.sqlite"))
    png = sorted(image_folder.rglob("*.png"))[0]
    with TestClient(create_app(settings)) as client:
        assert client.app.state.service.model.wait(30)
        model = client.get("/v1/model").json()
        assert (model["name"], model["version"]) == ("served", "1")
        assert model["registry"]["aliases"] == ["prod"]
        body = client.post("/v1/predict", files={"file": ("a.png", png.read_bytes())}).json()
        assert (body["model_name"], body["model_version"]) == ("served", "1")
        (row,) = client.app.state.service.audit.read()
    assert (row.model_name, row.model_version) == ("served", "1")


def test_model_uris_are_parsed_strictly() -> None:
    assert parse_model_uri("models:/chest/3") == ("chest", "3", None)
    assert parse_model_uri("models:/chest@champion") == ("chest", None, "champion")
    for bad in ("models:/chest", "models:/chest/latest", "runs:/abc/model", "models:/a/1/2"):
        with pytest.raises(ConfigError):
            parse_model_uri(bad)


def test_flatten_and_git_outside_a_repository(tmp_path: Path) -> None:
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": {}}) == {
        "a.b": 1, "a.c": "[1, 2]", "d": None, "e": {},
    }  # fmt: skip
    assert git_commit(tmp_path) is None  # no repository: no tag, no failure


def test_missing_mlflow_is_refused_before_anything_is_written(
    image_folder: Path, make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medlens.tasks.run import train_run

    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    config = make_config(image_folder, tmp_path / "run", epochs=1, tracking={})
    with pytest.raises(ConfigError, match="medlens\\[track\\]"):
        train_run(config)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_register_and_errors(tracked: dict) -> None:
    from typer.testing import CliRunner

    from medlens.cli import app

    runner = CliRunner()
    run_dir, uri = str(tracked["run"]), tracked["uri"]
    done = runner.invoke(app, ["register", run_dir, "--name", "cli", "--alias", "staging"])
    assert done.exit_code == 0, done.output
    assert "models:/cli/1" in done.output and "staging" in done.output
    done = runner.invoke(app, ["serve", "models:/cli@nope", "--track-uri", uri])
    assert done.exit_code != 0 and "not in the model registry" in done.output
    done = runner.invoke(app, ["train", "--data", run_dir, "--track-uri", uri])
    assert done.exit_code != 0 and "--track-uri needs --track mlflow" in done.output


@pytest.mark.slow
def test_a_resumed_run_logs_each_epoch_once(
    tmp_path: Path, image_folder: Path, make_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after MLflow got epoch 1 but before its checkpoint: the rerun logs it once."""
    from medlens.tasks.run import train_run
    from medlens.training import callbacks

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    run_dir = tmp_path / "run"
    config = make_config(image_folder, run_dir, epochs=3,
                         tracking={"uri": uri, "experiment": "resume"})  # fmt: skip
    original = callbacks.CheckpointCallback.on_epoch_end

    def die_before_saving(self, trainer, result):  # noqa: ANN001, ANN202
        if result.epoch == 1:
            raise KeyboardInterrupt
        original(self, trainer, result)

    monkeypatch.setattr(callbacks.CheckpointCallback, "on_epoch_end", die_before_saving)
    with pytest.raises(KeyboardInterrupt):
        train_run(config)
    monkeypatch.undo()
    train_run(resume=run_dir)
    run_id = json.loads((run_dir / "tracking.json").read_text())["run_id"]
    steps = [m.step for m in _client(uri).get_metric_history(run_id, "train_loss")]
    assert sorted(steps) == [0, 1, 2]
