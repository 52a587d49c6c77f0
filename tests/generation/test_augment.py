"""``data.augment_with``: synthetic images join the training split only, in the asked share."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from medlens.card import read_card
from medlens.config import parse_config
from medlens.data import load_manifest
from medlens.data.synthetic import synthetic_rows
from medlens.errors import ConfigError
from medlens.tasks.run import train_run


def _config(make_config, image_folder: Path, out: Path, data: dict, **changes) -> object:
    raw = make_config(image_folder, out, **changes).model_dump(mode="json")
    return parse_config({**raw, "data": data})


def _synthetic_split_counts(run: Path) -> tuple[Counter, Counter]:
    manifest = load_manifest(run)
    marked = synthetic_rows(r.path for r in manifest)
    rows = [manifest.records[i] for i in marked]
    return Counter(r.split for r in rows), Counter(r.label for r in rows if r.split == "train")


@pytest.mark.slow
def test_folder_of_synthetic_images_mixes_the_fraction_into_training(
    tmp_path: Path, image_folder: Path, make_config, make_marked
) -> None:
    for name in ("normal", "pneumonia"):
        make_marked(tmp_path / "synthetic", name, 20)
    data = {"source": str(image_folder), "val_fraction": 0.25, "test_fraction": 0.25,
            "augment_with": str(tmp_path / "synthetic"), "synthetic_fraction": 0.5}  # fmt: skip
    run = train_run(_config(make_config, image_folder, tmp_path / "run", data, epochs=1))
    manifest = load_manifest(run)
    real = Counter(r.label for r in manifest.split("train") if "synthetic" not in r.path)
    splits, per_class = _synthetic_split_counts(run)
    assert set(splits) == {"train"}
    assert per_class == {c: round(0.5 * n) for c, n in real.items()}
    card = read_card(run).synthetic_data
    assert card["train_counts"] == dict(per_class) and card["fraction"] == 0.5
    assert card["kind"] == "folder"


@pytest.mark.slow
def test_a_generation_run_generates_on_the_fly_with_provenance(
    tmp_path: Path, image_folder: Path, make_config, make_gen_config
) -> None:
    gan = train_run(make_gen_config(image_folder, tmp_path / "gan", "dcgan", epochs=1))
    data = {"source": str(image_folder), "val_fraction": 0.25,
            "augment_with": str(gan), "synthetic_fraction": 1.0}  # fmt: skip
    run = train_run(_config(make_config, image_folder, tmp_path / "run", data, epochs=1))
    assert (run / "synthetic" / "provenance.csv").is_file()
    splits, per_class = _synthetic_split_counts(run)
    real = Counter(r.label for r in load_manifest(run).split("train")) - per_class
    assert set(splits) == {"train"} and per_class == real
    assert read_card(run).synthetic_data["kind"] == "run"


def test_unmarked_images_are_refused(tmp_path: Path, image_folder: Path, make_config) -> None:
    data = {"source": str(image_folder), "augment_with": str(image_folder),
            "synthetic_fraction": 0.5}  # fmt: skip
    with pytest.raises(ConfigError, match="not marked synthetic"):
        train_run(_config(make_config, image_folder, tmp_path / "run", data))
    assert not (tmp_path / "run").exists()


def test_too_few_synthetic_images_are_refused(
    tmp_path: Path, image_folder: Path, make_config, make_marked
) -> None:
    for name in ("normal", "pneumonia"):
        make_marked(tmp_path / "few", name, 1)
    data = {"source": str(image_folder), "augment_with": str(tmp_path / "few"),
            "synthetic_fraction": 1.0}  # fmt: skip
    with pytest.raises(ConfigError, match="needed"):
        train_run(_config(make_config, image_folder, tmp_path / "run", data))


def test_train_flags_set_the_data_keys(tmp_path: Path) -> None:
    from medlens.cli.train import _overrides, build_config

    names = ("model", "epochs", "image_size", "batch_size", "lr", "weights", "output")
    flags = _overrides(
        **dict.fromkeys(names), seed=None, pretrained=False, data=tmp_path,
        augment_with=tmp_path / "gan", synthetic_fraction=0.25,
    )  # fmt: skip
    config = build_config(None, flags)
    assert config.data.augment_with == tmp_path / "gan" and config.data.synthetic_fraction == 0.25
    with pytest.raises(ConfigError, match="go together"):
        build_config(None, {"data.source": str(tmp_path), "data.synthetic_fraction": 0.5})
