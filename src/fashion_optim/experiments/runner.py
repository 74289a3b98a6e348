"""Running experiments: :func:`run` one spec and seed, :func:`run_seeds` and
:func:`run_specs` over seeds, :func:`run_many` any batch; plus the cached range test and
loss surface. Each trains only what the cache lacks, and saves what it trained.
"""

from __future__ import annotations

import concurrent.futures as cf
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import landscape
from .. import lr as lr_module
from ..training import History, TrainingDivergedError
from . import cache, executors
from . import train as _train
from .profiles import PerProfile, Profile, current_profile, resolve_value
from .rangetest import compute_range_test
from .specs import RunConfig, Spec, check_seed
from .surface import (
    PATH_FIELDS,
    compute_loss_surface,
    compute_random_plane_surface,
    random_plane_through,
    trajectory_plane,
)
from .train import TRAIN_THREADS

__all__ = [
    "RandomPlaneSurface",
    "Result",
    "SeedResults",
    "TrajectorySurface",
    "random_plane_surface",
    "run",
    "run_many",
    "run_range_test",
    "run_seeds",
    "run_specs",
    "trajectory_surface",
]

#: Mini-batches of a range test, per profile.
RANGE_TEST_ITERS = PerProfile(full=300, quick=100)
#: Grid points per axis of a loss surface, and the training images it is measured on.
SURFACE_GRID = PerProfile(full=21, quick=11)
SURFACE_IMAGES = PerProfile(full=2000, quick=500)
#: The random plane's grid: its loss is a smooth bowl around the final weights, which a
#: coarser grid draws as well (and the full build has a budget).
RANDOM_PLANE_GRID = PerProfile(full=15, quick=11)


@dataclass
class Result:
    """One trained configuration at one seed.

    Attributes
    ----------
    config : RunConfig
        The resolved spec.
    seed : int
    history : History
    test_loss, test_acc : float
        On the held-out 10,000 test images, after the last epoch.
    records : dict of str to numpy.ndarray
        What the spec's :class:`~fashion_optim.experiments.Record` asked for.
    meta : dict
        Wall time, data sizes, environment, cache key.
    test_predictions : numpy.ndarray
        The predicted class of each test image (``uint8 [10000]``, the test set's
        order), for comparisons paired by image (McNemar, a bootstrap over images).
    """

    config: RunConfig
    seed: int
    history: History
    test_loss: float
    test_acc: float
    records: dict[str, np.ndarray]
    meta: dict[str, Any]
    test_predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))

    @property
    def from_cache(self) -> bool:
        return bool(self.meta.get("from_cache"))

    @classmethod
    def _from_entry(cls, cfg: RunConfig, seed: int, arrays, meta) -> Result:
        history = History.from_dict(
            {k[8:]: v.tolist() for k, v in arrays.items() if k.startswith("history/")}
        )
        records = {k[7:]: v for k, v in arrays.items() if k.startswith("record/")}
        predictions = np.asarray(arrays["predictions/test"])
        return cls(
            cfg, seed, history, meta["test_loss"], meta["test_acc"], records, meta, predictions
        )


@dataclass
class SeedResults:
    """The results of one spec over several seeds, with mean ± std summaries."""

    spec: Spec
    results: list[Result]

    def __post_init__(self) -> None:
        if not self.results:
            raise ValueError(
                f"SeedResults of {self.spec.name!r} needs at least one result; "
                "run at least one seed."
            )

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.results]

    @property
    def config(self) -> RunConfig:
        """The resolved spec (the same for every seed)."""
        return self.results[0].config

    def stack(self, name: str) -> np.ndarray:
        """A :class:`~fashion_optim.training.History` field for every seed, as an array
        ``[seeds, ...]``."""
        return np.stack([np.asarray(getattr(r.history, name)) for r in self.results])

    @staticmethod
    def _mean_std(values: Sequence[float]) -> tuple[float, float]:
        arr = np.asarray(values, dtype=float)
        return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0

    @property
    def test_acc(self) -> tuple[float, float]:
        """Mean and sample standard deviation of the test accuracy over seeds."""
        return self._mean_std([r.test_acc for r in self.results])

    @property
    def test_loss(self) -> tuple[float, float]:
        return self._mean_std([r.test_loss for r in self.results])

    def final(self, name: str) -> tuple[float, float]:
        """Mean and sample standard deviation over seeds of a history field's last value
        (e.g. ``"val_acc"``)."""
        return self._mean_std(self.stack(name)[:, -1])

    def per_seed(self, name: str) -> np.ndarray:
        """One value per seed, in the order of ``seeds``: ``"test_acc"`` or ``"test_loss"``,
        or a history field's last value (e.g. ``"val_acc"``)."""
        if name in ("test_acc", "test_loss"):
            return np.array([getattr(r, name) for r in self.results], dtype=float)
        return self.stack(name)[:, -1].astype(float)


