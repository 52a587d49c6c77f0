from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from medlens.errors import ConfigError, ModelError
from medlens.export.compare import model_report
from medlens.export.distill import DistillationLoss, distill_run, soft_target_loss


def test_soft_target_loss_is_zero_only_when_student_matches_teacher() -> None:
    teacher = torch.tensor([[2.0, -1.0, 0.5]])
    assert float(soft_target_loss(teacher, teacher, "multiclass", 4.0)) == pytest.approx(0.0)
    assert float(soft_target_loss(-teacher, teacher, "multiclass", 4.0)) > 0.01
    same = soft_target_loss(teacher[:, :1], teacher[:, :1], "binary", 2.0)
    other = soft_target_loss(-teacher[:, :1], teacher[:, :1], "binary", 2.0)
    assert float(other) > float(same)


def test_distillation_loss_uses_the_captured_batch_only_in_training() -> None:
    teacher, student = nn.Linear(4, 1), nn.Linear(4, 1)
    hard = nn.BCEWithLogitsLoss()
    loss = DistillationLoss(hard, teacher, "binary", temperature=2.0, alpha=1.0)
    x, y = torch.randn(8, 4), torch.ones(8, 1)
    student.register_forward_pre_hook(loss.capture)

    logits = student.train()(x)
    distilled = loss(logits, y)
    expected = soft_target_loss(logits, teacher(x), "binary", 2.0)
    assert distilled.item() == pytest.approx(expected.item(), rel=1e-6)
    distilled.backward()
    assert student.weight.grad is not None and teacher.weight.grad is None
    with torch.no_grad():
        assert loss(student.eval()(x), y).item() == pytest.approx(hard(student(x), y).item())


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError):
        DistillationLoss(nn.MSELoss(), nn.Linear(1, 1), "binary", temperature=0.0, alpha=0.5)


def test_distill_improves_student_over_its_init(tmp_path: Path, tiny_run: Path) -> None:
    out = distill_run(
        tiny_run, tmp_path / "student", student="simple_cnn", epochs=4, temperature=2, alpha=0.5
    )

    record = json.loads((out / "compression.json").read_text())
    student, teacher = record["reports"]["student"], record["reports"]["teacher"]
    assert record["settings"]["temperature"] == 2 and record["settings"]["alpha"] == 0.5
    assert teacher["auc"] > 0.95 and student["split"] == teacher["split"]
    # the same student, untrained, with the same card (decision threshold, temperature)
    init = tmp_path / "init"
    init.mkdir()
    from medlens.card import read_card, write_card
    from medlens.models import create_model
    from medlens.training.checkpoint import save_weights

    card = read_card(out)
    torch.manual_seed(12345)
    sha = save_weights(create_model(**card.create_model), init / "model.safetensors")
    write_card(init, card.model_copy(update={"sha256": sha}))
    (init / "manifest.csv").write_text((out / "manifest.csv").read_text())
    untrained = model_report(init, split=student["split"], timing=False)
    # blobs are so easy that a random CNN ranks them (AUC ~1): compare the decisions
    assert untrained.accuracy < 0.7 < 0.9 < student["accuracy"]


def test_unknown_student_fails_fast(tmp_path: Path, tiny_run: Path) -> None:
    with pytest.raises(ModelError, match="unknown model"):
        distill_run(tiny_run, tmp_path / "s", student="resnet9000")
    assert not (tmp_path / "s").exists()
