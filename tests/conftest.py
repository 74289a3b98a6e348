"""Shared fixtures: the real dataset (skipped nowhere: CI installs it) and tiny synthetic data."""

from __future__ import annotations

import os

# first: the package pins the CPU kernels before torch and numpy load (fashion_optim.pin)
import fashion_optim  # noqa: F401  # isort: skip
import pytest
import torch

from fashion_optim.batches import ArrayLoader, make_splits
from fashion_optim.data import load_fashion_mnist


@pytest.fixture(autouse=True)
def _one_run_at_a_time(monkeypatch):
    """Train in this process unless a test asks for workers: starting a worker costs a
    few seconds (torch's import, the data), and most tests train one tiny run."""
    monkeypatch.setenv("FASHION_OPTIM_WORKERS", "1")


@pytest.fixture(scope="session")
def fashion():
    """The real, verified Fashion-MNIST (Debian package, cache or FASHION_OPTIM_DATA)."""
    return load_fashion_mnist(download=False)


@pytest.fixture(scope="session")
def splits(fashion):
    return make_splits(fashion)


def synthetic(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 28x28 images whose label is learnable (brightness of a quadrant)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 60, (n, 28, 28), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=gen)
    for i, y in enumerate(labels.tolist()):
        images[i, (y % 5) * 5 : (y % 5) * 5 + 5, (y // 5) * 14 : (y // 5) * 14 + 14] += 150
    return images, labels


@pytest.fixture
def tiny_loaders():
    images, labels = synthetic(96, seed=0)
    val_images, val_labels = synthetic(40, seed=1)
    train = ArrayLoader(images, labels, batch_size=16, shuffle=True, seed=3, mean=0.2, std=0.3)
    val = ArrayLoader(val_images, val_labels, batch_size=20, mean=0.2, std=0.3)
    return train, val


# The browser tests need a built site: `nox -s browser` builds it and sets this variable.
collect_ignore = [] if os.environ.get("FASHION_OPTIM_SITE") else ["browser"]