def _run_config(cfg: RunConfig, seed: int) -> dict[str, Any]:
    """What a run's cache entry is keyed on: the resolved spec, the seed, the threads."""
    return {**cfg.to_dict(), "seed": seed, "threads": TRAIN_THREADS}


def _check_jobs(jobs: list) -> None:
    for job in jobs:
        if not (isinstance(job, tuple) and len(job) == 2 and isinstance(job[0], Spec)):
            raise TypeError(f"each job must be a (Spec, seed) pair, got {job!r}.")
        check_seed(job[1], f"a seed (of {job[0].name!r})")


def run_many(
    jobs: Iterable[tuple[Spec, int]],
    *,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
    workers: int | None = None,
    executor: cf.Executor | None = None,
    return_exceptions: bool = False,
) -> list[Result | TrainingDivergedError]:
    """:func:`run` for every ``(spec, seed)`` of ``jobs``, in order, training the runs the
    cache lacks several at a time.

    Where they train: on ``executor`` (any :class:`concurrent.futures.Executor`) if
    given; else on the Dask scheduler that ``FASHION_OPTIM_EXECUTOR`` names; else in
    ``workers`` local processes (default
    :func:`~fashion_optim.experiments.default_workers`), or here when one is enough.
    The results are the same bits wherever they trained. A job listed twice trains once.
    Each finished run is saved to the cache here, at once, whole.

    A run that diverges raises its :class:`~fashion_optim.training.TrainingDivergedError`
    (after the others have finished and been saved), or, with
    ``return_exceptions=True``, takes its place in the list (as in ``asyncio.gather``).

    Examples
    --------
    >>> from fashion_optim.experiments import NAMED
    >>> momentum, adam = run_many([(NAMED["momentum"], 0), (NAMED["adam"], 0)])  # doctest: +SKIP
    """
    prof = current_profile(profile)
    jobs = list(jobs)
    _check_jobs(jobs)
    n_workers = executors.default_workers() if workers is None else workers
    if not (isinstance(n_workers, int) and n_workers >= 1):
        raise ValueError(f"workers must be an integer >= 1 or None, got {workers!r}.")
    configs = [spec.resolve(prof) for spec, _ in jobs]  # a bad spec fails before the data
    if executor is None:
        executor = executors.executor_from_env()  # a bad address fails before training
    checksum = _train.get_splits().data_checksum
    out: list[Any] = [None] * len(jobs)
    todo: dict[str, list[int]] = {}  # cache key -> positions in jobs
    for i, ((_, seed), cfg) in enumerate(zip(jobs, configs, strict=True)):
        key = cache.cache_key("run", _run_config(cfg, seed), checksum)
        found = None if fresh else cache.lookup("run", key)
        if found is not None:
            out[i] = Result._from_entry(cfg, seed, found[0], {**found[1], "from_cache": True})
        else:
            todo.setdefault(key, []).append(i)
    keys = list(todo)
    pending = [(configs[todo[k][0]], jobs[todo[k][0]][1], jobs[todo[k][0]][0].name) for k in keys]

    def on_done(j: int, outcome: executors.Outcome) -> None:
        status, payload, said = outcome
        for category, message in said:  # the workers' warnings, said here
            warnings.warn(message, category, stacklevel=4)
        cfg, seed, _ = pending[j]
        if status == "ok":
            arrays, meta = payload
            config = _run_config(cfg, seed)
            meta = cache.save_entry("run", keys[j], arrays, {**meta, "config": config})
            payload = Result._from_entry(cfg, seed, arrays, {**meta, "from_cache": False})
        for i in todo[keys[j]]:
            out[i] = payload

    if pending:
        steps = [_steps(cfg, seed) for cfg, seed, _ in pending]
        executors.train_all(
            pending,
            steps=steps,
            executor=executor,
            workers=n_workers,
            progress=progress,
            on_done=on_done,
        )
    if not return_exceptions:
        for result in out:
            if isinstance(result, BaseException):
                raise result
    return out


def _steps(cfg: RunConfig, seed: int) -> int:
    train = _train.get_splits().loader("train", cfg.batch_size, seed=seed, subset=cfg.train_subset)
    return cfg.epochs * len(train)


