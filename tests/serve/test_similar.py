"""POST /v1/similar: nearest training cases with labels and pixel-only thumbnails, no PHI."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

PNG_MAGIC = b"\x89PNG"


def _own_run(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the shared run (its manifest re-rooted), so the index is written there."""
    from medlens.data import load_manifest

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    load_manifest(run_dir / "manifest.csv").write(copy / "manifest.csv")
    return copy


def test_similar_returns_neighbours_without_phi(make_client, run_dir, tmp_path, make_png):
    from medlens.similar import SimilarIndex

    run = _own_run(run_dir, tmp_path)
    index = SimilarIndex.build(run)
    client = make_client(run_dir=run)
    assert client.get("/v1/model").json()["similar_cases"] is True
    response = client.post(
        "/v1/similar?k=3", files={"file": ("p7_PNEUMONIA.png", make_png(seed=1), "image/png")}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["backend"] == "numpy" and body["training_cases"] == len(index.labels)
    assert [c["rank"] for c in body["cases"]] == [1, 2, 3]
    sims = [c["similarity"] for c in body["cases"]]
    assert sims == sorted(sims, reverse=True)
    for case in body["cases"]:
        assert case["label"] in ("NORMAL", "PNEUMONIA")
        assert case["label"] == index.labels[case["case"]]
        assert base64.b64decode(case["thumbnail_png"]).startswith(PNG_MAGIC)
    text = json.dumps(body)
    train_rows = (run / "similar" / "rows.csv").read_text().splitlines()[1:]
    for row in train_rows:  # no file name or patient id of any training case
        path, _label, _split, patient = row.split(",")
        assert Path(path).name not in text and Path(path).stem not in text
        assert not patient or patient not in text


def test_similar_without_an_index_says_how_to_build_it(make_client, run_dir, tmp_path, png):
    client = make_client(run_dir=_own_run(run_dir, tmp_path))
    assert client.get("/v1/model").json()["similar_cases"] is False
    response = client.post("/v1/similar", files={"file": ("a.png", png, "image/png")})
    assert response.status_code == 404
    assert "medlens similar" in response.text


def test_similar_refuses_a_non_image(make_client, run_dir, tmp_path):
    from medlens.similar import SimilarIndex

    run = _own_run(run_dir, tmp_path)
    SimilarIndex.build(run)
    client = make_client(run_dir=run)
    response = client.post("/v1/similar", files={"file": ("a.png", b"not a png", "image/png")})
    assert response.status_code in (415, 422)  # refused by its content, never a 500
