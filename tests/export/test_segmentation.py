"""Export of a real 3D segmentation run (MSD hippocampus MRI), verified by sliding windows.

One tiny run (a handful of real cases, one epoch of two iterations, 4 base filters) is
trained once for the module; each test copies it before exporting into it.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medlens.errors import ExportError
from medlens.export import Tolerance
from medlens.export.run import deployed_onnx, export_run
from medlens.export.segmentation import dice_agreement
from medlens.inference import Predictor

pytest.importorskip("onnxruntime")
pytest.importorskip("monai")

CASES = {"train": 4, "val": 1, "test": 1}


def test_dice_agreement_counts_overlap_per_foreground_class() -> None:
    a = np.array([0, 1, 1, 2, 2, 0])
    b = np.array([0, 1, 2, 2, 2, 1])
    # class 1: |A|=2, |B|=2, both at one voxel; class 2: |A|=2, |B|=3, both at two
    assert dice_agreement(a, b, 3) == [(2, 4), (4, 5)]
    assert dice_agreement(a, a, 4)[2] == (0, 0)  # absent in both: nothing to compare


@pytest.fixture(scope="module")
def hippo_run(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medlens.config import parse_config
    from medlens.tasks.run import train_run

    source = shared_datasets / "hippocampus_msd"
    root = tmp_path_factory.mktemp("hippo")
    images = sorted((source / "imagesTr").glob("*.nii.gz"))
    splits = [name for name, n in CASES.items() for _ in range(n)]
    rows = ["path,label,patient_id,split,label_path"]
    for image, split in zip(images, splits, strict=False):
        label = source / "labelsTr" / image.name
        rows.append(f"{image},,{image.name.split('.')[0]},{split},{label}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    config = parse_config(
        {
            "data": {"manifest": str(root / "manifest.csv")},
            "epochs": 1,
            "output_dir": str(root / "run"),
            "segmentation": {
                "iterations_per_epoch": 2,
                "base_filters": 4,
                "plan": {"patch_size": [32, 32, 32], "batch_size": 2},
            },
        }
    )
    return train_run(config)


@pytest.fixture
def seg_copy(hippo_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(hippo_run, tmp_path / "run"))


@pytest.mark.slow
def test_fp32_export_is_verified_on_a_real_volume_and_deployed(seg_copy: Path) -> None:
    result = export_run(seg_copy)

    record = json.loads((seg_copy / "export.json").read_text())
    assert result.model == seg_copy / "model.onnx" == deployed_onnx(seg_copy)
    assert record["task"] == "segmentation" and record["input"]["shape"] == ["batch", 1, 32, 32, 32]
    assert record["segmentation"]["plan"]["patch_size"] == [32, 32, 32]
    assert record["data"]["verification_split"] == "val"
    assert record["data"]["verification_cases"] == ["hippocampus_008"]  # the val case
    fp32 = record["verification"]["fp32"]
    assert fp32["passed"] and fp32["n_cases"] == 1 and fp32["max_abs_diff"] < 1e-3
    assert set(fp32["dice_agreement"]) == {"label_1", "label_2"}
    assert all(d is None or d >= 0.99 for d in fp32["dice_agreement"].values())
    assert fp32["voxel_agreement"] > 0.999 and fp32["cases"][0]["case"] == "hippocampus_008"
    assert not [p for p in seg_copy.iterdir() if p.name.startswith(".")]  # no staging left

    # the export is what `auto` and `medlens predict` use; the label maps stay the same
    assert Predictor.from_run(seg_copy).engine == "onnx"
    from medlens.data import load_manifest
    from medlens.io import read_image
    from medlens.pipeline import predict_files

    (test_case,) = load_manifest(seg_copy / "manifest.csv").split("test")
    out = predict_files(seg_copy, [test_case.path], seg_copy.parent / "pred.csv")
    by_onnx = read_image(next(csv.DictReader(out.read_text().splitlines()))["label_map"]).array
    by_torch = Predictor.from_run(seg_copy, engine="torch").segment(read_image(test_case.path))
    assert by_onnx.shape == by_torch.array.shape
    for value in (1, 2):
        a, b = by_onnx == value, by_torch.array == value
        assert a.sum() + b.sum() == 0 or 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.99


@pytest.mark.slow
def test_int8_is_refused_below_its_dice_agreement_and_writes_nothing(seg_copy: Path) -> None:
    before = sorted(p.name for p in seg_copy.iterdir())
    strict = Tolerance(min_dice_agreement=1.0 + 1e-9)  # no int8 label map can reach it
    with pytest.raises(ExportError, match="export refused.*int8: Dice agreement"):
        export_run(seg_copy, quantize="int8", tolerance=strict, max_calibration=8)
    assert sorted(p.name for p in seg_copy.iterdir()) == before


@pytest.mark.slow
def test_int8_within_tolerance_is_written_from_training_patches(seg_copy: Path) -> None:
    loose = Tolerance(min_dice_agreement=0.0)
    result = export_run(seg_copy, quantize="int8", tolerance=loose, max_calibration=8)

    assert result.model.name == "model.int8.onnx" and deployed_onnx(seg_copy) == result.model
    assert result.record["data"]["calibration_patches"] == 8
    int8 = result.verifications["int8"]
    assert int8["passed"] and int8["precision"] == "int8" and int8["n_cases"] == 1
    assert result.verifications["fp32"]["max_abs_diff"] < 1e-3


@pytest.mark.slow
def test_prune_cli_prunes_the_unet_but_not_its_output_block(hippo_run: Path, tmp_path) -> None:
    from typer.testing import CliRunner

    from medlens.cli import app
    from medlens.export.prune import sparsity

    out = tmp_path / "pruned"
    args = ["prune", str(hippo_run), "--sparsity", "0.5", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "mean Dice" in result.output and "volumes" in result.output

    model = Predictor.from_run(out, engine="torch").model
    assert sparsity(model) == pytest.approx(0.5, abs=0.01)  # kept through the fine-tune
    head = model.output_block.conv.conv.weight
    assert int((head == 0).sum()) == 0
    source, pruned = json.loads((out / "compression.json").read_text())["reports"].values()
    assert pruned["nonzero_parameters"] < 0.6 * source["nonzero_parameters"]
    assert source["dice"] is not None and pruned["dice"] is not None
    assert source["split"] == "test" and source["images"] == 1
    card, plan = (json.loads((d / "model.json").read_text()) for d in (out, hippo_run))
    assert card["segmentation"]["plan"] == plan["segmentation"]["plan"]  # the same network


@pytest.mark.slow
def test_distill_refuses_a_segmentation_run(hippo_run: Path, tmp_path) -> None:
    from medlens.errors import ModelError
    from medlens.export.distill import distill_run

    with pytest.raises(ModelError, match="segmentation run cannot be distilled"):
        distill_run(hippo_run, tmp_path / "student")
    assert not (tmp_path / "student").exists()
