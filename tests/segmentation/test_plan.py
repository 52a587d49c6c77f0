"""The self-configuring plan: sensible on real and synthetic fingerprints, overridable."""

from __future__ import annotations

import math

import pytest

from medlens.errors import ConfigError
from medlens.segmentation import SegPlan, make_plan, read_plan, write_plan


def _fingerprint(shape, spacing, modality="MR", intensity=None):
    return {
        "shapes": {"median": list(shape)},
        "spacing": {"median": list(spacing)},
        "modalities": {modality: 10},
        "intensity": intensity or {},
    }


def _divisible(plan: SegPlan) -> bool:
    return all(
        size % math.prod(s[axis] for s in plan.strides) == 0
        for axis, size in enumerate(plan.patch_size)
    )


def test_hippocampus_plan_matches_nnunet_patch(shared_datasets) -> None:
    from medlens.data import compute_fingerprint, from_decathlon

    manifest = from_decathlon(shared_datasets / "hippocampus_msd")
    fingerprint = compute_fingerprint(manifest.with_records(manifest.records[:12]))
    plan = make_plan(fingerprint, num_classes=3)
    assert plan.spatial_dims == 3 and plan.target_spacing == (1.0, 1.0, 1.0)
    # covers the median shape, rounded up to the pooling divisor: nnU-Net v2 plans 40x56x40
    assert all(p >= m for p, m in zip(plan.patch_size, plan.median_shape, strict=True))
    assert plan.patch_size == (40, 56, 40) and _divisible(plan)
    assert len(plan.strides) == 4 and plan.strides[0] == (1, 1, 1)
    assert plan.normalization == "zscore" and 2 <= plan.batch_size <= 32


def test_large_anisotropic_ct_fits_budget_and_skips_coarse_axis() -> None:
    intensity = {"p0.5": -1000.0, "p99.5": 1500.0}
    plan = make_plan(_fingerprint((120, 512, 512), (5.0, 0.8, 0.8), "CT", intensity), num_classes=2)
    assert math.prod(plan.patch_size) <= 80**3 * 1.1
    # the 5 mm axis is not pooled (nor convolved with 3) until the in-plane axes catch up
    assert plan.strides[1] == (1, 2, 2) and plan.kernel_sizes[0] == (1, 3, 3)
    assert plan.normalization == "ct" and plan.ct_clip == (-1000.0, 1500.0)
    assert plan.preprocessing()["window"] == "250,2500" and _divisible(plan)


def test_2d_plan_and_overrides() -> None:
    plan = make_plan(
        _fingerprint((300, 200), (0.5, 0.5)), num_classes=2, overrides={"batch_size": 3}
    )
    assert plan.spatial_dims == 2 and plan.batch_size == 3 and _divisible(plan)
    forced = make_plan(
        _fingerprint((300, 200), (0.5, 0.5)), num_classes=2, overrides={"patch_size": [60, 60]}
    )
    assert forced.patch_size == (64, 64)  # rounded up to a multiple of its pooling
    with pytest.raises(ConfigError, match="batch_size"):
        make_plan(_fingerprint((30, 30), (1, 1)), num_classes=2, overrides={"batch_size": 0})
    with pytest.raises(ConfigError, match="no image shapes"):
        make_plan({}, num_classes=2)


def test_plan_round_trip(tmp_path) -> None:
    plan = make_plan(_fingerprint((36, 50, 35), (1, 1, 1)), num_classes=3)
    assert read_plan(write_plan(plan, tmp_path / "plan.json")) == plan
    (tmp_path / "bad.json").write_text('{"spatial_dims": 4}')
    with pytest.raises(ConfigError, match="invalid plan"):
        read_plan(tmp_path / "bad.json")


def test_segmentation_task_needs_label_maps(tmp_path) -> None:
    from PIL import Image as PILImage

    from medlens.config import parse_config
    from medlens.tasks.run import train_run

    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(3):
            PILImage.new("L", (16, 16), 40 * i).save(tmp_path / "data" / name / f"{i}.png")
    config = parse_config(
        {
            "data": {"source": str(tmp_path / "data"), "val_fraction": 0.0},
            "task": "segmentation",
            "output_dir": str(tmp_path / "run"),
        }
    )
    with pytest.raises(ConfigError, match="label_path"):
        train_run(config)
