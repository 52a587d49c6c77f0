"""Ordinal tasks end to end: grade order, training, card, evaluate, predict, explain, export."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from medlens.card import read_card, write_card
from medlens.config import parse_config
from medlens.data import Manifest, Record
from medlens.errors import ConfigError, ModelError
from medlens.tasks.classification import order_classes

GRADES = ("none", "mild", "moderate", "severe")  # as tests/conftest.py's grade_folder


@pytest.fixture(autouse=True)
def _same_grades(grade_names: tuple[str, ...]) -> None:
    assert grade_names == GRADES


def _manifest(*names: str) -> Manifest:
    return Manifest(tuple(Record(f"/x/{n}_{i}.png", n) for i, n in enumerate(names)))


def test_grade_order_is_explicit_or_numeric() -> None:
    found = _manifest("severe", "none", "mild", "none")
    ordered = order_classes(found, ["none", "mild", "severe"], "ordinal")
    assert ordered.classes == ("none", "mild", "severe")
    with pytest.raises(ConfigError, match="no unambiguous order"):
        order_classes(found, None, "ordinal")
    with pytest.raises(ConfigError, match=r"missing \['severe'\].*not in the data \['sever'\]"):
        order_classes(found, ["none", "mild", "sever"], "ordinal")
    numeric = order_classes(_manifest("10", "2", "0"), None, "ordinal")
    assert numeric.classes == ("0", "2", "10")
    assert order_classes(found, None, "multiclass").classes == found.classes


def test_config_refuses_losses_that_do_not_fit(tmp_path: Path) -> None:
    base = {"data": {"source": str(tmp_path)}}
    assert parse_config({**base, "task": "ordinal", "loss": {"name": "coral"}}).task == "ordinal"
    with pytest.raises(ConfigError, match="needs task ordinal"):
        parse_config({**base, "task": "multiclass", "loss": {"name": "coral"}})
    with pytest.raises(ConfigError, match="bce"):
        parse_config({**base, "task": "ordinal", "loss": {"name": "bce"}})
    with pytest.raises(ConfigError, match="names repeat"):
        parse_config({"data": {"source": str(tmp_path), "classes": ["a", "a"]}})


@pytest.mark.slow
def test_ordinal_run_learns_grades_and_records_its_decision(ordinal_run: Path) -> None:
    from medlens.pipeline import evaluate_run

    card = read_card(ordinal_run)
    assert card.task == "ordinal" and card.classes == list(GRADES)
    assert card.create_model["head"] == "ordinal" and card.ordinal.loss == "coral"
    assert card.ordinal.qwk >= card.ordinal.qwk_argmax
    assert card.training.monitor == "val_qwk"
    out = evaluate_run(ordinal_run, split="test", n_bootstrap=50)
    metrics = json.loads((out / "metrics.json").read_text())
    ordinal = metrics["ordinal"]
    assert ordinal["grades"] == list(GRADES)
    assert ordinal["decision"]["cut_points"] == card.ordinal.cut_points
    assert ordinal["metrics"]["qwk"]["value"] > 0.5  # chance is 0
    assert set(ordinal["cut_point_auc"]) == {">= mild", ">= moderate", ">= severe"}
    assert "Quadratic-weighted kappa" in (out / "report.html").read_text()


@pytest.mark.slow
def test_ordinal_card_round_trip_and_checks(ordinal_run: Path, tmp_path: Path) -> None:
    card = read_card(ordinal_run)
    write_card(tmp_path, card)
    assert read_card(tmp_path).ordinal == card.ordinal
    fields = card.model_dump()
    bad = {**fields, "ordinal": {**fields["ordinal"], "decision": "cut_points"}}
    bad["ordinal"]["cut_points"] = [0.5, 1.5]  # 4 grades need 3
    with pytest.raises(ModelError, match="cut_points"):
        write_card(tmp_path, bad)
    with pytest.raises(ModelError, match="ordinal section"):
        write_card(tmp_path, {**fields, "ordinal": None})


@pytest.mark.slow
def test_predict_and_explain_give_grades(ordinal_run: Path, grade_folder: Path, tmp_path) -> None:
    from medlens.explain import explain_images
    from medlens.inference import Predictor
    from medlens.pipeline import predict_files
    from medlens.training.data import load_images

    predictor = Predictor.from_run(ordinal_run)
    images = load_images([str(grade_folder / g / f"p{100 * i}.png") for i, g in enumerate(GRADES)])
    for pred in predictor.predict(images):
        assert pred.label == GRADES[pred.grade]
        assert pred.expected_grade == pytest.approx(
            sum(k * p for k, p in enumerate(pred.probabilities.values()))
        )
    output = predict_files(ordinal_run, [grade_folder / "severe"], tmp_path / "p.csv")
    rows = list(csv.DictReader(output.read_text().splitlines()))
    assert rows and all(r["predicted_label"] == GRADES[int(r["grade"])] for r in rows)
    (explained,) = explain_images(predictor, images[:1])
    assert explained.overlay_png()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_onnx_export_verifies_and_keeps_the_grade(
    ordinal_run: Path, grade_folder: Path, tmp_path: Path
) -> None:
    from medlens.export.run import export_run
    from medlens.inference import Predictor
    from medlens.training.data import load_images

    run = shutil.copytree(ordinal_run, tmp_path / "run")
    result = export_run(run)
    assert all(v["passed"] for v in result.verifications.values())
    images = load_images(sorted(str(p) for p in (grade_folder / "moderate").iterdir())[:4])
    onnx, torch_ = Predictor.from_run(run), Predictor.from_run(run, engine="torch")
    assert onnx.engine == "onnx"
    for a, b in zip(onnx.predict(images), torch_.predict(images), strict=True):
        assert a.grade == b.grade and a.expected_grade == pytest.approx(b.expected_grade, abs=1e-4)


@pytest.mark.slow
def test_plain_ce_baseline_trains_with_a_linear_head(
    grade_folder: Path, tmp_path: Path, make_config
) -> None:
    from medlens.tasks.run import train_run

    config = make_config(grade_folder, tmp_path / "ce", task="ordinal", loss={"name": "ce"})
    data = config.data.model_copy(update={"classes": list(GRADES)})
    card = read_card(train_run(config.model_copy(update={"data": data, "epochs": 2})))
    assert "head" not in card.create_model and card.ordinal.head == "linear"
