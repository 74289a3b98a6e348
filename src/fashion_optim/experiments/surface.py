"""The computations behind the cached loss surfaces (their code is part of the surfaces'
cache keys, see :mod:`~fashion_optim.experiments.cache`): the loss on a grid of the plane
that holds most of some runs' trajectories, with what that plane leaves out of each
snapshot, and the loss on a grid of a filter-normalised random plane through one run's
final weights."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .. import landscape
from ..models import make_model
from . import train as _train
from .train import TRAIN_THREADS, threads

__all__ = [
    "PATH_FIELDS",
    "compute_loss_surface",
    "compute_random_plane_surface",
    "final_weights_model",
    "random_plane_through",
    "trajectory_plane",
]

#: What :func:`compute_loss_surface` measures at each snapshot of run ``i``, saved as
#: ``"path{i}/{field}"``: see :func:`fashion_optim.landscape.plane_gap`.
PATH_FIELDS = ("distance", "loss", "accuracy", "projected_loss", "projected_accuracy")


def trajectory_plane(snapshots: Sequence[np.ndarray]) -> landscape.Plane:
    """The PCA plane through the shared start of the snapshot arrays (``[T, P]`` each)."""
    return landscape.pca_plane(list(snapshots))


def _surface_batch(seed: int, train_subset: int | None, images: int) -> Any:
    """The first shuffled batch of ``images`` training images: what every surface of a
    run is measured on (taken once, so the grid and the snapshots share it)."""
    loader = _train.get_splits().loader("train", images, seed=seed, subset=train_subset)
    return tuple(next(iter(loader)))


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
    the order ``seed`` gives): see :func:`fashion_optim.landscape.loss_surface`. On the
    same images, what the plane leaves out of each snapshot
    (:func:`fashion_optim.landscape.plane_gap`): ``"path{i}/{field}"`` for each field of
    :data:`PATH_FIELDS`. ``workers`` threads share the evaluations (the values do not
    depend on how many)."""
    plane = trajectory_plane(snapshots)
    batch = _surface_batch(seed, train_subset, images)
    model = make_model("lenet")
    start = time.perf_counter()
    with threads(TRAIN_THREADS):
        surf = landscape.loss_surface(model, plane, batch, n=grid, workers=workers)
        grid_time = time.perf_counter() - start
        gaps = landscape.plane_gap(model, plane, list(snapshots), batch, workers=workers)
    paths = {f"path{i}/{k}": gap[k] for i, gap in enumerate(gaps) for k in PATH_FIELDS}
    wall = time.perf_counter() - start
    return {**surf, **paths}, {"wall_time": grid_time, "path_wall_time": wall - grid_time}


def final_weights_model(weights: np.ndarray) -> torch.nn.Module:
    """The CNN with its parameters set to ``weights`` (``[P]``, flat)."""
    model = make_model("lenet")
    # A copy: the parameters become views of vec, and evaluating the model elsewhere in
    # its space writes into them, which must never reach the caller's array.
    vec = torch.tensor(np.asarray(weights), dtype=torch.float32)
    size = sum(p.numel() for p in model.parameters())
    if vec.shape != (size,):
        raise ValueError(
            f"weights must be a vector of the CNN's {size} parameters, got "
            f"shape {tuple(vec.shape)}."
        )
    torch.nn.utils.vector_to_parameters(vec, model.parameters())
    return model


def random_plane_through(weights: np.ndarray, seed: int) -> landscape.Plane:
    """The filter-normalised random plane (:func:`fashion_optim.landscape.random_plane`)
    through the CNN's weights ``weights``, its directions drawn with ``seed``."""
    return landscape.random_plane(final_weights_model(weights), seed)


def compute_random_plane_surface(
    weights: np.ndarray,
    *,
    directions_seed: int,
    seed: int,
    train_subset: int | None,
    images: int,
    grid: int,
    span: float,
    workers: int = 1,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The loss of the CNN on a ``grid`` x ``grid`` window ``[-span, span]^2`` of
    :func:`random_plane_through` ``weights``, on the same images as
    :func:`compute_loss_surface` (the first shuffled batch of ``images``)."""
    model = final_weights_model(weights)
    plane = landscape.random_plane(model, directions_seed)
    batch = _surface_batch(seed, train_subset, images)
    start = time.perf_counter()
    with threads(TRAIN_THREADS):
        window = (-span, span, -span, span)
        surf = landscape.loss_surface(model, plane, batch, window, grid, workers=workers)
    norms = np.linalg.norm(plane.directions, axis=1)
    cosine = float(plane.directions[0] @ plane.directions[1] / (norms[0] * norms[1]))
    return {**surf, "direction_norms": norms}, {
        "wall_time": time.perf_counter() - start,
        "cosine": cosine,
    }
