"""Models trained in seconds: a lesion detector (synthetic) and a PneumoniaMNIST CNN (real)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from medlens.models import create_model

LESION_SIZE, LESION_RADIUS = 32, 3


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_binary(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int):
    """A plain Adam loop on a one-logit binary model; returns it in eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=order).split(64):
            opt.zero_grad()
            logits = model(x[idx])[:, 0]
            torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx].float()).backward()
            opt.step()
    return model.eval()


@dataclass
class Lesions:
    """Noise images, half with a bright disc (the lesion) at a known centre."""

    images: torch.Tensor
    labels: torch.Tensor
    centres: np.ndarray
    radius: int = LESION_RADIUS


def make_lesions(n: int, seed: int) -> Lesions:
    rng = np.random.default_rng(seed)
    s = LESION_SIZE
    x = rng.normal(0, 0.3, (n, 1, s, s)).astype(np.float32)
    y = rng.integers(0, 2, n)
    centres = rng.integers(6, s - 6, (n, 2))
    rows, cols = np.mgrid[:s, :s]
    for i in np.flatnonzero(y):
        disc = (rows - centres[i, 0]) ** 2 + (cols - centres[i, 1]) ** 2 <= LESION_RADIUS**2
        x[i, 0][disc] += 2.0
    return Lesions(torch.from_numpy(x), torch.from_numpy(y), centres)


@pytest.fixture(scope="session")
def lesions() -> Lesions:
    """A held-out set (not seen in training)."""
    return make_lesions(48, seed=1)


@pytest.fixture(scope="session")
def lesion_model() -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        data = make_lesions(384, seed=0)
        model = create_model(
            "simple_cnn", num_classes=1, in_chans=1, image_size=32, batch_norm=True
        )
        return train_binary(model, data.images, data.labels, epochs=4)


@dataclass
class Pneumonia:
    trained: torch.nn.Module
    random: torch.nn.Module
    test_images: torch.Tensor


@pytest.fixture(scope="session")
def pneumonia(shared_datasets: Path) -> Pneumonia:
    """simple_cnn trained briefly on 1,000 real PneumoniaMNIST X-rays, and a random twin."""
    data = np.load(shared_datasets / "pneumoniamnist" / "pneumoniamnist.npz")

    def scale(images: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(images[:, None].astype(np.float32)) / 255 - 0.5) / 0.5

    x, y = scale(data["train_images"][:1000]), torch.from_numpy(data["train_labels"][:1000, 0])
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        torch.manual_seed(0)
        kwargs = {"num_classes": 1, "in_chans": 1, "image_size": 28, "batch_norm": True}
        trained = train_binary(create_model("simple_cnn", **kwargs), x, y, epochs=3)
        torch.manual_seed(1)
        random = create_model("simple_cnn", **kwargs).eval()
    return Pneumonia(trained, random, scale(data["test_images"][:16]))
