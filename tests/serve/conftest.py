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