def run(
    spec: Spec,
    seed: int = 0,
    *,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
) -> Result:
    """Train ``spec`` with ``seed`` under ``profile``, or load the cached result.

    A run whose mini-batch loss becomes NaN or infinite, or exceeds
    :data:`~fashion_optim.experiments.DIVERGE_THRESHOLD` times its first one, raises
    :class:`~fashion_optim.training.TrainingDivergedError` and leaves no cache entry.

    Examples
    --------
    >>> spec = Spec("momentum", lr=0.01, optimizer_kwargs={"momentum": 0.9}, epochs=2)
    >>> result = run(spec, seed=0, profile="quick")  # doctest: +SKIP
    >>> result.test_acc  # doctest: +SKIP
    0.78...
    """
    return run_many([(spec, seed)], profile=profile, fresh=fresh, progress=progress, workers=1)[0]


def run_seeds(
    spec: Spec,
    seeds: Sequence[int] | None = None,
    *,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
    workers: int | None = None,
) -> SeedResults:
    """:func:`run` for each seed (default: the profile's seeds), several at once when
    more than one needs training (see :func:`run_many`)."""
    return run_specs(
        {"spec": spec}, seeds, profile=profile, fresh=fresh, progress=progress, workers=workers
    )["spec"]


def run_specs(
    specs: Mapping[Any, Spec],
    seeds: Sequence[int] | Mapping[Any, Sequence[int]] | None = None,
    *,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
    workers: int | None = None,
) -> dict[Any, SeedResults]:
    """:func:`run_seeds` for every spec of ``specs``, with all their runs trained together
    by :func:`run_many` (so that the workers stay busy), keyed as ``specs`` is.

    ``seeds``: the profile's (None), the same for every spec (a sequence), or per spec
    (a mapping from some of the keys to their seeds; the others take the profile's).

    Examples
    --------
    >>> from fashion_optim.experiments import NAMED
    >>> runs = run_specs({k: NAMED[k] for k in ("sgd", "momentum")})  # doctest: +SKIP
    >>> runs["momentum"].test_acc  # doctest: +SKIP
    (0.90..., 0.00...)
    """
    prof = current_profile(profile)
    per_spec = seeds if isinstance(seeds, Mapping) else dict.fromkeys(specs, seeds)
    unknown = set(per_spec) - set(specs)
    if unknown:
        raise ValueError(f"seeds names specs that are not given: {sorted(map(str, unknown))}.")
    chosen = {k: list(prof.seeds if per_spec.get(k) is None else per_spec[k]) for k in specs}
    for key, values in chosen.items():
        if not values:
            raise ValueError(
                f"seeds of {key!r} is empty; give at least one seed (or None for the profile's)."
            )
    jobs = [(spec, seed) for key, spec in specs.items() for seed in chosen[key]]
    results = iter(run_many(jobs, profile=prof, fresh=fresh, progress=progress, workers=workers))
    return {
        key: SeedResults(spec, [next(results) for _ in chosen[key]]) for key, spec in specs.items()
    }


# --------------------------------------------------------------------------- range test


def run_range_test(
    spec: Spec,
    seed: int = 0,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    num_iter: Any = RANGE_TEST_ITERS,
    smooth: float = 0.05,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
) -> lr_module.RangeTestResult:
    """The learning-rate range test of ``spec``'s model and optimizer, cached.

    The model is built with ``seed`` exactly as :func:`run` builds it (so the test starts
    from the weights that training would start from); the learning rate of ``spec`` is
    replaced by the ramp from ``start_lr`` to ``end_lr`` over ``num_iter`` mini-batches
    of the profile's training data. See :func:`fashion_optim.lr.range_test`.
    """
    prof = current_profile(profile)
    cfg = spec.resolve(prof)
    settings = {
        "start_lr": start_lr,
        "end_lr": end_lr,
        "num_iter": resolve_value(num_iter, prof),
        "smooth": smooth,
    }
    config = {
        "optimizer": cfg.optimizer,
        "optimizer_kwargs": cfg.optimizer_kwargs,
        "batch_size": cfg.batch_size,
        "dropout": cfg.dropout,
        "train_subset": cfg.train_subset,
        **settings,
        "seed": seed,
        "threads": TRAIN_THREADS,
    }
    arrays, meta = cache.cached(
        "range_test",
        config,
        lambda: compute_range_test(cfg, seed, progress=progress, **settings),
        data_checksum=_train.get_splits().data_checksum,
        fresh=fresh,
    )
    return lr_module.RangeTestResult(
        lrs=arrays["lrs"],
        losses=arrays["losses"],
        smoothed=arrays["smoothed"],
        suggested_lr=meta["suggested_lr"],
        lr_min=meta["lr_min"],
        lr_max=meta["lr_max"],
        diverged=meta["diverged"],
        stopped_at=meta["stopped_at"],
        step_mode=meta["step_mode"],
    )


