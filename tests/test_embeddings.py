"""medlens.embeddings and ``medlens embed``: vectors on disk once, reused by identity."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner


def test_embed_writes_vectors_rows_identity_and_reuses_them(trained_run, image_folder, tmp_path):
    from medlens.data import load_manifest
    from medlens.embeddings import embed, embed_tensors, encoder_from_run

    manifest = load_manifest(trained_run / "manifest.csv")
    encoder = encoder_from_run(trained_run)
    out = tmp_path / "emb"
    emb, stats = embed(encoder, manifest, out, dtype="float16")
    assert not stats["reused"] and stats["images_per_s"] > 0
    assert emb.vectors.dtype == np.float16 and isinstance(emb.vectors, np.memmap)
    assert emb.vectors.shape == (len(manifest), 8)  # TINY_MODEL hidden width
    assert [r["item"] for r in emb.rows] == [r.path for r in manifest]
    identity = json.loads((out / "identity.json").read_text())
    assert identity["weights_sha256"] == encoder.weights_sha256 and identity["dtype"] == "float16"
    from medlens.training.data import load_images

    first = encoder.preprocessing(load_images([manifest.records[0].path])[0])[None]
    expected = embed_tensors(encoder.model, first).numpy()[0]
    np.testing.assert_allclose(emb.select([manifest.records[0].path])[0], expected, atol=2e-3)
    assert embed(encoder, manifest, out, dtype="float16")[1]["reused"]
    assert not embed(encoder, manifest, out, dtype="float32")[1]["reused"]  # new identity


def test_lite0_with_bundled_imagenet_weights(image_folder, tmp_path):
    from medlens.embeddings import embed, encoder_from_model, read_data

    manifest = read_data(image_folder)
    manifest = manifest.with_records(list(manifest)[:4])
    encoder = encoder_from_model("efficientnet_lite0", in_chans=1, image_size=32)
    emb, _ = embed(encoder, manifest, tmp_path / "lite0")
    assert emb.vectors.shape == (4, 1280) and np.isfinite(emb.vectors).all()
    random = encoder_from_model("efficientnet_lite0", pretrained=False, in_chans=1, image_size=32)
    assert random.weights_sha256 != encoder.weights_sha256
    encoder.model.reset_classifier(5)  # the head does not enter the identity
    del encoder.__dict__["weights_sha256"]
    assert embed(encoder, manifest, tmp_path / "lite0")[1]["reused"]


def test_bad_input_gives_typed_errors(trained_run, tmp_path):
    from medlens.data import load_manifest
    from medlens.embeddings import EmbeddingSet, embed, encoder_from_run
    from medlens.errors import ConfigError, DatasetError

    manifest = load_manifest(trained_run / "manifest.csv")
    with pytest.raises(ConfigError, match="float32 or float16"):
        embed(encoder_from_run(trained_run), manifest, tmp_path / "x", dtype="int8")  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="identity.json"):
        EmbeddingSet(tmp_path)


def test_cli_embed_a_run(trained_run, tmp_path):
    from medlens.cli import app

    args = ["embed", str(trained_run), str(trained_run / "manifest.csv"), "-o", str(tmp_path / "e")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "images/s" in first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and "reused" in second.output
