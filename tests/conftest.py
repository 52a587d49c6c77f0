"""Shared fixtures: where the real data lives, and a scratch directory per test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_datasets() -> Path:
    env = os.environ.get("MEDLENS_SHARED_DATASETS")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "datasets"


SHARED_DATASETS = _shared_datasets()


def _element(tag: tuple[int, int], vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element."""
    import struct

    head = struct.pack("<HH", *tag) + vr
    if vr in (b"OB", b"SQ"):
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def _uid(text: str) -> bytes:
    return text.encode() + b"\0" * (len(text) % 2)


def nested_sequence_dicom(depth: int, *, defined_length: bool = False) -> bytes:
    """A DICOM Part 10 file, built byte by byte, whose Content Sequence holds one item
    holding a Content Sequence ... ``depth`` levels deep (undefined or defined lengths)."""
    import struct

    meta = _element((2, 1), b"OB", b"\0\1")
    meta += _element((2, 2), b"UI", _uid("1.2.840.10008.5.1.4.1.1.7"))  # secondary capture
    meta += _element((2, 3), b"UI", _uid("1.2.826.0.1.3680043.8.498.1"))
    meta += _element((2, 0x10), b"UI", _uid("1.2.840.10008.1.2.1"))  # explicit VR LE
    meta = _element((2, 0), b"UL", struct.pack("<I", len(meta))) + meta
    head = b"\0" * 128 + b"DICM" + meta + _element((8, 0x60), b"CS", b"OT")
    sq, item = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0", struct.pack("<HH", 0xFFFE, 0xE000)
    if defined_length:  # each level: 12 bytes of sequence header, 8 of item header
        inside = [20 * (depth - i - 1) for i in range(depth)]  # bytes in each level's item
        levels = [sq + struct.pack("<I", 8 + n) + item + struct.pack("<I", n) for n in inside]
        return head + b"".join(levels)
    undefined = b"\xff\xff\xff\xff"
    close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return head + (sq + undefined + item + undefined) * depth + close * depth


@pytest.fixture(scope="session")
def nested_dicom():
    """``nested_dicom(depth, defined_length=False)``: the bytes of a hostile nested file."""
    return nested_sequence_dicom


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The real datasets beside the checkout (../shared/datasets); skip if absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS} (set MEDLENS_SHARED_DATASETS)")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def dicom_testfile():
    """Return a function that finds a real DICOM file from the pydicom-data package."""
    pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    def find(name: str) -> Path:
        path = get_testdata_file(name)
        if path is None:
            pytest.skip(f"pydicom test file {name} not available (pip install pydicom-data)")
        return Path(path)

    return find


