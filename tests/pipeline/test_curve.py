"""Label-efficiency curves: points, resumability, files and the report."""

from __future__ import annotations

import json

import pytest
import yaml


@pytest.mark.slow
def test_curve_trains_each_point_once_and_writes_the_report(image_folder, tmp_path):
    from medlens.pipeline.curve import MODES, label_efficiency

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"source": str(image_folder), "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "simple_cnn", "image_size": 16,
                  "options": {"widths": [4, 8, 8], "hidden": 8}},
        "epochs": 1, "batch_size": 8, "num_threads": 1,
    }))  # fmt: skip
    modes = {"scratch": MODES["scratch"], "probe": {**MODES["probe"], "model.pretrained": False}}
    out = label_efficiency(
        config, tmp_path / "curve", fractions={"scratch": [0.5, 1.0], "probe": [1.0]},
        seeds=[0], modes=modes, n_bootstrap=20,
    )  # fmt: skip
    curve = json.loads((out / "curve.json").read_text())
    assert [(p["mode"], p["fraction"]) for p in curve["points"]] == [
        ("scratch", 0.5), ("scratch", 1.0), ("probe", 1.0)
    ]  # fmt: skip
    half, full = curve["points"][:2]
    assert half["n_train"] < full["n_train"]
    assert all(p["cpu_s"] >= 0 and 0 <= p["auc"] <= 1 for p in curve["points"])
    assert (out / "curve.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "curve.csv").read_text().startswith("mode,fraction,seed,n_train,auc")
    assert "Label efficiency" in (out / "report.html").read_text()
    marker = out / "runs" / "scratch-f0.5-s0" / "point.json"
    before = marker.stat().st_mtime_ns
    label_efficiency(
        config, out, fractions={"scratch": [0.5]}, seeds=[0], modes={"scratch": MODES["scratch"]}
    )  # resumed: read back, not retrained
    assert marker.stat().st_mtime_ns == before


def test_mode_overrides_and_bad_options():
    from medlens.errors import ConfigError
    from medlens.pipeline.curve import parse_mode_overrides

    modes = parse_mode_overrides(["scratch", "full"], ["scratch.model.name=simple_cnn"])
    assert modes["scratch"]["model.name"] == "simple_cnn" and "model.name" not in modes["full"]
    with pytest.raises(ConfigError, match="unknown mode"):
        parse_mode_overrides(["lora2"], [])
    with pytest.raises(ConfigError, match="MODE.key=value"):
        parse_mode_overrides(["full"], ["probe.epochs=3"])


def test_subsample_split_is_grouped_stratified_and_keeps_other_splits(image_folder):
    from medlens.data import assign_splits, open_source
    from medlens.data.splits import subsample_split

    manifest = assign_splits(open_source(image_folder), val_fraction=0.25, seed=0)
    small = subsample_split(manifest, 0.5, seed=1)
    train = small.split("train")
    assert 0 < len(train) < len(manifest.split("train"))
    assert {r.label for r in train} == {"normal", "pneumonia"}
    assert [r.path for r in small] == [r.path for r in manifest]  # order kept
    assert small.split("val").records == manifest.split("val").records
    assert subsample_split(manifest, 0.5, seed=1) == small  # seeded


def test_curve_modes_include_lora_and_full_with_layer_decay():
    from medlens.config import parse_config
    from medlens.pipeline.curve import DEFAULT_MODES, MODES

    assert DEFAULT_MODES == ("scratch", "probe", "lora", "full")
    assert MODES["lora"]["adaptation.mode"] == "lora"
    assert MODES["full"]["optimizer.layer_decay"] == 0.75
    for overrides in MODES.values():  # every mode is a valid config
        raw: dict = {"data": {"source": "x"}}
        for dotted, value in overrides.items():
            *parents, last = dotted.split(".")
            node = raw
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        parse_config(raw)
