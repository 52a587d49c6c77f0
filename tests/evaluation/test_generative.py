"""Generative-model metrics on tiny synthetic arrays with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medlens.errors import ConfigError, EvaluationError, WeightsError
from medlens.evaluation import generative as gen
from medlens.evaluation.generative_report import (
    memorisation_pairs,
    render_generation_report,
    write_generation_report,
)

CLASSES = ("normal", "pneumonia")


def _blobs(n: int, seed: int, *, size: int = 28, bright: float = 0.0) -> np.ndarray:
    """Smooth grey images: a blurred noise field plus a Gaussian blob, in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    images = []
    for _ in range(n):
        cy, cx, s = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.08, 0.2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))
        noise = rng.normal(0, 0.08, (size, size))
        images.append(np.clip(0.2 + bright + 0.5 * blob + noise, 0, 1))
    return np.asarray(images, np.float32)[:, None]


class _Pixels:
    """A cheap extractor: 4x4 average-pooled pixels (49 features at 28 px)."""

    name = "pixels4"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(images, np.float32)
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 4, 4, w // 4, 4).mean((3, 5)).reshape(n, -1)


def _features(n: int, seed: int, shift: float = 0.0, d: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, (n, d))


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift() -> None:
    real = _features(300, 0)
    assert gen.frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)
    same = gen.frechet_distance(real, _features(300, 1))
    shifted = gen.frechet_distance(real, _features(300, 1, shift=1.0))
    assert same < 1.0 < shifted
    assert shifted == pytest.approx(16.0, rel=0.2)  # |mean difference|^2 = 16 x 1^2


def test_fid_with_fewer_samples_than_dimensions_is_finite() -> None:
    value = gen.frechet_distance(_features(10, 0, d=40), _features(10, 1, d=40))
    assert np.isfinite(value) and value > 0


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two() -> None:
    same = gen.kernel_inception_distance(
        _features(200, 0), _features(200, 1), subsets=20, subset_size=100
    )
    shifted = gen.kernel_inception_distance(
        _features(200, 0), _features(200, 1, shift=1.0), subsets=20, subset_size=100
    )
    assert abs(same["mean"]) < 0.05 < shifted["mean"]
    assert same["subset_size"] == 100 and same["std"] > 0


def test_precision_recall_one_for_identical_sets_and_low_for_disjoint() -> None:
    real = _features(100, 0)
    assert gen.precision_recall(real, real) == {"precision": 1.0, "recall": 1.0, "k": 3}
    far = gen.precision_recall(real, _features(100, 1, shift=10.0))
    assert far["precision"] < 0.05 and far["recall"] < 0.05


def test_precision_drops_when_samples_leave_the_real_manifold() -> None:
    real = _features(200, 0)
    half = np.concatenate([_features(100, 1), _features(100, 2, shift=10.0)])
    result = gen.precision_recall(real, half)
    assert 0.3 < result["precision"] < 0.6


def test_memorisation_flags_exact_copies_and_not_fresh_noise() -> None:
    train = _blobs(40, 0)
    copies = train[[3, 7, 11]]
    fresh = np.random.default_rng(5).random((3, 1, 28, 28)).astype(np.float32)
    fake = np.concatenate([copies, fresh])
    extract = _Pixels()
    result = gen.memorisation(extract(train), extract(fake), train, fake)
    assert result["flagged"] == [True, True, True, False, False, False]
    assert result["pixel"]["nearest_index"][:3] == [3, 7, 11]
    assert result["feature"]["nearest_index"][:3] == [3, 7, 11]
    assert result["rate"] == pytest.approx(0.5)
    assert "percentile 1 of" in result["rule"]


def test_ms_ssim_settings_fit_small_images_and_say_so() -> None:
    small = gen.ms_ssim_settings(28, 28)
    assert (small.scales, small.kernel_size) == (3, 7)
    assert "too small" in small.note and sum(small.weights) == pytest.approx(1.0)
    assert gen.ms_ssim_settings(256, 256).note.startswith("standard")
    with pytest.raises(EvaluationError):
        gen.ms_ssim_settings(2, 2)