def disk_case(rng: np.random.Generator, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A grey image with a bright disk, and the disk's mask."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx, r = rng.uniform(12, size - 12), rng.uniform(12, size - 12), rng.uniform(5, 9)
    disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    image = np.clip(60 + 120 * disk + rng.normal(0, 25, disk.shape), 0, 255).astype(np.uint8)
    return image, disk


def _disk_png_dataset(root: Path, n: int = 32, size: int = 48, seed: int = 0) -> Path:
    """Grey PNGs with a bright disk; masks saved as 0/255 (a common export)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = ["path,label,patient_id,split,label_path"]
    for i in range(n):
        image, disk = disk_case(rng, size)
        PILImage.fromarray(image).save(root / "images" / f"case{i:02d}.png")
        PILImage.fromarray((disk * 255).astype(np.uint8)).save(root / "masks" / f"case{i:02d}.png")
        split = "train" if i < 20 else "val" if i < 26 else "test"
        rows.append(f"images/case{i:02d}.png,,case{i:02d},{split},masks/case{i:02d}.png")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


@pytest.fixture(scope="session")
def make_disk():
    """``make_disk(rng)``: an image like the 2D segmentation run's, and its disk mask."""
    return disk_case


@pytest.fixture(scope="session")
def seg_run_2d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2D segmentation run (U-Net on the disks, classes background/disk; seconds)."""
    pytest.importorskip("monai")
    from medlens.config import parse_config
    from medlens.tasks import train_run

    root = tmp_path_factory.mktemp("seg2d")
    config = {
        "data": {"manifest": str(_disk_png_dataset(root / "data"))},
        "task": "segmentation",
        "epochs": 3,
        "optimizer": {"lr": 0.003},
        "output_dir": str(root / "run"),
        "segmentation": {
            "iterations_per_epoch": 10,
            "val_every": 3,
            "plan": {"batch_size": 8},
            "base_filters": 8,
            "class_names": ["background", "disk"],
        },
    }
    return train_run(parse_config(config))


@pytest.fixture(scope="session")
def disk_dataset():
    """A function writing a 2D segmentation dataset (grey PNG disks + 0/255 masks, with
    train/val/test splits in a manifest.csv) under a folder; returns the manifest's path."""
    return _disk_png_dataset


# -- tiny classification data and configs (seconds, not minutes) --------------------------
TINY_MODEL = {"name": "simple_cnn", "image_size": 16, "options": {"widths": [4, 8, 8], "hidden": 8}}


def make_image_folder(root: Path, per_class: int = 24, size: int = 16, seed: int = 0) -> Path:
    """``root/{normal,pneumonia}/personN_k.png``: pneumonia images have a bright blob."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, name in enumerate(("normal", "pneumonia")):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.normal(80, 20, (size, size))
            if label:
                r, c = rng.integers(2, size - 6, 2)
                pixels[r : r + 5, c : c + 5] += 120
            array = np.clip(pixels, 0, 255).astype(np.uint8)
            Image.fromarray(array).save(folder / f"person{100 * label + i}_{i}.png")
    return root


def tiny_config(data: Path, output: Path, **changes: Any) -> Any:
    from medlens.config import parse_config

    raw: dict[str, Any] = {
        "data": {"source": str(data), "val_fraction": 0.25},
        "model": TINY_MODEL,
        "optimizer": {"lr": 0.01},
        "epochs": 3,
        "batch_size": 8,
        "num_threads": 1,
        "output_dir": str(output),
    }
    for key, value in changes.items():
        raw[key] = value
    return parse_config(raw)


@pytest.fixture(scope="session")
def make_config() -> Any:
    """``make_config(data, output, **top_level_changes)`` -> a tiny TrainConfig."""
    return tiny_config


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("folder") / "data")


@pytest.fixture(scope="session")
def trained_run(image_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run shared by the read-only tests."""
    from medlens.tasks.run import train_run

    return train_run(tiny_config(image_folder, tmp_path_factory.mktemp("runs") / "run"))


# -- synthetic 3D segmentation data: a bright blob (class 1) and a dim box (class 2) --------
SHAPE = (24, 28, 20)  # NIfTI (i, j, k)


def blob_case(rng: np.random.Generator, shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """An image with a sphere (label 1) and a box (label 2) at random places, and its labels."""
    grid = np.indices(shape).astype(float)
    centre = [rng.uniform(7, n - 7) for n in shape]
    radius = rng.uniform(3.0, 5.0)
    sphere = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2
    box = np.zeros(shape, dtype=bool)
    corner = [int(rng.integers(1, n - 6)) for n in shape]
    box[tuple(slice(c, c + 4) for c in corner)] = True
    box &= ~sphere
    image = rng.normal(0.0, 0.3, shape) + 2.0 * sphere + 1.0 * box
    labels = np.where(sphere, 1, np.where(box, 2, 0)).astype(np.uint8)
    return image.astype(np.float32), labels


def write_decathlon(root: Path, n: int, seed: int = 0, spacing=(1.0, 1.2, 1.5)) -> Path:
    rng = np.random.default_rng(seed)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-10.0, 5.0, 30.0]
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for i in range(n):
        image, labels = blob_case(rng)
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / f"blob_{i:03d}.nii.gz")
        nib.save(nib.Nifti1Image(labels, affine), root / "labelsTr" / f"blob_{i:03d}.nii.gz")
    return root


