"""The cached kinds "loss_surface" and "random_plane_surface": the loss on a grid of the
plane that holds most of some runs' trajectories, with what that plane leaves out of each
snapshot, and the loss on a grid of a filter-normalised random plane through one run's
final weights. Each states its key's configuration, the parts its computation splits
into (rows of the grid, evaluated on one thread each, in any process: the values do not
depend on where) and its typed result; their code is part of their cache keys (see
:mod:`~fashion_optim.experiments.cache`)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .. import landscape
from ..models import make_model, model_with_weights
from . import train as _train
from .train import TRAIN_THREADS, threads

__all__ = [
    "PATH_FIELDS",
    "GridRows",
    "PathGap",
    "RandomPlaneSurface",
    "RandomPlaneTask",
    "TrajectorySurface",
    "TrajectorySurfaceTask",
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
    """The CNN with its parameters set to a copy of ``weights`` (``[P]``, flat):
    :func:`fashion_optim.models.model_with_weights`."""
    return model_with_weights(weights)


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


# --------------------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class GridRows:
    """A part of a surface: the loss at the grid points of ``rows`` (each row is one
    ``beta``, all the ``alphas``), evaluated as :func:`fashion_optim.landscape.loss_surface`
    evaluates them (the same points, bit for bit), on one thread."""

    origin: np.ndarray = field(repr=False)
    directions: np.ndarray = field(repr=False)
    alphas: np.ndarray = field(repr=False)
    betas: np.ndarray = field(repr=False)
    rows: tuple[int, int]
    seed: int
    train_subset: int | None
    images: int
    label: str = ""

    @property
    def cost(self) -> int:
        return (self.rows[1] - self.rows[0]) * len(self.alphas)

    def compute(self, **_: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        start = time.perf_counter()
        n = len(self.alphas)
        origin = torch.from_numpy(self.origin)
        d1, d2 = (torch.from_numpy(d) for d in self.directions)
        ks = range(self.rows[0] * n, self.rows[1] * n)
        # loss_surface's own expression for grid point k (row by row, beta outer)
        points = torch.stack(
            [origin + float(self.alphas[k % n]) * d1 + float(self.betas[k // n]) * d2 for k in ks]
        )
        batch = _surface_batch(self.seed, self.train_subset, self.images)
        with threads(TRAIN_THREADS):
            got = landscape.losses_at(make_model("lenet"), points.numpy(), batch)
        return got, {"wall_time": time.perf_counter() - start}


@dataclass(frozen=True)
class PathGap:
    """A part of a trajectory surface: :func:`fashion_optim.landscape.plane_gap` of one
    run's snapshots."""

    plane: landscape.Plane = field(repr=False)
    snapshots: np.ndarray = field(repr=False)
    seed: int
    train_subset: int | None
    images: int
    label: str = ""

    @property
    def cost(self) -> int:
        return 2 * len(self.snapshots)

    def compute(self, **_: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        start = time.perf_counter()
        batch = _surface_batch(self.seed, self.train_subset, self.images)
        with threads(TRAIN_THREADS):
            (gap,) = landscape.plane_gap(make_model("lenet"), self.plane, [self.snapshots], batch)
        return {k: gap[k] for k in PATH_FIELDS}, {"wall_time": time.perf_counter() - start}


def _grid_parts(
    plane: landscape.Plane, extent: Sequence[float], grid: int, **where: Any
) -> list[GridRows]:
    alphas = np.linspace(extent[0], extent[1], grid)
    betas = np.linspace(extent[2], extent[3], grid)
    step = max(1, math.ceil(grid / 8))  # a few parts per core, whatever the pool's size
    return [
        GridRows(plane.origin, plane.directions, alphas, betas, (r, min(r + step, grid)), **where)
        for r in range(0, grid, step)
    ]


def _merge_grid(
    parts: Sequence[tuple[dict, dict]], extent: Sequence[float], grid: int
) -> tuple[dict[str, np.ndarray], float]:
    loss = np.concatenate([p[0]["loss"] for p in parts]).reshape(grid, grid)
    acc = np.concatenate([p[0]["accuracy"] for p in parts]).reshape(grid, grid)
    surface = {
        "alphas": np.linspace(extent[0], extent[1], grid),
        "betas": np.linspace(extent[2], extent[3], grid),
        "loss": loss,
        "accuracy": acc,
        "extent": np.asarray(extent, dtype=float),
    }
    return surface, float(sum(p[1]["wall_time"] for p in parts))


@dataclass
class TrajectorySurface:
    """Runs' trajectories on the plane that holds most of them, over the loss there, and
    what the plane leaves out of each snapshot.

    Attributes
    ----------
    plane : Plane
        The PCA plane through the runs' shared start
        (:func:`fashion_optim.landscape.pca_plane`); ``plane.coords[i]`` is run ``i``'s
        path.
    surface : dict
        :func:`fashion_optim.landscape.loss_surface` on that plane: ``alphas``,
        ``betas``, ``loss``, ``accuracy``, ``extent``.
    images, grid : int
        The training images the loss is measured on, and the grid points per axis.
    wall_time : float
        Seconds the grid's evaluations took (summed over the parts that computed it).
    paths : list of dict
        Per run, at each snapshot, on the same images
        (:func:`fashion_optim.landscape.plane_gap`): ``"distance"`` from the plane (weight
        units), ``"loss"`` and ``"accuracy"`` measured at the snapshot,
        ``"projected_loss"`` and ``"projected_accuracy"`` at its projection on the plane
        (what the contours show under the snapshot's dot).
    path_wall_time : float
        Seconds the measurements of ``paths`` took.
    """

    plane: landscape.Plane
    surface: dict[str, np.ndarray]
    images: int
    grid: int
    wall_time: float
    paths: list[dict[str, np.ndarray]] = field(default_factory=list)
    path_wall_time: float = 0.0


@dataclass(frozen=True)
class TrajectorySurfaceTask:
    """The kind ``"loss_surface"``: the PCA plane through runs' snapshots (keyed on the
    runs' own keys), a ``grid`` x ``grid`` window of it and the runs' paths."""

    kind = "loss_surface"
    run_keys: tuple[str, ...]
    snapshots: tuple[np.ndarray, ...] = field(repr=False)
    seed: int
    train_subset: int | None
    images: int
    grid: int

    @property
    def label(self) -> str:
        return f"the loss surface of {len(self.run_keys)} runs"

    @property
    def cost(self) -> int:
        return self.grid * self.grid + sum(2 * len(s) for s in self.snapshots)

    def key_config(self) -> dict[str, Any]:
        return {
            "runs": list(self.run_keys),
            "seed": self.seed,
            "train_subset": self.train_subset,
            "images": self.images,
            "grid": self.grid,
        }

    def _plane(self) -> landscape.Plane:
        return trajectory_plane(self.snapshots)

    def plan(self, lookup: Any) -> list[GridRows | PathGap]:
        plane = self._plane()
        where = {"seed": self.seed, "train_subset": self.train_subset, "images": self.images}
        extent = landscape.default_extent(plane)
        grid = _grid_parts(plane, extent, self.grid, label=self.label, **where)
        paths = [PathGap(plane, s, label=self.label, **where) for s in self.snapshots]
        return [*grid, *paths]

    def merge(self, parts: Sequence[tuple[dict, dict]]) -> tuple[dict, dict]:
        n = len(self.snapshots)
        extent = landscape.default_extent(self._plane())
        surface, grid_time = _merge_grid(parts[: len(parts) - n], extent, self.grid)
        paths = {
            f"path{i}/{k}": arrays[k]
            for i, (arrays, _) in enumerate(parts[len(parts) - n :])
            for k in PATH_FIELDS
        }
        path_time = sum(meta["wall_time"] for _, meta in parts[len(parts) - n :])
        return {**surface, **paths}, {"wall_time": grid_time, "path_wall_time": path_time}

    def load(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> TrajectorySurface:
        surface = {k: arrays[k] for k in ("alphas", "betas", "loss", "accuracy", "extent")}
        paths = [
            {k: arrays[f"path{i}/{k}"] for k in PATH_FIELDS} for i in range(len(self.snapshots))
        ]
        return TrajectorySurface(
            self._plane(),
            surface,
            self.images,
            self.grid,
            float(meta["wall_time"]),
            paths,
            float(meta["path_wall_time"]),
        )


@dataclass
class RandomPlaneSurface:
    """The loss on a filter-normalised random plane through one run's final weights.

    Attributes
    ----------
    plane : Plane
        :func:`fashion_optim.landscape.random_plane` through the final weights (its
        origin); its directions have the norm of the weights they scale
        (``direction_norms``), biases left out.
    surface : dict
        :func:`fashion_optim.landscape.loss_surface` on that plane: ``alphas``,
        ``betas``, ``loss``, ``accuracy``, ``extent``; and ``direction_norms`` ``[2]``,
        the directions' lengths in weight units (a step of 1 along a direction moves
        every filter by its own norm).
    seed : int
        The seed the directions were drawn with.
    images, grid : int
        As for :class:`TrajectorySurface`: the same images.
    wall_time : float
        Seconds the grid's evaluations took (summed over the parts that computed it).
    cosine : float
        Cosine of the angle between the two directions (near 0: random directions in
        tens of thousands of dimensions are nearly orthogonal).
    """

    plane: landscape.Plane
    surface: dict[str, np.ndarray]
    seed: int
    images: int
    grid: int
    wall_time: float
    cosine: float


@dataclass(frozen=True)
class RandomPlaneTask:
    """The kind ``"random_plane_surface"``: a random plane through a run's final weights
    (keyed on the run's own key), a ``grid`` x ``grid`` window ``[-span, span]^2``."""

    kind = "random_plane_surface"
    run_key: str
    weights: np.ndarray = field(repr=False)
    directions_seed: int
    seed: int
    train_subset: int | None
    images: int
    grid: int
    span: float

    @property
    def label(self) -> str:
        return "a random plane's loss surface"

    @property
    def cost(self) -> int:
        return self.grid * self.grid

    def key_config(self) -> dict[str, Any]:
        return {
            "run": self.run_key,
            "directions_seed": self.directions_seed,
            "seed": self.seed,
            "train_subset": self.train_subset,
            "images": self.images,
            "grid": self.grid,
            "span": self.span,
        }

    def _plane(self) -> landscape.Plane:
        return random_plane_through(self.weights, self.directions_seed)

    def _extent(self) -> tuple[float, float, float, float]:
        return (-self.span, self.span, -self.span, self.span)

    def plan(self, lookup: Any) -> list[GridRows]:
        where = {"seed": self.seed, "train_subset": self.train_subset, "images": self.images}
        return _grid_parts(self._plane(), self._extent(), self.grid, label=self.label, **where)

    def merge(self, parts: Sequence[tuple[dict, dict]]) -> tuple[dict, dict]:
        plane = self._plane()
        surface, wall = _merge_grid(parts, self._extent(), self.grid)
        norms = np.linalg.norm(plane.directions, axis=1)
        cosine = float(plane.directions[0] @ plane.directions[1] / (norms[0] * norms[1]))
        return {**surface, "direction_norms": norms}, {"wall_time": wall, "cosine": cosine}

    def load(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> RandomPlaneSurface:
        return RandomPlaneSurface(
            self._plane(),
            dict(arrays),
            self.directions_seed,
            self.images,
            self.grid,
            float(meta["wall_time"]),
            float(meta["cosine"]),
        )
