"""The computation behind a cached loss surface: the loss on a grid of the plane that
holds most of some runs' trajectories (its code is part of the surface's cache key, see
:mod:`~fashion_optim.experiments.cache`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import landscape
from ..models import make_model
from . import train as _train
from .train import TRAIN_THREADS, threads

__all__ = ["compute_loss_surface", "trajectory_plane"]


def trajectory_plane(snapshots: Sequence[np.ndarray]) -> landscape.Plane:
    """The PCA plane through the shared start of the snapshot arrays (``[T, P]`` each)."""
    return landscape.pca_plane(list(snapshots))


def compute_loss_surface(
    snapshots: Sequence[np.ndarray],
    *,
    seed: int,
    train_subset: int | None,
    images: int,
    grid: int,
    workers: int = 1,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The loss of the CNN on a ``grid`` x ``grid`` window of :func:`trajectory_plane`,
    on the first shuffled batch of ``images`` training images (of ``train_subset``, in
    the order ``seed`` gives): see :func:`fashion_optim.landscape.loss_surface`, which
    shares the grid's rows among ``workers`` threads (the values do not depend on how
    many)."""
    plane = trajectory_plane(snapshots)
    loader = _train.get_splits().loader("train", images, seed=seed, subset=train_subset)
    start = time.perf_counter()
    with threads(TRAIN_THREADS):
        surf = landscape.loss_surface(make_model("lenet"), plane, loader, n=grid, workers=workers)
    return surf, {"wall_time": time.perf_counter() - start}
