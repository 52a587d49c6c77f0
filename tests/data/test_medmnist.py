"""MedMNIST: the official file as a manifest, and the download with its MD5 check."""

from __future__ import annotations

import io
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from medlens.data import download_medmnist, from_medmnist
from medlens.data.medmnist import MEDMNIST_RECORD_URL, load_npz_item
from medlens.errors import DatasetError

PNEUMONIA_MD5 = "28209eda62fecd6e6a2d98b1501bb15f"


def test_official_splits_and_labels(pneumoniamnist: Path) -> None:
    manifest = from_medmnist(pneumoniamnist)
    assert manifest.classes == ("normal", "pneumonia")
    assert manifest.counts() == {
        "test": {"normal": 234, "pneumonia": 390},
        "train": {"normal": 1214, "pneumonia": 3494},
        "val": {"normal": 135, "pneumonia": 389},
    }
    record = manifest.records[0]
    with np.load(pneumoniamnist) as data:
        expected_image, expected_label = data["train_images"][0], int(data["train_labels"][0, 0])
    np.testing.assert_array_equal(load_npz_item(record.path), expected_image)
    assert record.label == manifest.classes[expected_label]


def test_multilabel_and_bad_files(tmp_path: Path) -> None:
    arrays = {}
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        arrays[f"{split}_images"] = np.zeros((n, 8, 8), np.uint8)
        arrays[f"{split}_labels"] = np.eye(3, dtype=np.uint8)[np.arange(n) % 3]
    arrays["train_labels"][0] = 0  # no finding
    np.savez(tmp_path / "chestlike.npz", **arrays)
    manifest = from_medmnist(tmp_path / "chestlike.npz")
    assert manifest.task == "multilabel" and manifest.classes == ("0", "1", "2")
    assert manifest.records[0].labels == () and manifest.records[1].labels == ("1",)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DatasetError, match="not a MedMNIST file"):
        from_medmnist(tmp_path / "other.npz")
    with pytest.raises(DatasetError, match="no item"):
        load_npz_item(f"{tmp_path / 'chestlike.npz'}#train_images/99")


def test_download_from_a_file_url_with_md5(pneumoniamnist: Path, tmp_path: Path) -> None:
    url = pneumoniamnist.resolve().as_uri()
    path = download_medmnist("pneumoniamnist", tmp_path / "dl", url=url)
    assert path == tmp_path / "dl" / "pneumoniamnist.npz"
    assert path.read_bytes() == pneumoniamnist.read_bytes()
    assert len(from_medmnist(path)) == 5856
    # already there with the right MD5: not fetched again
    assert download_medmnist("pneumoniamnist", tmp_path / "dl", url="file:///nowhere") == path


def test_download_refuses_a_wrong_md5(pneumoniamnist: Path, tmp_path: Path) -> None:
    url = pneumoniamnist.resolve().as_uri()
    with pytest.raises(DatasetError, match="does not match"):
        download_medmnist("pneumoniamnist", tmp_path, url=url, md5="0" * 32)
    assert list(tmp_path.iterdir()) == []  # nothing left behind, not even a temp file


def test_download_uses_the_official_url_and_explains_offline(tmp_path: Path) -> None:
    asked = []

    def offline(url: str) -> io.BytesIO:
        asked.append(url)
        raise urllib.error.URLError("no network")

    with pytest.raises(DatasetError, match="offline"):
        download_medmnist("pneumoniamnist", tmp_path, opener=offline)
    assert asked == [MEDMNIST_RECORD_URL.format(name="pneumoniamnist")]
    assert asked[0] == "https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1"
    served = []
    content = b"not the real file"

    def fake(url: str) -> io.BytesIO:
        served.append(url)
        return io.BytesIO(content)

    import hashlib

    md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
    path = download_medmnist("tinymnist", tmp_path, md5=md5, opener=fake)
    assert path.read_bytes() == content and served
    with pytest.raises(DatasetError, match="no known MD5"):
        download_medmnist("tinymnist", tmp_path / "x")


def test_known_md5_is_the_official_one() -> None:
    from medlens.data import MEDMNIST_SETS

    assert MEDMNIST_SETS["pneumoniamnist"]["md5"] == PNEUMONIA_MD5


# -- MedMNIST 3D ------------------------------------------------------------------------------
VESSEL_MD5 = {"vesselmnist3d": "b41fd4f7e7e2feedddb201585ecafa1b",  # PROVENANCE.txt
              "vesselmnist3d_64": "6bb274a8846e1097066dcd64e2c4520f"}  # fmt: skip
SETS_3D = ("organmnist3d", "nodulemnist3d", "adrenalmnist3d", "fracturemnist3d",
           "vesselmnist3d", "synapsemnist3d")  # fmt: skip


def test_all_six_3d_sets_at_both_sizes_are_known() -> None:
    from medlens.data.medmnist import MEDMNIST_SETS

    for name in SETS_3D:
        small, large = MEDMNIST_SETS[name], MEDMNIST_SETS[f"{name}_64"]
        assert small["classes"] == large["classes"] and small["md5"] != large["md5"]
        assert len(str(small["md5"])) == 32
    assert len(MEDMNIST_SETS["organmnist3d"]["classes"]) == 11  # type: ignore[arg-type]
    assert MEDMNIST_SETS["fracturemnist3d"]["classes"][0] == "buckle rib fracture"  # type: ignore[index]
    assert {n: MEDMNIST_SETS[n]["md5"] for n in VESSEL_MD5} == VESSEL_MD5


@pytest.mark.parametrize(
    "name", ["vesselmnist3d", pytest.param("vesselmnist3d_64", marks=pytest.mark.slow)]
)
def test_real_vesselmnist3d_files_match_and_load_as_volumes(
    name: str, shared_datasets: Path, tmp_path: Path
) -> None:
    from medlens.data.medmnist import _md5

    path = shared_datasets / "medmnist3d" / f"{name}.npz"
    if not path.is_file():
        pytest.skip(f"{path} not staged")
    assert _md5(path) == VESSEL_MD5[name]
    manifest = from_medmnist(path)
    assert manifest.classes == ("vessel", "aneurysm")
    counts = {s: sum(r.split == s for r in manifest.records) for s in ("train", "val", "test")}
    assert counts == {"train": 1335, "val": 191, "test": 382}
    side = 28 if name == "vesselmnist3d" else 64
    volume = load_npz_item(manifest.records[0].path)
    assert volume.shape == (side, side, side) and volume.dtype == np.uint8
    # the official download path, served from the local file, checked against the real MD5
    got = download_medmnist(name, tmp_path, url=path.as_uri())
    assert got.read_bytes() == path.read_bytes()


def test_3d_download_refuses_a_file_that_is_not_the_official_one(tmp_path: Path) -> None:
    fake = tmp_path / "fake.npz"
    np.savez(fake, **{f"{s}_{k}": np.zeros((1, 4, 4, 4), np.uint8) for s in ("train", "val", "test")
                      for k in ("images", "labels")})  # fmt: skip
    with pytest.raises(DatasetError, match="does not match the expected 8755a7e9"):
        download_medmnist("nodulemnist3d", tmp_path / "dl", opener=lambda url: open(fake, "rb"))
    assert not (tmp_path / "dl" / "nodulemnist3d.npz").exists()
