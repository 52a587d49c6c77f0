"""train -> evaluate -> predict for segmentation, 2D (PNG pairs) and 3D (Decathlon NIfTI)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medlens.config import parse_config
from medlens.io import read_image
from medlens.pipeline import evaluate_run, predict_files
from medlens.tasks.run import train_run

pytest.importorskip("monai")


@pytest.fixture(scope="module")
def run_2d(seg_run_2d: Path) -> Path:
    return seg_run_2d


def test_2d_learns_the_disk_and_writes_a_run(run_2d: Path) -> None:
    card = json.loads((run_2d / "model.json").read_text())
    plan = json.loads((run_2d / "plan.json").read_text())
    assert card["task"] == "segmentation" and card["segmentation"]["label_values"] == [0, 255]
    assert card["segmentation"]["plan"] == plan and plan["spatial_dims"] == 2
    history = [json.loads(line) for line in (run_2d / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 3 and history[-1]["train_loss"] < history[0]["train_loss"]
    out = evaluate_run(run_2d, split="test", n_bootstrap=200)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "segmentation" and metrics["n_cases"] == 6
    dice = metrics["per_class"]["disk"]["dice"]
    assert dice["value"] > 0.8 and dice["ci_low"] <= dice["value"] <= dice["ci_high"]
    page = (out / "report.html").read_text()
    assert "Best and worst cases" in page and "data:image/png;base64" in page


def test_2d_predict_writes_png_masks_with_original_values(run_2d: Path, tmp_path) -> None:
    images = sorted((run_2d.parent / "data" / "images").glob("case3*.png"))
    output = predict_files(run_2d, images, tmp_path / "pred.csv")
    rows = list(csv.DictReader(output.read_text().splitlines()))
    assert len(rows) == len(images) and "volume_mm3_disk" in rows[0]
    mask = read_image(rows[0]["label_map"], kind="label").array  # a palette PNG: values kept
    truth = read_image(run_2d.parent / "data" / "masks" / images[0].name).array
    assert mask.shape == truth.shape and set(np.unique(mask)) <= {0, 255}
    assert read_image(rows[0]["label_map"]).meta["mode"] == "P"  # and shown in colour
    assert ((mask > 0) & (truth > 0)).sum() * 2 / ((mask > 0).sum() + (truth > 0).sum()) > 0.8


@pytest.fixture(scope="module")
def run_3d(blob_dataset, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("seg3d")
    config = parse_config(
        {
            "data": {"source": str(blob_dataset), "val_fraction": 0.2, "test_fraction": 0.2},
            "epochs": 2,
            "output_dir": str(root / "run"),
            "segmentation": {
                "iterations_per_epoch": 2,
                "plan": {"patch_size": [16, 16, 16], "batch_size": 2},
                "base_filters": 4,
            },
        }
    )
    return train_run(config)


def test_3d_run_plan_and_resume_refusal(run_3d: Path, blob_dataset) -> None:
    card = json.loads((run_3d / "model.json").read_text())
    plan = card["segmentation"]["plan"]
    assert plan["patch_size"] == [16, 16, 16] and plan["filters"][0] == 4
    assert plan["target_spacing"] == [1.5, 1.2, 1.0]  # NIfTI (i,j,k) -> array (k,j,i)
    assert card["classes"] == ["background", "label_1", "label_2"]
    assert (run_3d / "checkpoints" / "last.pt").is_file()
    again = parse_config({"data": {"source": str(blob_dataset)}, "output_dir": str(run_3d)})
    with pytest.raises(Exception, match="already holds a run"):
        train_run(again)


def test_3d_predict_keeps_the_input_geometry(run_3d: Path, blob_dataset, tmp_path) -> None:
    source = sorted((blob_dataset / "imagesTr").glob("*.nii.gz"))[0]
    output = predict_files(run_3d, [source], tmp_path / "out.csv")
    label_path = Path(next(csv.DictReader(output.read_text().splitlines()))["label_map"])
    written, original = nib.load(label_path), nib.load(source)
    assert written.shape == original.shape
    np.testing.assert_array_equal(written.affine, original.affine)
    assert np.issubdtype(written.get_data_dtype(), np.integer)


def test_3d_evaluate_scores_every_case(run_3d: Path) -> None:
    out = evaluate_run(run_3d, split="test", n_bootstrap=50)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == ["label_1", "label_2"]
    assert len(metrics["cases"]) == metrics["n_cases"] >= 2
    rows = list(csv.DictReader((out / "predictions.csv").read_text().splitlines()))
    assert len(rows) == metrics["n_cases"] and "hd95_label_2" in rows[0]


def test_cli_evaluate_and_predict_a_segmentation_run(run_2d: Path, tmp_path) -> None:
    from typer.testing import CliRunner

    from medlens.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", str(run_2d), "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    assert "mean_dice" in result.output and "report" in result.output
    image = run_2d.parent / "data" / "images" / "case31.png"
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", str(run_2d), str(image), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 label map(s) written" in result.output
    assert (tmp_path / "p" / "case31_seg.png").is_file()


def test_images_and_masks_folders_are_a_segmentation_source(run_2d: Path) -> None:
    from medlens.data import open_source

    manifest = open_source(run_2d.parent / "data")
    assert manifest.task == "segmentation" and len(manifest) == 32
    first = manifest.records[0]
    assert Path(first.path).name == Path(first.label_path).name == "case00.png"
    assert Path(first.label_path).parent.name == "masks"


def _small_series(source: Path, folder: Path) -> Path:
    """The real CT series' headers and pixels, shrunk to 32 x 32 px at 1 mm, 1.5 mm apart."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir()
    for i, path in enumerate(sorted(source.iterdir())):
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array[::16, ::16].copy()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.Rows, ds.Columns, ds.PixelSpacing = 32, 32, [1.0, 1.0]
        ds.ImagePositionPatient = [0.0, 0.0, 1.5 * i]
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / f"slice{i:02d}.dcm", enforce_file_format=True)
    return folder


def test_3d_predict_on_a_dicom_series_writes_nifti_and_seg(
    run_3d: Path, shared_datasets, tmp_path
) -> None:
    import highdicom as hd

    series = _small_series(
        shared_datasets / "totalsegmentator_example" / "example_ct_dicom", tmp_path / "ct"
    )
    output = predict_files(run_3d, [series], tmp_path / "out.csv")
    row = next(csv.DictReader(output.read_text().splitlines()))
    volume = read_image(series)
    labels = read_image(row["label_map"])
    assert labels.array.shape == volume.array.shape
    np.testing.assert_allclose(labels.affine, volume.affine, atol=1e-6)
    seg = hd.seg.segread(row["dicom_seg"])
    assert len(seg.SegmentSequence) == 2
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == volume_uid(series)


def volume_uid(series: Path) -> str:
    import pydicom

    return pydicom.dcmread(next(series.iterdir())).SeriesInstanceUID