def test_ms_ssim_diversity_is_higher_for_duplicates() -> None:
    varied = _blobs(20, 0)
    duplicates = np.repeat(varied[:2], 10, axis=0)
    a = gen.ms_ssim_diversity(varied, n_pairs=40)
    b = gen.ms_ssim_diversity(duplicates, n_pairs=40)
    assert a is not None and b is not None
    assert b["mean"] > a["mean"] + 0.1
    assert gen.ms_ssim_diversity(varied[:1]) is None


def _metrics(fake: np.ndarray, fake_y: np.ndarray) -> dict:
    real, real_y = _blobs(40, 1), np.arange(40) % 2
    train, train_y = _blobs(40, 0), np.arange(40) % 2
    return gen.generation_metrics(
        real,
        real_y,
        fake,
        fake_y,
        extractor=_Pixels(),
        classes=CLASSES,
        train=train,
        train_labels=train_y,
        kid_subsets=5,
        kid_subset_size=16,
        ms_ssim_pairs=20,
    )


def test_generation_metrics_overall_and_per_class_are_json_ready(tmp_path: Path) -> None:
    fake, fake_y = _blobs(30, 2, bright=0.25), np.arange(30) % 2
    result = _metrics(fake, fake_y)
    assert set(result["per_class"]) == set(CLASSES)
    assert result["counts"]["fake"] == {"normal": 15, "pneumonia": 15}
    for entry in [result["overall"], *result["per_class"].values()]:
        assert entry["fid"] > 0 and entry["precision"] is not None
        assert entry["ms_ssim"]["mean"] > 0
    close = _metrics(_blobs(30, 3), fake_y)
    assert close["overall"]["fid"] < result["overall"]["fid"]
    assert result["extractor"] == "pixels4" and result["feature_dim"] == 49
    from medlens.evaluation._io import write_json

    json.loads(write_json(tmp_path / "m.json", result).read_text())


def test_generation_metrics_checks_labels() -> None:
    with pytest.raises(EvaluationError, match="class indices"):
        _metrics(_blobs(4, 2), np.array([0, 1, 2, 0]))
    with pytest.raises(EvaluationError, match="\\[0, 1\\]"):
        _metrics(_blobs(4, 2) + 2, np.zeros(4))


def test_report_renders_tables_samples_and_pairs(tmp_path: Path) -> None:
    train = _blobs(40, 0)
    fake = np.concatenate([train[:2], _blobs(10, 4)])
    fake_y = np.arange(12) % 2
    metrics = _metrics(fake, fake_y)
    pairs = memorisation_pairs(metrics, 3)
    assert [p["sample"] for p in pairs[:2]] == [0, 1] and pairs[0]["flagged"]
    tstr = {
        "tstr": {"roc_auc": {"value": 0.8, "ci_low": 0.7, "ci_high": 0.9}, "n_train": 12},
        "trtr": {"roc_auc": {"value": 0.9, "ci_low": 0.85, "ci_high": 0.95}, "n_train": 40},
        "selection": "real val",
        "model": {"name": "simple_cnn"},
    }
    out = write_generation_report(
        tmp_path / "gen",
        metrics=metrics,
        title="<gan> run",
        fake=fake,
        fake_labels=fake_y,
        train=_blobs(40, 0),
        tstr=tstr,
        provenance={"run": "runs/gan", "seed": 0},
    )
    page = (out / "report.html").read_text()
    assert "&lt;gan&gt; run" in page and "<gan>" not in page
    for text in (
        "Generation metrics",
        "Samples per class",
        "Memorisation check",
        "flagged",
        "Train on synthetic",
        "0.800",
        "Provenance",
        "3 scale(s)",
    ):
        assert text in page
    assert page.count("data:image/png;base64") >= 2 + 3
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["tstr"]["tstr"]["roc_auc"]["value"] == 0.8
    assert "Samples per class" not in render_generation_report(metrics=metrics, title="t")