@pytest.fixture(scope="session")
def blob_dataset(tmp_path_factory) -> Path:
    return write_decathlon(tmp_path_factory.mktemp("blobs") / "Task00_Blobs", 12)


@pytest.fixture(scope="session")
def seg_run_3d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (barely trained) 3D segmentation run on NIfTI blobs (a few seconds)."""
    pytest.importorskip("monai")
    from medlens.config import parse_config
    from medlens.tasks import train_run

    root = tmp_path_factory.mktemp("seg3d")
    config = {
        "data": {"source": str(write_decathlon(root / "Task00_Blobs", 8)), "val_fraction": 0.25},
        "epochs": 1,
        "output_dir": str(root / "run"),
        "segmentation": {
            "iterations_per_epoch": 2,
            "plan": {"patch_size": [16, 16, 16], "batch_size": 2},
            "base_filters": 4,
        },
    }
    return train_run(parse_config(config))


# -- synthetic ordinal grades: brightness encodes the grade -----------------------------------
GRADES = ("none", "mild", "moderate", "severe")  # not alphabetical: the order must be given


def make_grade_folder(root: Path, per_class: int = 20, size: int = 16, seed: int = 0) -> Path:
    """``root/<grade>/pNNN.png``: the mean brightness rises with the grade."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for grade, name in enumerate(GRADES):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.normal(50 + 45 * grade, 18, (size, size))
            array = np.clip(pixels, 0, 255).astype(np.uint8)
            Image.fromarray(array).save(folder / f"p{100 * grade + i}.png")
    return root


@pytest.fixture(scope="session")
def grade_names() -> tuple[str, ...]:
    return GRADES


@pytest.fixture(scope="session")
def grade_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_grade_folder(tmp_path_factory.mktemp("grades") / "data")


@pytest.fixture(scope="session")
def ordinal_run(grade_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ordinal run (CORAL head), shared by the read-only tests."""
    from medlens.tasks.run import train_run

    output = tmp_path_factory.mktemp("runs") / "ordinal"
    config = tiny_config(grade_folder, output, task="ordinal", epochs=4)
    data = config.data.model_copy(update={"classes": list(GRADES)})
    return train_run(config.model_copy(update={"data": data}))


# -- generation: tiny generator configs and images marked synthetic --------------------------
def gen_config(data: Path, output: Path, method: str, **changes: Any) -> Any:
    """A 16 px, 2-epoch generation config (ldm: 1 autoencoder epoch, 1 diffusion epoch)."""
    from medlens.config import parse_config

    generation = {"method": method, "latent_dim": 8, "base_channels": 8, "sampler_steps": 2,
                  "timesteps": 20}  # fmt: skip
    if method == "ldm":
        generation["autoencoder_epochs"] = 1
    raw = {
        "data": {"source": str(data), "val_fraction": 0.25},
        "task": "generation",
        "generation": generation,
        "model": {"image_size": 16},
        "epochs": 2,
        "batch_size": 8,
        "num_threads": 1,
        "output_dir": str(output),
        **changes,
    }
    return parse_config(raw)


def add_marked(root: Path, name: str, n: int, *, seed: int = 0) -> list[Path]:
    """``n`` PNGs marked synthetic in ``root/name/``, named like real patients' files."""
    import torch

    from medlens.generation.sample import write_marked_png

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = root / name / f"person{900 + i}_{i}.png"
        write_marked_png(path, torch.from_numpy(rng.random((1, 16, 16))).float(), {"i": i})
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def make_gen_config() -> Any:
    return gen_config


@pytest.fixture(scope="session")
def make_marked() -> Any:
    return add_marked
