"""Running experiments: :func:`run` one spec and seed, :func:`run_seeds` and
:func:`run_specs` over seeds, :func:`run_many` any batch, of any mix of the cached kinds
(runs, range tests, loss surfaces, sharpness: :mod:`~fashion_optim.experiments.kinds`);
plus the cached range test, loss surfaces and sharpness one at a time. Each computes
only what the cache lacks, in the worker pool, and saves what it computed.
"""

from __future__ import annotations

import concurrent.futures as cf
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import lr_finder, record
from . import cache, executors
from . import train as _train
from .curvature import Sharpness, SharpnessTask
from .profiles import PerProfile, Profile, current_profile, resolve_value
from .rangetest import RangeTestTask
from .specs import RunConfig, Spec, check_seed
from .surface import (
    RandomPlaneSurface,
    RandomPlaneTask,
    TrajectorySurface,
    TrajectorySurfaceTask,
)
from .train import Result, RunTask

__all__ = [
    "RANGE_TEST_ITERS",
    "RandomPlaneJob",
    "RandomPlaneSurface",
    "RangeTestJob",
    "Result",
    "SeedResults",
    "Sharpness",
    "SharpnessJob",
    "TrajectorySurface",
    "TrajectorySurfaceJob",
    "random_plane_surface",
    "run",
    "run_many",
    "run_range_test",
    "run_seeds",
    "run_specs",
    "sharpness",
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
#: The sharpness's sample of training images, and its Hessian-vector products per
#: snapshot at most (Lanczos settles in 6 to 18 on the CNN; chapter 7's 9 snapshots
#: took 17 core-seconds in the full profile, 2026-12-07).
SHARPNESS_IMAGES = PerProfile(full=1000, quick=500)
SHARPNESS_ITERS = PerProfile(full=30, quick=25)


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


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class RangeTestJob:
    """A learning-rate range test to compute in a :func:`run_many` batch (the arguments
    of :func:`run_range_test`)."""

    spec: Spec
    seed: int = 0
    start_lr: float = 1e-6
    end_lr: float = 10.0
    num_iter: Any = RANGE_TEST_ITERS
    smooth: float = 0.05

    def _task(self, prof: Profile) -> RangeTestTask:
        return RangeTestTask(
            self.spec.resolve(prof),
            self.seed,
            self.start_lr,
            self.end_lr,
            int(resolve_value(self.num_iter, prof)),
            self.smooth,
            self.spec.name,
        )


def _snapshot_runs(runs: Sequence[Result], what: str) -> None:
    if not runs or any(not isinstance(r, Result) or "params" not in r.records for r in runs):
        raise ValueError(
            f"{what} needs runs that recorded parameter snapshots: give specs a "
            "Record(snapshot_every=N)."
        )


@dataclass(frozen=True)
class TrajectorySurfaceJob:
    """The loss surface of :func:`trajectory_surface`, to compute in a :func:`run_many`
    batch (its arguments)."""

    runs: Sequence[Result]
    grid: Any = SURFACE_GRID
    images: Any = SURFACE_IMAGES

    def _task(self, prof: Profile) -> TrajectorySurfaceTask:
        _snapshot_runs(self.runs, "trajectory_surface")
        return TrajectorySurfaceTask(
            tuple(r.meta["key"] for r in self.runs),
            tuple(r.snapshots for r in self.runs),
            self.runs[0].seed,
            self.runs[0].config.train_subset,
            int(resolve_value(self.images, prof)),
            int(resolve_value(self.grid, prof)),
        )


@dataclass(frozen=True)
class RandomPlaneJob:
    """The loss surface of :func:`random_plane_surface`, to compute in a
    :func:`run_many` batch (its arguments)."""

    run: Result
    seed: int = 0
    grid: Any = RANDOM_PLANE_GRID
    images: Any = SURFACE_IMAGES
    span: float = 1.0

    def _task(self, prof: Profile) -> RandomPlaneTask:
        _snapshot_runs([self.run], "random_plane_surface")
        if not (np.isfinite(self.span) and self.span > 0):
            raise ValueError(f"span must be a positive number, got {self.span!r}.")
        return RandomPlaneTask(
            self.run.meta["key"],
            self.run.snapshots[-1],
            int(self.seed),
            self.run.seed,
            self.run.config.train_subset,
            int(resolve_value(self.images, prof)),
            int(resolve_value(self.grid, prof)),
            float(self.span),
        )


@dataclass(frozen=True)
class SharpnessJob:
    """The sharpness of :func:`sharpness`, to compute in a :func:`run_many` batch (its
    arguments)."""

    run: Result
    steps: Sequence[int]
    images: Any = SHARPNESS_IMAGES
    max_iter: Any = SHARPNESS_ITERS
    tol: float = 1e-3
    seed: int = 0

    def _task(self, prof: Profile) -> SharpnessTask:
        _snapshot_runs([self.run], "sharpness")
        recorded = [int(s) for s in self.run.snapshot_steps]
        steps = [int(s) for s in self.steps]
        missing = [s for s in steps if s not in recorded]
        if not steps or missing:
            raise ValueError(
                f"steps must be some of the run's snapshot steps (from {recorded[0]} to "
                f"{recorded[-1]}, every {self.run.config.record.snapshot_every}), got "
                f"{list(self.steps)!r}; pick steps in Result.snapshot_steps."
            )
        if not (self.tol > 0):
            raise ValueError(f"tol must be > 0, got {self.tol!r}.")
        return SharpnessTask(
            self.run.meta["key"],
            tuple(steps),
            tuple(self.run.snapshots[recorded.index(s)] for s in steps),
            self.run.seed,
            self.run.config.train_subset,
            int(resolve_value(self.images, prof)),
            0,
            int(resolve_value(self.max_iter, prof)),
            float(self.tol),
            int(self.seed),
            f"seed {self.run.seed}",
        )


_JOBS = (RangeTestJob, TrajectorySurfaceJob, RandomPlaneJob, SharpnessJob)


def _task(job: Any, prof: Profile) -> Any:
    """The task of a job, resolved under ``prof`` and validated (before any data)."""
    if isinstance(job, _JOBS):
        return job._task(prof)
    if not (isinstance(job, tuple) and len(job) == 2 and isinstance(job[0], Spec)):
        raise TypeError(
            f"each job must be a (Spec, seed) pair, a RangeTestJob, a TrajectorySurfaceJob, "
            f"a RandomPlaneJob or a SharpnessJob, got {job!r}."
        )
    spec, seed = job
    check_seed(seed, f"a seed (of {spec.name!r})")
    return RunTask(spec.resolve(prof), seed, spec.name)


def _steps_per_epoch(task: RunTask) -> int:
    cfg = task.cfg
    loader = _train.get_splits().loader(
        "train", cfg.batch_size, seed=task.seed, subset=cfg.train_subset
    )
    return len(loader)


# --------------------------------------------------------------------------- batches


def run_many(
    jobs: Iterable[Any],
    *,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
    workers: int | None = None,
    executor: cf.Executor | None = None,
    return_exceptions: bool = False,
) -> list[Any]:
    """:func:`run` for every ``(spec, seed)`` of ``jobs``, and any other cached
    computation of the batch (a :class:`RangeTestJob`, a :class:`TrajectorySurfaceJob`, a
    :class:`RandomPlaneJob`), in order, computing what the cache lacks several at a time.

    Where they compute: on ``executor`` (any :class:`concurrent.futures.Executor`) if
    given; else on the Dask scheduler that ``FASHION_OPTIM_EXECUTOR`` names; else in
    ``workers`` local processes (default
    :func:`~fashion_optim.experiments.default_workers`), or here when one is enough.
    The results are the same bits wherever they computed. A job listed twice computes
    once; the longest start first. Each finished computation is saved to the cache here,
    at once, whole.

    A run that differs from a cached one only in its number of epochs, and whose
    schedule does not depend on the total
    (:func:`~fashion_optim.experiments.resumable`), continues from the longest
    shorter cached run, and gives the same bits as trained from the start.

    A run that diverges is cached as such, with its history up to where it stopped; it
    raises its :class:`~fashion_optim.training.TrainingDivergedError` (after the others
    have finished and been saved), or, with ``return_exceptions=True``, takes its place
    in the list (as in ``asyncio.gather``). The error carries ``history``.

    Examples
    --------
    >>> from fashion_optim.experiments import NAMED
    >>> momentum, adam = run_many([(NAMED["momentum"], 0), (NAMED["adam"], 0)])  # doctest: +SKIP
    >>> test = run_many([RangeTestJob(NAMED["adam"])])[0]  # doctest: +SKIP
    """
    prof = current_profile(profile)
    jobs = list(jobs)
    n_workers = executors.default_workers() if workers is None else workers
    if not (isinstance(n_workers, int) and n_workers >= 1):
        raise ValueError(f"workers must be an integer >= 1 or None, got {workers!r}.")
    tasks = [_task(job, prof) for job in jobs]  # a bad job fails before the data
    if executor is None:
        executor = executors.executor_from_env()  # a bad address fails before computing
    checksum = _train.get_splits().data_checksum
    out: list[Any] = [None] * len(tasks)
    todo: dict[str, list[int]] = {}  # cache key -> positions in jobs
    for i, task in enumerate(tasks):
        key = cache.cache_key(task.kind, task.key_config(), checksum)
        found = None if fresh else cache.lookup(task.kind, key)
        if found is not None:
            out[i] = task.load(found[0], {**found[1], "from_cache": True})
        else:
            todo.setdefault(key, []).append(i)

    def lookup(kind: str, config: Mapping[str, Any]):
        return None if fresh else cache.lookup(kind, cache.cache_key(kind, config, checksum))

    def finish(key: str, arrays: dict, meta: dict) -> None:
        task = tasks[todo[key][0]]
        meta = cache.save_entry(task.kind, key, arrays, {**meta, "config": task.key_config()})
        result = task.load(arrays, {**meta, "from_cache": False})
        for i in todo[key]:
            out[i] = result

    parts: list[Any] = []
    owner: list[tuple[str, int]] = []  # per part: its task's key, its place in the plan
    planned: dict[str, list[Any]] = {}
    for key, places in todo.items():
        task = tasks[places[0]]
        if isinstance(task, RunTask):
            task = RunTask(task.cfg, task.seed, task.name, _steps_per_epoch(task))
            tasks[places[0]] = task
        plan = task.plan(lookup)
        if isinstance(plan, tuple):  # the entry follows from the cache
            finish(key, *plan)
            continue
        planned[key] = [None] * len(plan)
        for j, part in enumerate(plan):
            parts.append(part)
            owner.append((key, j))

    def on_done(j: int, outcome: executors.Outcome) -> None:
        _, entry, said, cpu = outcome
        for category, message in said:  # the workers' warnings, said here
            warnings.warn(message, category, stacklevel=4)
        key, place = owner[j]
        arrays, meta = entry
        planned[key][place] = (arrays, {**meta, "cpu_time": cpu})
        if all(p is not None for p in planned[key]):
            arrays, meta = tasks[todo[key][0]].merge(planned.pop(key))
            finish(key, dict(arrays), dict(meta))

    if parts:
        executors.train_all(
            parts, executor=executor, workers=n_workers, progress=progress, on_done=on_done
        )
    # the build's record of its runs (the other kinds are left out)
    record.note_results(out, [getattr(task, "name", "") for task in tasks])
    if not return_exceptions:
        for result in out:
            if isinstance(result, BaseException):
                raise result
    return out


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
    :class:`~fashion_optim.training.TrainingDivergedError` (carrying ``history``, up to
    where it stopped); the failure is cached, so a second call trains nothing.

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


# --------------------------------------------------------------------------- one at a time


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
) -> lr_finder.RangeTestResult:
    """The learning-rate range test of ``spec``'s model and optimizer, cached.

    The model is built with ``seed`` exactly as :func:`run` builds it (so the test starts
    from the weights that training would start from); the learning rate of ``spec`` is
    replaced by the ramp from ``start_lr`` to ``end_lr`` over ``num_iter`` mini-batches
    of the profile's training data. See :func:`fashion_optim.lr_finder.range_test`; several at
    once: :class:`RangeTestJob` in :func:`run_many`.
    """
    job = RangeTestJob(spec, seed, start_lr, end_lr, num_iter, smooth)
    return run_many([job], profile=profile, fresh=fresh, progress=progress, workers=1)[0]


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
    retraining them recomputes the surface. The grid's rows are computed in the worker
    pool (the values do not depend on where).
    """
    job = TrajectorySurfaceJob(runs, grid, images)
    return run_many([job], profile=profile, fresh=fresh)[0]


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
    job = RandomPlaneJob(run, seed, grid, images, span)
    return run_many([job], profile=profile, fresh=fresh)[0]


def sharpness(
    run: Result,
    steps: Sequence[int],
    *,
    images: Any = SHARPNESS_IMAGES,
    max_iter: Any = SHARPNESS_ITERS,
    tol: float = 1e-3,
    seed: int = 0,
    profile: Profile | str | None = None,
    fresh: bool = False,
) -> Sharpness:
    """The largest eigenvalue of the Hessian of ``run``'s training loss at its snapshots
    ``steps``, cached: the curvature :math:`\\lambda_{max}` that sets the quadratic's
    stability limits (:func:`fashion_optim.theory.stability_limit`).

    Measured by :func:`fashion_optim.curvature.top_hessian_eigenvalue` with
    ``which="largest"`` (the Lanczos method on Hessian-vector products, at most
    ``max_iter`` per snapshot, relative residual ``tol``, start vector drawn with
    ``seed``), in eval mode, on a
    fixed class-stratified sample of ``images`` of the training images the run trained
    on. ``run`` must have recorded parameter snapshots
    (:class:`~fashion_optim.experiments.Record` ``snapshot_every``); ``steps`` are some
    of its :attr:`~fashion_optim.experiments.Result.snapshot_steps`. The cache key holds
    the run's own key; each snapshot is one part of the worker pool's batch (several
    runs at once: :class:`SharpnessJob` in :func:`run_many`).
    """
    job = SharpnessJob(run, tuple(steps), images, max_iter, tol, seed)
    return run_many([job], profile=profile, fresh=fresh)[0]
