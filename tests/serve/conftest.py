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

TOKEN = "s3cret-token-for-tests-only"


def build_run(run_dir: Path, *, size: int = 64) -> Path:
    """A binary simple_cnn run directory written with the training part's own helpers."""
    import torch

    from medlens.models import create_model
    from medlens.training.card import write_card
    from medlens.training.checkpoint import save_weights
    from medlens.transforms.preprocess import Preprocessing

    torch.manual_seed(0)
    kwargs = {"name": "simple_cnn", "num_classes": 1, "in_chans": 1, "image_size": size}
    model = create_model(**kwargs)
    sha = save_weights(model, run_dir / "model.safetensors")
    card = {
        "architecture": "simple_cnn",
        "create_model": kwargs,
        "preprocessing": Preprocessing(spatial_size=(size, size)).model_dump(mode="json"),
        "classes": ["NORMAL", "PNEUMONIA"],
        "task": "binary",
        "threshold": 0.5,
        "temperature": 1.0,
        "sha256": sha,
        "intended_use": "Research use only: tests of the medlens service.",
    }
    write_card(run_dir, card)
    return run_dir


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("run"))


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
