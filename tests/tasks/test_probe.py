"""adaptation.mode probe: a head on cached embeddings, saved as a normal run."""

from __future__ import annotations

import json

import pytest
import torch


@pytest.mark.slow
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_probe_run_is_a_normal_run(image_folder, make_config, tmp_path, head):
    from medlens.inference import Predictor
    from medlens.io import read_image
    from medlens.pipeline import evaluate_run
    from medlens.tasks.run import train_run

    adaptation = {"mode": "probe", "probe": {"head": head, "hidden": 8}}
    config = make_config(image_folder, tmp_path / "runs" / "probe", adaptation=adaptation)
    run = train_run(config)
    card = json.loads((run / "model.json").read_text())
    assert card["create_model"].get("head_hidden") == (8 if head == "mlp" else None)
    assert list((tmp_path / "runs" / "embeddings-cache").iterdir())  # computed once, cached
    metrics = json.loads((evaluate_run(run, n_bootstrap=10) / "metrics.json").read_text())
    assert 0.0 <= metrics["metrics"]["roc_auc"]["value"] <= 1.0
    image = read_image(next((image_folder / "pneumonia").iterdir()))
    prediction = Predictor.from_run(run).predict([image])[0]
    assert prediction.label in ("normal", "pneumonia")


@pytest.mark.slow
def test_saved_backbone_gives_the_cached_embeddings_and_reruns_agree(
    image_folder, make_config, tmp_path
):
    from medlens.data import load_manifest
    from medlens.embeddings import EmbeddingSet, embed_tensors, encoder_from_run
    from medlens.tasks.run import train_run
    from medlens.training.data import load_images

    runs = [
        train_run(make_config(image_folder, tmp_path / name, adaptation={"mode": "probe"}))
        for name in ("a", "b")
    ]
    cards = [json.loads((r / "model.json").read_text()) for r in runs]
    assert cards[0]["sha256"] == cards[1]["sha256"]  # same config + seed => same weights
    (cache,) = (tmp_path / "embeddings-cache").iterdir()  # both runs share one cache
    record = load_manifest(runs[0] / "manifest.csv").records[0]
    encoder = encoder_from_run(runs[0])
    batch = encoder.preprocessing(load_images([record.path])[0])[None]
    saved = embed_tensors(encoder.model, batch).numpy()[0]
    cached = EmbeddingSet(cache).select([record.path])[0]
    torch.testing.assert_close(torch.from_numpy(saved), torch.from_numpy(cached), atol=1e-4, rtol=0)


def test_probe_is_refused_for_segmentation(tmp_path):
    from medlens.config import parse_config
    from medlens.errors import ConfigError

    with pytest.raises(ConfigError, match="probe is for classification"):
        parse_config(
            {"data": {"source": str(tmp_path)}, "task": "segmentation",
             "adaptation": {"mode": "probe"}}
        )  # fmt: skip
