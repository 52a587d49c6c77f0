"""Preprocessing: sizes, intensity, channels, label maps, and the model.json round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medlens.errors import ConfigError, InvalidImageError
from medlens.io import Image, read_image
from medlens.transforms import IMAGENET_MEAN, Preprocessing, preprocessing_from_dict
from medlens.transforms.preprocess import pad_crop


def _image(array: np.ndarray, *, kind: str = "scalar", spacing=None) -> Image:
    spacing = spacing or (1.0,) * (array.ndim if array.ndim == 2 or array.shape[-1] > 4 else 2)
    return Image(array, tuple(spacing), kind=kind)


def test_round_trip_through_json() -> None:
    original = Preprocessing(
        spatial_size=(96, 80), window="lung", channels=3, mean="imagenet", size_mode="pad_crop"
    )
    assert original.mean == IMAGENET_MEAN
    card = json.loads(json.dumps({"preprocessing": original.model_dump(mode="json")}))
    rebuilt = Preprocessing.model_validate(card["preprocessing"])
    assert rebuilt == original
    ct = _image(np.linspace(-1200, 800, 64 * 64, dtype=np.float32).reshape(64, 64))
    torch.testing.assert_close(rebuilt(ct), original(ct), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"window": "lung", "percentiles": (1, 99)}, "not both"),
        ({"window": "nonsense"}, "unknown window"),
        ({"spatial_size": (0, 4)}, "positive"),
        ({"mean": (0.1, 0.2)}, "mean needs"),
        ({"percentiles": (60, 40)}, "percentiles"),
        ({"size": 3}, "Extra inputs"),
    ],
)
def test_invalid_settings_are_config_errors(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        preprocessing_from_dict(fields, source="model.json")


def test_kermany_rgb_jpeg_to_grey_and_back(kermany_image: Path) -> None:
    image = read_image(kermany_image)
    assert image.array.shape == (224, 224, 3)
    grey = Preprocessing(spatial_size=(224, 224))(image)
    assert grey.shape == (1, 224, 224)
    np.testing.assert_allclose(grey[0].numpy(), image.array[..., 0] / 255.0, atol=1e-5)
    rgb = Preprocessing(spatial_size=(112, 112), channels=3, mean=(0.5,), std=(0.25,))(image)
    assert rgb.shape == (3, 112, 112)
    torch.testing.assert_close(rgb[0], rgb[2])
    small = Preprocessing(spatial_size=(112, 112))(image)
    torch.testing.assert_close(rgb[1], (small[0] - 0.5) / 0.25, rtol=0, atol=1e-5)


def test_window_and_percentiles_on_hounsfield_units() -> None:
    hu = np.array([[-1000.0, -600.0], [150.0, 1000.0]], dtype=np.float32)
    out = Preprocessing(window="-600,1500")(_image(hu))[0]
    expected = np.clip((hu - (-600 - 750)) / 1500, 0, 1)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-3)
    ramp = np.arange(100, dtype=np.float32).reshape(10, 10)
    clipped = Preprocessing(percentiles=(10, 90))(_image(ramp))[0]
    assert float(clipped.min()) == 0.0 and float(clipped.max()) == 1.0
    assert int((clipped == 0).sum()) == 10 and int((clipped == 1).sum()) == 10  # p10 = 9.9


def test_scaling_modes() -> None:
    u16 = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    np.testing.assert_allclose(Preprocessing()(_image(u16))[0].numpy(), u16 / 4000, atol=1e-6)
    ranged = Preprocessing(scaling="range")(_image(u16))[0].numpy()
    np.testing.assert_allclose(ranged, u16 / 65535, atol=1e-6)
    z = Preprocessing(scaling="zscore")(_image(u16))[0]
    assert abs(float(z.mean())) < 1e-6 and abs(float(z.std()) - 1) < 1e-5
    flat = Preprocessing()(_image(np.full((4, 4), 7, np.int16)))
    assert torch.equal(flat, torch.zeros(1, 4, 4))


def test_label_maps_use_nearest_neighbour() -> None:
    labels = np.zeros((20, 30, 40), dtype=np.uint8)
    labels[5:15, 10:20, 10:30] = 1
    labels[8:12, 12:18, 15:25] = 2
    image = _image(labels, kind="label", spacing=(2.0, 1.0, 1.0))
    out = Preprocessing(spacing=(1.0, 1.5, 1.5), spatial_size=(40, 24, 24))(image)
    assert out.dtype == torch.int64 and out.shape == (1, 40, 24, 24)
    assert set(out.unique().tolist()) == {0, 1, 2}
    resampled = Preprocessing(spacing=(1.0, 1.0, 1.0))(image)
    assert resampled.shape == (1, 40, 30, 40)
    np.testing.assert_array_equal(resampled[0, ::2].numpy(), labels)


def test_hippocampus_pair_pad_crop(hippocampus_pair: tuple[Path, Path]) -> None:
    image = read_image(hippocampus_pair[0])
    label = read_image(hippocampus_pair[1])
    preprocessing = Preprocessing(spatial_size=(48, 64, 48), size_mode="pad_crop", scaling="zscore")
    x, y = preprocessing(image), preprocessing(label.with_array(label.array, kind="label"))
    assert x.shape == y.shape == (1, 48, 64, 48)
    assert int((y > 0).sum()) == int((label.array > 0).sum())  # padding kept every voxel
    assert set(y.unique().tolist()) == {0, 1, 2}


def test_pad_crop_centres() -> None:
    tensor = torch.arange(6.0).view(1, 2, 3)
    out = pad_crop(tensor, (4, 1), fill=-1)
    assert out.tolist() == [[[-1.0], [1.0], [4.0], [-1.0]]]


def test_dimension_mismatch_is_an_invalid_image() -> None:
    with pytest.raises(InvalidImageError, match="3D image given to a preprocessing for 2D"):
        Preprocessing(spatial_size=(8, 8))(_image(np.zeros((4, 5, 6), np.float32)))
