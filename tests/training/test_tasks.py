"""Multi-class and multi-label runs, end to end through evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medlens.pipeline import evaluate_run, predict_files
from medlens.tasks.run import train_run


def _csv_dataset(root: Path, labels: list[str]) -> Path:
    """Blobs in quadrant k mean class k; a row may name several classes (``a|b``)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    rows = ["path,label"]
    for i, label in enumerate(labels * 8):
        pixels = rng.normal(60, 15, (16, 16))
        for name in label.split("|"):
            k = "abc".index(name)
            pixels[(k // 2) * 8 : (k // 2) * 8 + 6, (k % 2) * 8 : (k % 2) * 8 + 6] += 150
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / f"{i}.png")
        rows.append(f"{i}.png,{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


@pytest.mark.parametrize(
    ("labels", "task"),
    [(["a", "b", "c"], "multiclass"), (["a", "b", "c", "a|b", "b|c", "a|c"], "multilabel")],
)
def test_task_end_to_end(labels: list[str], task: str, tmp_path: Path, make_config) -> None:
    csv = _csv_dataset(tmp_path / "data", labels)
    config = make_config(csv, tmp_path / "run", epochs=4)
    config = config.model_copy(
        update={"data": config.data.model_copy(update={"test_fraction": 0.2})}
    )
    run = train_run(config)
    card = json.loads((run / "model.json").read_text())
    assert card["task"] == task and card["classes"] == ["a", "b", "c"]
    assert card["create_model"]["num_classes"] == 3
    assert card["threshold"] is None if task == "multiclass" else len(card["threshold"]) == 3
    metrics = json.loads((evaluate_run(run, n_bootstrap=20) / "metrics.json").read_text())
    assert metrics["task"] == task and metrics["metrics"]["roc_auc"]["value"] > 0.5
    out = predict_files(run, [tmp_path / "data" / "0.png"], tmp_path / "p.csv")
    assert out.read_text().splitlines()[0] == "path,predicted_label,p_a,p_b,p_c"