def test_read_image_folder_round_trip(tmp_path: Path) -> None:
    from PIL import Image

    for c, name in enumerate(CLASSES):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((28, 28), 50 * (c + i), np.uint8)).save(
                tmp_path / name / f"{i}.png"
            )
    (tmp_path / "provenance.json").write_text("{}")
    images, labels, names = gen.read_image_folder(tmp_path)
    assert images.shape == (6, 1, 28, 28) and names == CLASSES
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert images[4, 0, 0, 0] == pytest.approx(100 / 255)
    with pytest.raises(EvaluationError):
        gen.read_image_folder(tmp_path / "normal")


def test_feature_extractor_names() -> None:
    with pytest.raises(ConfigError, match="lite0"):
        gen.feature_extractor("nope")
    with pytest.raises(ConfigError, match="run:PATH"):
        gen.feature_extractor("run")
    extract = _Pixels()
    assert gen.feature_extractor(extract) is extract
    gen.register_feature_extractor("pixels4", lambda arg: _Pixels())
    try:
        assert gen.feature_extractor("pixels4").name == "pixels4"
    finally:
        del gen.FEATURE_EXTRACTORS["pixels4"]


def test_inception_offline_is_refused_with_a_clear_message(monkeypatch) -> None:
    from medlens.models import _torchvision

    def offline(weights):
        raise WeightsError("cannot download ImageNet weights (no network)")

    monkeypatch.setattr(_torchvision, "download_torchvision", offline)
    with pytest.raises(WeightsError, match="Offline, use --features lite0"):
        gen.feature_extractor("inception")


@pytest.mark.slow
def test_lite0_features_offline_any_channels_and_size() -> None:
    extract = gen.feature_extractor("lite0@32")
    grey = extract(_blobs(3, 0))
    rgb = extract(np.repeat(_blobs(3, 0, size=20), 3, axis=1))
    assert grey.shape == (3, 1280) and rgb.shape == (3, 1280)
    assert extract.name == "lite0@32" and np.isfinite(grey).all()


@pytest.mark.slow
def test_features_from_a_tiny_local_classifier_run(trained_run: Path) -> None:
    extract = gen.feature_extractor(f"run:{trained_run}")
    features = extract(_blobs(5, 0))  # 28 px given to a 16 px model: its preprocessing resizes
    assert features.shape == (5, 8)  # the tiny simple_cnn's hidden width
    assert extract.name == f"run:{trained_run.name}"
    assert np.allclose(features, extract(_blobs(5, 0)))


