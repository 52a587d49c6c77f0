"""``medlens evaluate`` and ``medlens predict`` on a freshly trained tiny run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medlens.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("cli_eval")
    rng = np.random.default_rng(1)
    for split, n in (("train", 16), ("test", 6)):
        for label, name in enumerate(("healthy", "sick")):
            (root / "images" / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = rng.normal(80, 20, (16, 16))
                pixels[4:10, 4:10] += 120 * label
                array = np.clip(pixels, 0, 255).astype(np.uint8)
                Image.fromarray(array).save(root / "images" / split / name / f"{split}{i}.png")
    out = root / "run"
    args = ["train", "--data", str(root / "images"), "--model", "simple_cnn", "--image-size",
            "16", "--epochs", "2", "--batch-size", "8", "-o", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_evaluate_writes_metrics_predictions_report(run: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(run), "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    out = run / "eval" / "test"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_cases"] == 12 and metrics["class_names"] == ["healthy", "sick"]
    card = json.loads((run / "model.json").read_text())
    assert metrics["decision"]["threshold"] == pytest.approx(card["threshold"], abs=1e-6)
    rows = list(csv.DictReader((out / "predictions.csv").read_text().splitlines()))
    assert len(rows) == 12 and {r["true_label"] for r in rows} == {"healthy", "sick"}
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64" in html
    assert "Where the model looked (Grad-CAM)" in html  # the heatmap gallery of a binary run
    assert "roc_auc" in result.output and "report.html" in result.output


def test_evaluate_other_data_and_missing_split(run: Path, tmp_path: Path) -> None:
    images = run.parent / "images" / "test"
    result = runner.invoke(app, ["evaluate", str(run), "--data", str(images), "--split", "ext"])
    assert result.exit_code == 0, result.output
    assert (run / "eval" / "test-ext" / "metrics.json").is_file()  # named after the data
    assert "eval/test-ext" in result.output.replace("\\", "/")
    result = runner.invoke(app, ["evaluate", str(run), "--split", "nope"])
    assert result.exit_code == 1 and "no cases in split 'nope'" in result.output


def test_predict_files_and_folders(run: Path, tmp_path: Path) -> None:
    folder = run.parent / "images" / "test" / "sick"
    single = run.parent / "images" / "test" / "healthy" / "test0.png"
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", str(run), str(folder), str(single), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 7
    assert set(rows[0]) == {"path", "predicted_label", "p_healthy", "p_sick"}
    for row in rows:
        assert float(row["p_healthy"]) + float(row["p_sick"]) == pytest.approx(1.0, abs=1e-5)
    result = runner.invoke(app, ["predict", str(run), str(tmp_path / "absent.png")])
    assert result.exit_code == 1 and "input not found" in result.output


def test_predict_refuses_tampered_weights(run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    image = run.parent / "images" / "test" / "sick" / "test0.png"
    result = runner.invoke(app, ["predict", str(copy), str(image), "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and "sha256" in result.output


def test_predict_nifti_volume_uses_its_middle_slice(run: Path, tmp_path: Path) -> None:
    import nibabel as nib
    from PIL import Image as PILImage

    from medlens.pipeline import predict_files

    sick = np.asarray(PILImage.open(run.parent / "images" / "test" / "sick" / "test0.png"))
    volume = np.zeros((5, 16, 16), np.uint8)
    volume[2] = sick  # array order (slices, rows, cols) is NIfTI (k, j, i)
    nib.save(nib.Nifti1Image(volume.transpose(2, 1, 0), np.eye(4)), tmp_path / "v.nii.gz")
    out = predict_files(run, [tmp_path / "v.nii.gz", run.parent / "images" / "test" / "sick"])
    rows = list(csv.DictReader(out.read_text().splitlines()))
    by_path = {Path(r["path"]).name: r for r in rows}
    assert by_path["v.nii.gz"]["p_sick"] == by_path["test0.png"]["p_sick"]
