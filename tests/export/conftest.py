"""Tiny models and images for the export tests (CPU, a second or two each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn


class TinyNet(nn.Module):
    """conv-bn-relu x2, global pooling, linear: the shape of every registry CNN."""

    def __init__(self, in_chans: int = 1, num_classes: int = 1, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def blob_images(n: int, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images; label 1 ones carry a bright square in the middle (learnable in seconds)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, size, size, generator=gen) * 0.5
    labels = torch.arange(n) % 2
    lo, hi = size // 4, 3 * size // 4
    images[labels == 1, :, lo:hi, lo:hi] += 1.5
    return images, labels


def fit(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int = 40) -> nn.Module:
    """A few Adam steps of binary cross-entropy (model with one logit)."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = nn.functional.binary_cross_entropy_with_logits(
            model(images).squeeze(1), labels.float()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="session", autouse=True)
def _one_thread():  # noqa: ANN202
    """Tiny tensors gain nothing from threads, and the CPU is shared: use one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_net() -> type[TinyNet]:
    """The TinyNet class (a fixture, so test modules need no import from conftest)."""
    return TinyNet


@pytest.fixture(scope="session")
def make_blobs():  # noqa: ANN201
    return blob_images


@pytest.fixture(scope="session")
def blobs() -> tuple[torch.Tensor, torch.Tensor]:
    return blob_images(128)


@pytest.fixture(scope="session")
def trained_tiny(blobs: tuple[torch.Tensor, torch.Tensor]) -> nn.Module:
    torch.manual_seed(0)
    return fit(TinyNet(), *blobs)


def write_blob_dataset(root: Path, n: int = 160, size: int = 16) -> Path:
    """PNG blobs (label "abnormal": a bright square) with a manifest: 60% train, 40% val."""
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = ["path,label,patient_id,split"]
    lo, hi = size // 4, 3 * size // 4
    for i in range(n):
        abnormal = i % 2 == 1
        pixels = rng.normal(100, 30, (size, size))
        if abnormal:
            pixels[lo:hi, lo:hi] += 80
        PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / f"img/{i}.png")
        split = "train" if i < int(0.6 * n) else "val"
        rows.append(f"img/{i}.png,{'abnormal' if abnormal else 'normal'},p{i},{split}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def train_tiny_run(
    manifest: Path, out: Path, *, model: str = "simple_cnn", epochs: int = 3
) -> Path:
    """A real run directory from medlens' own training loop (a few seconds on a CPU)."""
    from medlens.config import parse_config
    from medlens.tasks.run import train_run

    config = parse_config(
        {
            "data": {"manifest": str(manifest)},
            "model": {"name": model, "image_size": 16},
            "epochs": epochs,
            "batch_size": 32,
            "optimizer": {"lr": 0.01},
            "output_dir": str(out),
        }
    )
    return train_run(config)


@pytest.fixture(scope="session")
def blob_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_blob_dataset(tmp_path_factory.mktemp("blobs"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, blob_manifest: Path) -> Path:
    """A trained simple_cnn run; tests must copy it before writing into it."""
    return train_tiny_run(blob_manifest, tmp_path_factory.mktemp("runs") / "tiny")


@pytest.fixture
def run_copy(tmp_path: Path, tiny_run: Path) -> Path:
    """A private copy of the tiny run, free to export into."""
    import shutil

    return Path(shutil.copytree(tiny_run, tmp_path / "run"))
