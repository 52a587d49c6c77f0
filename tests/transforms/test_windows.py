"""preprocessing.windows: several CT windows, one channel each."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.errors import ConfigError
from medlens.io.base import raster_affine
from medlens.io.image import Image
from medlens.transforms.preprocess import preprocessing_from_dict

HEAD_CT = [[40, 80], [80, 200], [600, 2800]]  # brain, subdural, bone (centre, width in HU)


def _ct(values: list[float]) -> Image:
    array = np.array(values, np.float32).reshape(1, 1, -1).repeat(2, axis=0)
    return Image(array, (1.0, 1.0, 1.0), raster_affine((1.0, 1.0, 1.0)), modality="CT")


def test_each_window_becomes_one_channel() -> None:
    prep = preprocessing_from_dict({"windows": HEAD_CT})
    assert prep.channels == 3
    out = prep(_ct([-1000.0, 40.0, 80.0, 1000.0]))
    assert out.shape == (3, 2, 1, 4)
    np.testing.assert_allclose(out[0, 0, 0].numpy(), [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(out[1, 0, 0].numpy(), [0.0, 0.3, 0.5, 1.0])
    np.testing.assert_allclose(out[2, 0, 0].numpy(), [0.0, 0.3, 0.3142857, 0.6428571], rtol=1e-5)


def test_windows_round_trip_through_the_card() -> None:
    prep = preprocessing_from_dict({"windows": HEAD_CT, "mean": [0.5], "std": [0.25]})
    again = preprocessing_from_dict(prep.model_dump(mode="json"))
    assert again == prep


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"windows": HEAD_CT, "window": "lung"}, "not both"),
        ({"windows": HEAD_CT, "channels": 1}, "3 windows give 3 channels"),
        ({"windows": [[40, 0]]}, "width > 0"),
        ({"channels": 2}, "channels must be 1 or 3"),
    ],
)
def test_incoherent_windows_are_config_errors(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        preprocessing_from_dict(section)
