"""The README's CT example end to end: a DICOM series folder per study + a labels CSV ->
data -> train (slice_seq, three CT windows) -> evaluate -> explain (slice weights) -> serve.

The studies are links to the one real CT series with synthetic labels: this checks the
wiring, not what a model learns."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medlens.cli import app

REPO = Path(__file__).resolve().parents[2]
SPLITS = ("train", "train", "train", "train", "val", "val", "test", "test")


def _studies(series: Path, root: Path) -> Path:
    (root / "studies").mkdir(parents=True)
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study", "label", "patient_id", "split"])
        for i, split in enumerate(SPLITS):
            (root / "studies" / f"study{i}").symlink_to(series, target_is_directory=True)
            writer.writerow([f"studies/study{i}", "tumour" if i % 2 else "normal", f"p{i}", split])
    return root / "labels.csv"


@pytest.mark.slow
def test_ct_series_per_study_trains_evaluates_explains_and_serves(
    shared_datasets: Path, tmp_path: Path
) -> None:
    series = shared_datasets / "totalsegmentator_example" / "example_ct_dicom"
    labels = _studies(series, tmp_path)
    runner = CliRunner()
    data, run = tmp_path / "data" / "ct", tmp_path / "runs" / "ct-seq"
    steps = [
        ["data", str(labels), "-o", str(data), "--sample-size", "2"],
        ["train", str(REPO / "configs" / "ct_series_sequence.yaml"), "--data",
         str(data / "manifest.csv"), "--epochs", "1", "-o", str(run)],
        ["evaluate", str(run), "--split", "test"],
        ["explain", str(run), str(tmp_path / "studies" / "study6"), "-o", str(tmp_path / "ex")],
    ]  # fmt: skip
    for args in steps:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{args[0]}: {result.output}"

    card = json.loads((run / "model.json").read_text())
    assert card["preprocessing"]["windows"] == [[40, 80], [80, 200], [600, 2800]]
    assert card["preprocessing"]["channels"] == 3
    report = (run / "eval" / "test" / "report.html").read_text()
    assert "Slice attention" in report
    weights = json.loads((tmp_path / "ex" / "study6.slices.json").read_text())
    assert len(weights["slice_weights"]) == 16
    assert abs(sum(weights["slice_weights"]) - 1) < 1e-4
    assert (tmp_path / "ex" / "study6.slices.png").stat().st_size > 0

    from fastapi.testclient import TestClient

    from medlens.serve.app import create_app
    from medlens.serve.settings import ServeSettings

    settings = ServeSettings(run_dir=run, database_url=str(tmp_path / "audit.sqlite"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(series.iterdir()):
            archive.write(path, path.name)
    with TestClient(create_app(settings)) as client:
        client.app.state.service.model.wait(60)
        files = {"file": ("study.zip", buffer.getvalue(), "application/zip")}
        response = client.post("/v1/predict?heatmap=true", files=files)
    assert response.status_code == 200, response.text
    assert set(response.json()["probabilities"]) == {"normal", "tumour"}
    assert response.json()["heatmap_png"] is None  # no Grad-CAM over slices: explain shows them
