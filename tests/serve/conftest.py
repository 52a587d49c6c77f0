"""A real run directory (tiny model, real model card), apps on it, and real input files."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what we ship
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from medlens.serve import ServeSettings, create_app  # noqa: E402

TOKEN = "s3cret-token-for-tests-only"  # noqa: S105 - a test token


def synthetic_folder(root: Path, per_class: int = 8, size: int = 32) -> Path:
    """NORMAL / PNEUMONIA folders of grey PNGs; PNEUMONIA ones carry a bright square."""
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            array = rng.integers(0, 100, (size, size), dtype=np.uint8)
            if cls == "PNEUMONIA":
                array[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] += 120
            PILImage.fromarray(array).save(root / cls / f"p{i}_{cls}.png")
    return root


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run directory: ``train_run`` on a tiny synthetic dataset (a few seconds)."""
    from medlens.config import parse_config
    from medlens.tasks.run import train_run

    root = tmp_path_factory.mktemp("training")
    config = {
        "data": {"source": str(synthetic_folder(root / "data")), "group_by_patient": False},
        "model": {"name": "simple_cnn", "image_size": 32},
        "preprocessing": {"spatial_size": [32, 32]},
        "epochs": 1,
        "batch_size": 8,
        "output_dir": str(root / "run"),
    }
    return train_run(parse_config(config))


@pytest.fixture
def make_settings(run_dir: Path, tmp_path: Path) -> Callable[..., ServeSettings]:
    def make(**changes: object) -> ServeSettings:
        values = {"run_dir": run_dir, "database_url": str(tmp_path / "audit.sqlite"), **changes}
        return ServeSettings(**values)

    return make


@pytest.fixture
def make_client(make_settings: Callable[..., ServeSettings]) -> Iterator[Callable[..., TestClient]]:
    """Start apps (lifespan included) and wait until their model is ready."""
    clients: list[TestClient] = []

    def make(predictor: object = None, wait: bool = True, **changes: object) -> TestClient:
        app = create_app(make_settings(**changes), predictor=predictor)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        if wait:
            app.state.service.model.wait(30)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def png_bytes(size: int = 224, *, seed: int = 0, mode: str = "L") -> bytes:
    """A synthetic grey (or RGB) PNG with a bright square."""
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    array = rng.integers(0, 120, (size, size), dtype=np.uint8)
    array[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] += 100
    buffer = io.BytesIO()
    PILImage.fromarray(array).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def make_png() -> Callable[..., bytes]:
    return png_bytes


@pytest.fixture(scope="session")
def png() -> bytes:
    return png_bytes()


@pytest.fixture(scope="session")
def token() -> str:
    return TOKEN


@pytest.fixture(scope="session")
def ct_dicom(dicom_testfile: Callable[[str], Path]) -> Path:
    return dicom_testfile("CT_small.dcm")


@pytest.fixture(scope="session")
def xray_jpeg(shared_datasets: Path) -> Path:
    folder = shared_datasets / "chest_xray_kermany_224" / "test" / "PNEUMONIA"
    return sorted(folder.glob("*.jpeg"))[0]


# --- segmentation ----------------------------------------------------------------------


def disk_case(rng: np.random.Generator, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A grey image with a bright disk, and the disk's mask."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx, r = rng.uniform(12, size - 12), rng.uniform(12, size - 12), rng.uniform(5, 9)
    disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    image = np.clip(60 + 120 * disk + rng.normal(0, 25, disk.shape), 0, 255).astype(np.uint8)
    return image, disk


@pytest.fixture(scope="session")
def make_disk() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``make_disk(rng)``: an image like the 2D segmentation run's, and its disk mask."""
    return disk_case


def _disk_manifest(root: Path, n: int = 32) -> Path:
    """PNG images with a bright disk and 0/255 masks, as tests/segmentation trains on."""
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = ["path,label,patient_id,split,label_path"]
    for i in range(n):
        image, disk = disk_case(rng)
        PILImage.fromarray(image).save(root / "images" / f"case{i:02d}.png")
        PILImage.fromarray((disk * 255).astype(np.uint8)).save(root / "masks" / f"case{i:02d}.png")
        split = "train" if i < 20 else "val" if i < 26 else "test"
        rows.append(f"images/case{i:02d}.png,,case{i:02d},{split},masks/case{i:02d}.png")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


@pytest.fixture(scope="session")
def seg_run_2d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2D segmentation run (U-Net on disks, classes background/disk; ~15 s)."""
    pytest.importorskip("monai")
    from medlens.config import parse_config
    from medlens.tasks.run import train_run

    root = tmp_path_factory.mktemp("seg2d")
    config = {
        "data": {"manifest": str(_disk_manifest(root / "data"))},
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


def write_blobs(root: Path, n: int = 8, shape: tuple[int, int, int] = (24, 28, 20)) -> Path:
    """A Decathlon folder of NIfTI volumes with a bright sphere (label 1) on noise."""
    import nibabel as nib

    rng = np.random.default_rng(0)
    affine = np.diag([1.0, 1.2, 1.5, 1.0])
    affine[:3, 3] = [-10.0, 5.0, 30.0]
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    grid = np.indices(shape).astype(float)
    for i in range(n):
        centre = [rng.uniform(7, s - 7) for s in shape]
        sphere = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= 4.0**2
        image = (rng.normal(0.0, 0.3, shape) + 2.0 * sphere).astype(np.float32)
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / f"blob_{i:03d}.nii.gz")
        labels = sphere.astype(np.uint8)
        nib.save(nib.Nifti1Image(labels, affine), root / "labelsTr" / f"blob_{i:03d}.nii.gz")
    return root


@pytest.fixture(scope="session")
def seg_run_3d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (barely trained) 3D segmentation run on NIfTI blobs (a few seconds)."""
    pytest.importorskip("monai")
    from medlens.config import parse_config
    from medlens.tasks.run import train_run

    root = tmp_path_factory.mktemp("seg3d")
    config = {
        "data": {"source": str(write_blobs(root / "Task00_Blobs")), "val_fraction": 0.25},
        "epochs": 1,
        "output_dir": str(root / "run"),
        "segmentation": {
            "iterations_per_epoch": 2,
            "plan": {"patch_size": [16, 16, 16], "batch_size": 2},
            "base_filters": 4,
        },
    }
    return train_run(parse_config(config))
