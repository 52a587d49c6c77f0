"""``medlens evaluate-generation`` on a tiny MedMNIST-like file and a folder of PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from medlens.cli import app
from medlens.evaluation import generative as gen

runner = CliRunner()


class _Pooled:
    name = "pooled"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(images, np.float32)
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 4, 4, w // 4, 4).mean((3, 5)).reshape(n, -1)


def _data(root: Path) -> tuple[Path, Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 20), ("val", 8), ("test", 12)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 16, 16), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2)[:, None].astype(np.uint8)
    np.savez(root / "tiny.npz", **arrays)
    for i in range(8):
        folder = root / "gen" / str(i % 2)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(folder / f"{i}.png")
    return root / "tiny.npz", root / "gen"


def test_evaluate_generation_command(tmp_path: Path) -> None:
    real, folder = _data(tmp_path)
    gen.register_feature_extractor("pooled", lambda arg: _Pooled())
    try:
        args = ["evaluate-generation", str(folder), "--real", str(real), "--features", "pooled",
                "-o", str(tmp_path / "out")]  # fmt: skip
        result = runner.invoke(app, args)
    finally:
        del gen.FEATURE_EXTRACTORS["pooled"]
    assert result.exit_code == 0, result.output
    assert "FID" in result.output and "memorised" in result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["extractor"] == "pooled" and metrics["counts"]["fake"] == {"0": 4, "1": 4}
    assert (tmp_path / "out" / "report.html").is_file()


def test_evaluate_generation_unknown_features_is_one_line(tmp_path: Path) -> None:
    real, folder = _data(tmp_path)
    args = ["evaluate-generation", str(folder), "--real", str(real), "--features", "nope",
            "-o", str(tmp_path / "out")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "unknown feature extractor" in result.output
