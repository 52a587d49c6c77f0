"""PNG / JPEG / TIFF through Pillow, and the PNG writer."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from medlens import read_image
from medlens.errors import ConfigError, ImageTooLargeError, TruncatedImageError
from medlens.io import write_image
from medlens.io.raster import write_png


def test_kermany_jpeg(shared_datasets):
    path = next((shared_datasets / "chest_xray_kermany_224" / "test" / "NORMAL").glob("*.jpeg"))
    image = read_image(path)
    assert image.array.shape[:2] == (224, 224)
    assert image.array.dtype == np.uint8
    assert image.meta["format"] == "JPEG"
    assert 20 < float(image.array.mean()) < 235  # a real radiograph, not blank


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trip_keeps_bits(tmp_path, dtype):
    top = np.iinfo(dtype).max
    array = np.random.default_rng(1).integers(0, top, size=(31, 17), endpoint=True).astype(dtype)
    path = write_png(array, tmp_path / "a.png")
    image = read_image(path)
    np.testing.assert_array_equal(image.array, array)
    assert image.array.dtype == dtype


def test_float_png_is_scaled_and_out_of_range_refused(tmp_path):
    ramp = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    eight = read_image(write_png(ramp, tmp_path / "r8.png")).array
    sixteen = read_image(write_png(ramp, tmp_path / "r16.png", bits=16)).array
    assert eight.max() == 255 and sixteen.max() == 65535 and eight[0, 1] == 1
    with pytest.raises(ConfigError, match="window"):
        write_png(ramp * 1000 - 500, tmp_path / "hu.png")
    with pytest.raises(ConfigError, match="do not fit"):
        write_png(np.array([[0, 300]], dtype=np.int16), tmp_path / "x.png", bits=8)


def test_rgb_png_and_palette(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 255, size=(8, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        read_image(write_image(rgb_image(rgb), tmp_path / "c.png")).array, rgb
    )
    palette = PILImage.fromarray(rgb).convert("P")
    palette.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").array.shape == (8, 9, 3)


def rgb_image(array):
    from medlens.io import Image

    return Image(array=array, spacing=(1.0, 1.0))


def test_tiff_16_bit_pages_stack(tmp_path):
    pages = [PILImage.fromarray(np.full((4, 5), v, dtype=np.uint16)) for v in (1, 500, 60000)]
    pages[0].save(tmp_path / "s.tif", save_all=True, append_images=pages[1:])
    image = read_image(tmp_path / "s.tif")
    assert image.array.shape == (3, 4, 5)
    assert image.array[:, 0, 0].tolist() == [1, 500, 60000]


def test_dpi_gives_spacing(tmp_path):
    PILImage.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "d.png", dpi=(254, 254))
    image = read_image(tmp_path / "d.png")
    assert image.spacing == pytest.approx((0.1, 0.1), rel=1e-2)
    assert image.meta["spacing_known"] is True


def _png_header_only(path, width, height):
    """A PNG whose header claims width x height (8-bit grey) with no pixel data at all."""
    import struct
    import zlib

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def test_absurd_dimensions_are_refused_before_decoding(tmp_path):
    path = _png_header_only(tmp_path / "big.png", 10_000, 10_000)
    with pytest.raises(ImageTooLargeError, match="10000x10000"):
        read_image(path, max_voxels=10**7)


def test_decompression_bomb_guard_of_pillow_is_kept(tmp_path):
    path = _png_header_only(tmp_path / "bomb.png", 65_535, 65_535)
    with pytest.raises(ImageTooLargeError, match="bomb.png"):
        read_image(path)


def test_truncated_png(tmp_path):
    write_png(
        np.random.default_rng(3).integers(0, 255, (64, 64), dtype=np.uint8), tmp_path / "t.png"
    )
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedImageError, match="cut.png"):
        read_image(tmp_path / "cut.png")


def test_label_maps_are_written_as_palette_pngs_that_keep_their_values(tmp_path) -> None:
    """Viewable masks: each class in colour, and reading back gives the label values."""
    from PIL import Image as PILImage

    from medlens.io import Image, read_image, write_image

    values = np.zeros((12, 10), np.uint8)
    values[2:6, 2:6], values[7:10, 4:8] = 1, 255
    label = Image(values, (1.0, 1.0), np.eye(3), kind="label")
    path = write_image(label, tmp_path / "mask.png")
    with PILImage.open(path) as pil:
        assert pil.mode == "P"
        shown = np.asarray(pil.convert("RGB"))
    assert shown[0, 0].tolist() == [0, 0, 0] and shown[3, 3].max() > 100
    assert shown[3, 3].tolist() != shown[8, 5].tolist()  # classes in different colours
    back = read_image(path, kind="label").array
    np.testing.assert_array_equal(back, values)
    assert read_image(path).array.shape == (12, 10, 3)  # as a picture: its colours


def test_grey_masks_saved_as_rgb_read_as_labels(tmp_path) -> None:
    from PIL import Image as PILImage

    from medlens.errors import InvalidImageError
    from medlens.io import read_image

    grey = np.zeros((6, 6, 3), np.uint8)
    grey[1:3, 1:3] = 255
    PILImage.fromarray(grey).save(tmp_path / "grey.png")
    assert read_image(tmp_path / "grey.png", kind="label").array.max() == 255
    grey[0, 0] = (10, 20, 30)
    PILImage.fromarray(grey).save(tmp_path / "colour.png")
    with pytest.raises(InvalidImageError, match="colour image cannot be a label map"):
        read_image(tmp_path / "colour.png", kind="label")
