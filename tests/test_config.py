"""The training config: YAML is data, validated once, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from medlens.config import TrainConfig, dump_config, load_config, parse_config
from medlens.errors import ConfigError


def test_defaults_and_round_trip(tmp_path: Path) -> None:
    config = parse_config({"data": {"source": "xrays/"}, "model": {"name": "resnet18"}})
    assert config.task == "auto" and config.precision == "auto" and config.seed == 0
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


def test_unknown_key_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"optimizer\.learning_rate"):
        parse_config({"data": {"source": "x"}, "optimizer": {"learning_rate": 0.1}})


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"data": {}}, "exactly one of data.manifest or data.source"),
        ({"epochs": 0}, "epochs"),
        ({"task": "binary", "loss": {"name": "ce"}}, "needs task multiclass"),
        ({"task": "multiclass", "loss": {"name": "bce"}}, "needs task binary or multilabel"),
        ({"model": {"freeze": {"unfreeze_epoch": 2}}}, "freeze.backbone"),
        ({"precision": "fp8"}, "precision"),
        ({"optimizer": {"name": "lamb"}}, "optimizer.name"),
    ],
)
def test_impossible_values_are_refused(changes: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config({"data": {"source": "x"}, **changes})


def test_load_config_overrides_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data: {source: a}\nepochs: 3\n")
    config = load_config(path, **{"model.name": "resnet18", "epochs": 5})
    assert (config.model.name, config.epochs) == ("resnet18", 5)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)
    path.write_text("data: {source: a\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_example_configs_are_valid() -> None:
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    for path in configs:
        assert isinstance(load_config(path), TrainConfig), path


def test_the_removed_cache_switch() -> None:
    """Runs written before it was removed say ``cache: true`` and still load; turning the
    split cache off was never possible, so ``cache: false`` is refused, not ignored."""
    config = parse_config({"data": {"source": "a", "cache": True}})
    assert "cache" not in config.data.model_dump()
    with pytest.raises(ConfigError, match="data.cache is gone"):
        parse_config({"data": {"source": "a", "cache": False}})
