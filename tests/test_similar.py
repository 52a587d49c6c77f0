"""Similar-case search over a run's training embeddings (numpy and FAISS agree)."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner


def test_index_search_numpy_and_faiss_agree(trained_run, image_folder, tmp_path):
    import shutil

    from medlens.data import load_manifest
    from medlens.io import read_image
    from medlens.similar import SimilarIndex

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    load_manifest(trained_run / "manifest.csv").write(run / "manifest.csv")
    image = read_image(sorted((image_folder / "pneumonia").iterdir())[0])
    exact = SimilarIndex.build(run)
    assert exact.backend == "numpy" and not (run / "similar" / "index.faiss").exists()
    cases = exact.search(image, k=4)
    assert [c.rank for c in cases] == [1, 2, 3, 4]
    assert all(-1.0001 <= c.similarity <= 1.0001 for c in cases)
    vectors = exact.vectors
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    flat = SimilarIndex.build(run, faiss_threshold=2)
    assert flat.backend == "faiss"
    found = flat.search(image, k=4)
    assert [c.case for c in found] == [c.case for c in cases]
    assert np.allclose([c.similarity for c in found], [c.similarity for c in cases], atol=1e-5)
    assert flat.thumbnail_png(cases[0].case).startswith(b"\x89PNG")
    assert exact.search(image, k=10_000)[-1].rank == len(exact.labels)  # k capped


def test_cli_similar(trained_run, image_folder, tmp_path):
    import shutil

    from medlens.cli import app
    from medlens.data import load_manifest

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    load_manifest(trained_run / "manifest.csv").write(run / "manifest.csv")
    image = sorted((image_folder / "normal").iterdir())[0]
    result = CliRunner().invoke(
        app, ["similar", str(run), str(image), "-k", "3", "--thumbnails", str(tmp_path / "t")]
    )
    assert result.exit_code == 0, result.output
    assert "3 nearest" in result.output and image.name not in result.output
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["1.png", "2.png", "3.png"]
