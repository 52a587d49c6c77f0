"""Ordinal models in export: the card's grade rule decides; pruned and distilled stay ordinal."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from medlens.export.distill import output_task
from medlens.export.verify import decide, verify


def _rule(decision: str, cut_points: list[float] | None = None) -> SimpleNamespace:
    return SimpleNamespace(decision=decision, cut_points=cut_points)


def test_decide_follows_the_grade_rule_not_the_argmax() -> None:
    probs = np.array([[0.4, 0.0, 0.6], [0.45, 0.1, 0.45], [0.6, 0.4, 0.0]])
    assert decide(probs, "multiclass", None).tolist() == [2, 0, 0]
    assert decide(probs, "multiclass", None, _rule("median")).tolist() == [2, 1, 0]
    # expected grades 1.2, 1.0, 0.4 cut at 0.5 and 1.1
    cut = decide(probs, "multiclass", None, _rule("cut_points", [0.5, 1.1]))
    assert cut.tolist() == [2, 1, 0]


def test_verification_compares_grades_by_the_card_rule() -> None:
    # the export moves mass between grades 0 and 2: argmax flips, the median grade does not
    reference = np.log(np.array([[0.45, 0.1, 0.45 + 1e-3]]))
    exported = np.log(np.array([[0.45 + 1e-3, 0.1, 0.45]]))

    def run(rule):
        return verify(
            reference, lambda x: torch.from_numpy(exported), [torch.zeros(1)],
            precision="int8", task="multiclass", grade_rule=rule,
        )  # fmt: skip

    assert run(None).label_agreement == 0.0
    assert run(_rule("median")).label_agreement == 1.0


def test_distillation_reads_a_task_by_its_outputs() -> None:
    assert output_task(SimpleNamespace(name="ordinal")) == "multiclass"
    assert output_task(SimpleNamespace(name="multiclass")) == "multiclass"
    assert output_task("binary") == "binary"


def _assert_ordinal(run: Path, grade_names: tuple[str, ...], image: Path) -> None:
    from medlens.card import read_card
    from medlens.inference import Predictor
    from medlens.io import read_image
    from medlens.models.heads import OrdinalHead

    card = read_card(run)
    assert card.task == "ordinal" and card.ordinal is not None and card.ordinal.head == "ordinal"
    assert card.classes == list(grade_names)
    predictor = Predictor.from_run(run, engine="torch")
    assert isinstance(predictor.model.get_classifier(), OrdinalHead)
    result = predictor.predict([read_image(image)])[0]
    assert result.label == grade_names[result.grade] and 0 <= result.expected_grade <= 3


@pytest.mark.slow
def test_a_pruned_ordinal_model_stays_ordinal(
    tmp_path: Path, ordinal_run: Path, grade_folder: Path, grade_names: tuple[str, ...]
) -> None:
    from medlens.export.prune import prune_run

    out = prune_run(ordinal_run, tmp_path / "pruned", amount=0.5, report_split="val")
    _assert_ordinal(out, grade_names, grade_folder / "severe" / "p300.png")
    report = json.loads((out / "compression.json").read_text())["reports"]["pruned"]
    assert report["accuracy"] is not None


@pytest.mark.slow
def test_a_distilled_ordinal_model_stays_ordinal(
    tmp_path: Path, ordinal_run: Path, grade_folder: Path, grade_names: tuple[str, ...]
) -> None:
    from medlens.export.distill import distill_run

    out = distill_run(ordinal_run, tmp_path / "student", epochs=1, report_split="val")
    _assert_ordinal(out, grade_names, grade_folder / "mild" / "p100.png")