def _tiny_npz(path: Path, seed: int = 0) -> Path:
    """A MedMNIST-like file at 16 px: class 1 has a bright square, class 0 none."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 40), ("val", 16), ("test", 24)):
        labels = np.arange(n) % 2
        images = rng.normal(80, 20, (n, 16, 16))
        for i in np.flatnonzero(labels):
            r, c = rng.integers(2, 10, 2)
            images[i, r : r + 5, c : c + 5] += 120
        arrays[f"{split}_images"] = np.clip(images, 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels[:, None].astype(np.uint8)
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
def test_tstr_trains_on_synthetic_and_tests_on_real(tmp_path: Path) -> None:
    real = _tiny_npz(tmp_path / "tiny.npz")
    with np.load(_tiny_npz(tmp_path / "other.npz", seed=1)) as other:  # real-like "synthetic"
        fake, fake_y = other["train_images"][:, None] / 255.0, other["train_labels"][:, 0]
    tiny = {"name": "simple_cnn", "options": {"widths": [4, 8, 8], "hidden": 8}}
    options = {"epochs": 2, "model": tiny, "config": {"num_threads": 1}, "n_bootstrap": 50}
    result = gen.tstr_auc(fake, fake_y, real, tmp_path / "tstr", **options)
    assert result["tstr"]["n_test"] == result["trtr"]["n_test"] == 24
    assert result["tstr"]["n_train"] == 40 and result["trtr"]["n_train"] == 40
    for key in ("tstr", "trtr"):
        auc = result[key]["roc_auc"]
        assert 0 <= auc["ci_low"] <= auc["value"] <= auc["ci_high"] <= 1
    assert result["gap"] == pytest.approx(
        result["trtr"]["roc_auc"]["value"] - result["tstr"]["roc_auc"]["value"]
    )
    rows = (tmp_path / "tstr" / "tstr_data" / "manifest.csv").read_text().splitlines()
    train_rows = [r for r in rows if r.endswith(",train,")]
    assert len(train_rows) == 40 and all("synthetic" in r for r in train_rows)
    assert not any("synthetic" in r for r in rows if ",val," in r or ",test," in r)
    saved = json.loads((tmp_path / "tstr" / "tstr.json").read_text())
    assert saved["tstr"]["roc_auc"] == result["tstr"]["roc_auc"]
    again = gen.tstr_auc(fake, fake_y, real, tmp_path / "tstr", **options)  # reuses the runs
    assert again["tstr"]["roc_auc"] == result["tstr"]["roc_auc"]


def test_tstr_refuses_classes_that_differ_from_the_real_data(tmp_path: Path) -> None:
    real = _tiny_npz(tmp_path / "tiny.npz")
    with pytest.raises(EvaluationError, match="differ"):
        gen.tstr_auc(_blobs(4, 0, size=16), np.zeros(4), real, tmp_path / "t", classes=("a", "b"))


def test_evaluate_generation_writes_metrics_and_report(tmp_path: Path) -> None:
    from PIL import Image

    real = _tiny_npz(tmp_path / "tiny.npz")
    with np.load(real) as data:
        train, labels = data["train_images"], data["train_labels"][:, 0]
    folder = tmp_path / "gen"
    for i, (image, label) in enumerate(zip(train[:12], labels[:12], strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / str(label) / f"{i}.png")  # copies of training
    (folder / "provenance.json").write_text(json.dumps({"synthetic": True, "requests": []}))
    out = gen.evaluate_generation(
        folder, real, tmp_path / "eval", features=_Pixels(), kid_subsets=3, ms_ssim_pairs=10,
        feature_cache=tmp_path / "cache",
    )  # fmt: skip
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3  # test, train and samples
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["fake"] == {"0": 6, "1": 6}
    assert metrics["counts"]["train"] == {"0": 20, "1": 20}
    assert metrics["memorisation"]["rate"] == 1.0  # every image is a training image
    assert metrics["ms_ssim_settings"]["scales"] < 5  # 16 px
    page = (out / "report.html").read_text()
    assert "Provenance" in page and "Memorisation check" in page


def test_cached_features_embed_each_image_set_once(tmp_path: Path) -> None:
    from medlens.evaluation.generative_features import CachedFeatures

    class Counting(_Pixels):
        calls = 0

        def __call__(self, images: np.ndarray) -> np.ndarray:
            Counting.calls += 1
            return super().__call__(images)

    images = _blobs(6, 0, size=16)
    cached = CachedFeatures(Counting(), tmp_path / "cache")
    first = cached(images)
    assert np.array_equal(CachedFeatures(Counting(), tmp_path / "cache")(images), first)
    assert Counting.calls == 1 and cached.computed == 6 and len(list(tmp_path.glob("cache/*"))) == 1
    cached(images[:3])  # other images, other key
    other = Counting()
    other.name = "pixels4-other"  # another extractor never reads this one's features
    CachedFeatures(other, tmp_path / "cache")(images)
    assert Counting.calls == 3 and len(list(tmp_path.glob("cache/*.npy"))) == 3
    assert not list(tmp_path.glob("cache/.*"))  # no temporary files left


def test_public_names_exist_and_are_sorted() -> None:
    assert gen.__all__ == sorted(gen.__all__)
    assert [name for name in gen.__all__ if not hasattr(gen, name)] == []
