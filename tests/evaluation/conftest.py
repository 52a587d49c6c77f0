"""Synthetic predictions with known structure, shared by the evaluation tests."""

from __future__ import annotations

import numpy as np
import pytest


def _binary(n: int, seed: int = 0, prevalence: float = 0.6, separation: float = 1.5):
    """Labels and probabilities from two overlapping logit distributions."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    logits = rng.normal(size=n) + separation * (2 * y - 1)
    return y, 1 / (1 + np.exp(-logits))


def _multiclass(n: int, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return y, e / e.sum(axis=1, keepdims=True)


def _multilabel(n: int, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.4).astype(int)
    return y, np.clip(0.35 * y + 0.65 * rng.random((n, k)), 0, 1)


@pytest.fixture
def make_binary():
    return _binary


@pytest.fixture
def make_multiclass():
    return _multiclass


@pytest.fixture
def make_multilabel():
    return _multilabel
