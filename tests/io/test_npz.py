"""NumPy arrays and MedMNIST files."""

from __future__ import annotations

import numpy as np
import pytest

from medlens import read_image
from medlens.errors import InvalidImageError
from medlens.io import list_arrays, read_numpy


def test_pneumoniamnist_one_image(shared_datasets):
    path = shared_datasets / "pneumoniamnist" / "pneumoniamnist.npz"
    arrays = list_arrays(path)
    assert arrays["test_images"] == ((624, 28, 28), "uint8")
    image = read_numpy(path, key="test_images", index=5)
    with np.load(path) as data:
        np.testing.assert_array_equal(image.array, data["test_images"][5])
    assert image.array.shape == (28, 28) and image.meta["array"] == "test_images"
    with pytest.raises(InvalidImageError, match="holds several arrays.*test_images"):
        read_image(path)
    with pytest.raises(InvalidImageError, match="out of range"):
        read_numpy(path, key="test_images", index=624)


def test_npy_shapes(tmp_path):
    np.save(tmp_path / "grey.npy", np.zeros((5, 6), np.float32))
    np.save(tmp_path / "rgb.npy", np.zeros((5, 6, 3), np.uint8))
    np.save(tmp_path / "vol.npy", np.zeros((4, 5, 6), np.int16))
    assert read_image(tmp_path / "grey.npy").spacing == (1.0, 1.0)
    assert read_image(tmp_path / "rgb.npy").is_rgb
    assert read_image(tmp_path / "vol.npy").ndim == 3
    np.savez(tmp_path / "one.npz", image=np.ones((3, 3)))
    assert read_image(tmp_path / "one.npz").array.sum() == 9


def test_pickled_arrays_are_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidImageError, match="obj.npy"):
        read_image(tmp_path / "obj.npy")


def test_nan_array_is_refused(tmp_path):
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.inf], [1.0, 2.0]]))
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        read_image(tmp_path / "nan.npy")