# --------------------------------------------------------------------------- loss surface


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
        Seconds the grid took when it was computed.
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


def _snapshot_runs(runs: Sequence[Result], what: str) -> None:
    if not runs or any("params" not in r.records for r in runs):
        raise ValueError(
            f"{what} needs runs that recorded parameter snapshots: give specs a "
            "Record(snapshot_every=N)."
        )


def trajectory_surface(
    runs: Sequence[Result],
    *,
    grid: Any = SURFACE_GRID,
    images: Any = SURFACE_IMAGES,
    profile: Profile | str | None = None,
    fresh: bool = False,
) -> TrajectorySurface:
    """The loss surface of the plane through ``runs``' snapshot trajectories, cached.

    ``runs`` must have recorded parameter snapshots
    (:class:`~fashion_optim.experiments.Record` ``snapshot_every``) from one shared
    start. The loss is measured on a ``grid`` x ``grid`` window on the first shuffled
    batch of ``images`` of the training images the runs trained on, and on the same
    images at every snapshot and at its projection on the plane
    (:attr:`TrajectorySurface.paths`). The cache key holds the runs' own keys, so
    retraining them recomputes the surface.
    """
    _snapshot_runs(runs, "trajectory_surface")
    prof = current_profile(profile)
    settings = {
        "seed": runs[0].seed,
        "train_subset": runs[0].config.train_subset,
        "images": int(resolve_value(images, prof)),
        "grid": int(resolve_value(grid, prof)),
    }
    snapshots = [r.records["params"] for r in runs]
    config = {"runs": [r.meta["key"] for r in runs], **settings}
    arrays, meta = cache.cached(
        "loss_surface",
        config,
        # every core evaluates rows of the grid; the values do not depend on how many
        lambda: compute_loss_surface(snapshots, **settings, workers=executors.default_workers()),
        data_checksum=_train.get_splits().data_checksum,
        fresh=fresh,
    )
    surface = {k: v for k, v in arrays.items() if not k.startswith("path")}
    paths = [{k: arrays[f"path{i}/{k}"] for k in PATH_FIELDS} for i in range(len(runs))]
    return TrajectorySurface(
        trajectory_plane(snapshots),
        surface,
        settings["images"],
        settings["grid"],
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
        Seconds the grid took when it was computed.
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


def random_plane_surface(
    run: Result,
    *,
    seed: int = 0,
    grid: Any = RANDOM_PLANE_GRID,
    images: Any = SURFACE_IMAGES,
    span: float = 1.0,
    profile: Profile | str | None = None,
    fresh: bool = False,
) -> RandomPlaneSurface:
    """The loss on a random plane through ``run``'s final weights, cached (Li et al.,
    2018).

    The plane's directions are :func:`~fashion_optim.landscape.filter_normalized_directions`
    drawn with ``seed``; the window is ``[-span, span]`` along each (Li et al. use 1),
    ``grid`` points per axis, and the loss is measured on the same images as
    :func:`trajectory_surface`'s for the same run (the first shuffled batch of ``images``
    of the training images the run trained on). ``run`` must have recorded parameter
    snapshots: the last one is its final weights. The cache key holds the run's own key.
    """
    _snapshot_runs([run], "random_plane_surface")
    if not (np.isfinite(span) and span > 0):
        raise ValueError(f"span must be a positive number, got {span!r}.")
    prof = current_profile(profile)
    weights = run.records["params"][-1]
    settings = {
        "directions_seed": int(seed),
        "seed": run.seed,
        "train_subset": run.config.train_subset,
        "images": int(resolve_value(images, prof)),
        "grid": int(resolve_value(grid, prof)),
        "span": float(span),
    }
    config = {"run": run.meta["key"], **settings}
    arrays, meta = cache.cached(
        "random_plane_surface",
        config,
        lambda: compute_random_plane_surface(
            weights, **settings, workers=executors.default_workers()
        ),
        data_checksum=_train.get_splits().data_checksum,
        fresh=fresh,
    )
    return RandomPlaneSurface(
        random_plane_through(weights, settings["directions_seed"]),
        arrays,
        settings["directions_seed"],
        settings["images"],
        settings["grid"],
        float(meta["wall_time"]),
        float(meta["cosine"]),
    )
