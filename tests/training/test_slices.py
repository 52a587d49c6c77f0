"""``preprocessing.slices: pad``: studies keep their own slice count, batches are padded and
masked, and a slice-sequence model gives each study the output it has alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medlens.errors import ConfigError, ExportError
from medlens.io import Image
from medlens.models import create_model
from medlens.models.sequence import AGGREGATORS
from medlens.training.data import PaddedStudies, make_loader, pad_collate, split_dataset
from medlens.training.distributed import DistContext
from medlens.training.loop import forward
from medlens.transforms.preprocess import Preprocessing, preprocessing_from_dict

DEPTHS = (3, 6, 4, 6, 2)


def _volume(depth: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (depth, 12, 12)).astype(np.uint8)


def test_pad_keeps_each_study_slice_count_up_to_the_bound() -> None:
    pre = Preprocessing(spatial_size=(5, 8, 8), slices="pad")
    assert pre(Image(_volume(3, 0), (1.0, 1.0, 1.0))).shape == (1, 3, 8, 8)
    assert pre(Image(_volume(9, 1), (1.0, 1.0, 1.0))).shape == (
        1,
        5,
        8,
        8,
    )  # more than 5: brought down to 5
    assert Preprocessing(spatial_size=(5, 8, 8))(Image(_volume(3, 0), (1.0, 1.0, 1.0))).shape == (
        1,
        5,
        8,
        8,
    )
    with pytest.raises(ConfigError, match="3D spatial_size"):
        preprocessing_from_dict({"spatial_size": [8, 8], "slices": "pad"})


def _studies(root: Path) -> list[str]:
    import nibabel as nib

    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, depth in enumerate(DEPTHS):
        path = root / f"s{i}.nii.gz"
        # NIfTI axes (i, j, k) read as (k, j, i): depth is the last axis here
        nib.save(nib.Nifti1Image(_volume(depth, i).T.astype(np.float32), np.eye(4)), path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize(
    "aggregator",
    [a if a == "mean" else pytest.param(a, marks=pytest.mark.slow) for a in AGGREGATORS],
)
def test_a_padded_batch_gives_each_study_its_own_output(tmp_path: Path, aggregator: str) -> None:
    from medlens.data.manifest import Manifest, Record

    records = [Record(p, str(i % 2)) for i, p in enumerate(_studies(tmp_path))]
    manifest = Manifest(tuple(records), ("0", "1"))
    pre = Preprocessing(spatial_size=(8, 12, 12), slices="pad")
    dataset = split_dataset(manifest, pre, "binary", max_bytes=2**20)
    loader = make_loader(
        dataset, batch_size=5, train=False, seed=0, dist=DistContext(), collate_fn=pad_collate
    )
    batch, targets = next(iter(loader))
    assert isinstance(batch, PaddedStudies) and batch.volumes.shape == (5, 1, 6, 12, 12)
    assert batch.mask.sum(1).tolist() == list(DEPTHS) and len(batch) == len(targets) == 5
    torch.manual_seed(0)
    model = create_model(
        "slice_seq", num_classes=2, in_chans=1, image_size=12, aggregator=aggregator,
        encoder="simple_cnn", dim=16, chunk=4,
    ).eval()  # fmt: skip
    with torch.no_grad():
        padded = forward(model, batch)
        alone = torch.cat([model(dataset[i][0][None]) for i in range(len(dataset))])
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_train_evaluate_and_predict_with_own_slice_counts(tmp_path: Path) -> None:
    from medlens.config import parse_config
    from medlens.export import export_run
    from medlens.export.prune import prune_run
    from medlens.inference import Predictor
    from medlens.io import read_image
    from medlens.pipeline import evaluate_run
    from medlens.tasks.run import train_run

    paths = _studies(tmp_path / "studies") + _studies(tmp_path / "more")
    rows = [f"{p},{'yes' if i % 2 else 'no'},p{i},{('train', 'val', 'test')[i % 3]}"
            for i, p in enumerate(paths)]  # fmt: skip
    (tmp_path / "labels.csv").write_text("study,label,patient_id,split\n" + "\n".join(rows) + "\n")
    model = {"name": "slice_seq", "image_size": 12,
             "options": {"encoder": "simple_cnn", "dim": 16, "aggregator": "gru"}}  # fmt: skip
    config = {
        "data": {"source": str(tmp_path / "labels.csv")},
        "model": model,
        "preprocessing": {"spatial_size": [8, 12, 12], "slices": "pad"},
        "epochs": 1, "batch_size": 2, "num_threads": 1, "precision": "fp32",
        "output_dir": str(tmp_path / "run"),
    }  # fmt: skip
    run = train_run(parse_config(config))
    predictor = Predictor.from_run(run, engine="torch")
    assert predictor.preprocessing.slices == "pad"
    images = [read_image(p) for p in paths[:4]]
    together = [p.probabilities for p in predictor.predict(images)]
    alone = [predictor.predict([image])[0].probabilities for image in images]
    assert together == alone
    metrics = evaluate_run(run, split="test")
    assert metrics is not None
    with pytest.raises(ExportError, match="fixed slice count"):
        export_run(run)
    with pytest.raises(ExportError, match="fixed slice count"):
        prune_run(run, tmp_path / "pruned")
    with pytest.raises(ConfigError, match="masks padded slices"):
        train_run(parse_config({**config, "model": {"name": "resnet18_3d", "image_size": 12}}))
    with pytest.raises(ConfigError, match="probe"):
        train_run(parse_config({**config, "adaptation": {"mode": "probe"}}))
