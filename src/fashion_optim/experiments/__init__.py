"""Declarative experiments: what to train, where, and a result cache on disk.

A :class:`Spec` says what to train; :func:`run` trains it for one seed (or loads the
result from the cache), :func:`run_seeds` and :func:`run_specs` do it for the profile's
seeds, and :func:`run_many` for any batch, several runs at once. The gallery and the note
call these, so a configuration trains once per build whichever page asks first.

One job per module:

- ``profiles``: how big the runs are.
- ``specs``: :class:`Spec`, :class:`RunConfig`,
  validation, the optimizer and scheduler a spec builds.
- ``train``, ``rangetest``, ``surface``, ``curvature``: the cached kinds, each stating
  its key's configuration, its computation and its typed result (their code is part of
  their cache keys).
- ``kinds``: the registry of cached kinds.
- ``cache``: keys over every dependency, atomic entries,
  a clear that removes only the cache's own files.
- ``executors``: local processes, a Dask cluster, or any
  ``concurrent.futures.Executor``.
- ``runner``: :func:`run`, :func:`run_many` (a batch of any mix of kinds), the cached
  range test, loss surfaces and sharpness.
- ``studies``: the note's named runs and studies.
- ``selection``: every choice, on validation metrics only.
- ``tuning``: the learning-rate sweep and the rates it chooses.

Training always runs on :data:`TRAIN_THREADS` (one) CPU thread, because the number of
threads changes the numbers; the cores are used by training several runs at once
(``FASHION_OPTIM_WORKERS``), or a Dask cluster (``FASHION_OPTIM_EXECUTOR``). A run gives
the same result, bit for bit, whichever process trained it.
"""

from .cache import CacheError, cache_dir, clear_cache
from .executors import ExecutorError, dask_executor, default_workers, worker_cpu_time
from .profiles import PROFILES, PerProfile, Profile, current_profile
from .runner import (
    RANGE_TEST_ITERS,
    RandomPlaneJob,
    RandomPlaneSurface,
    RangeTestJob,
    Result,
    SeedResults,
    Sharpness,
    SharpnessJob,
    TrajectorySurface,
    TrajectorySurfaceJob,
    random_plane_surface,
    run,
    run_many,
    run_range_test,
    run_seeds,
    run_specs,
    sharpness,
    trajectory_surface,
)
from .selection import VALIDATION_METRICS, best_on_validation, rank_on_validation
from .specs import ADAM_LIKE, LR_LAMBDAS, OPTIMIZERS, Record, RunConfig, Spec, check_seed
from .studies import (
    ADAM_RECORD,
    LAYER_QUANTILES,
    NAMED,
    NOTE_RECORD,
    PLATEAU,
    PROBES,
    SAME_SCHEDULE,
    SHORT_BUDGET,
    bias_correction_specs,
    full_budget_annealed,
    full_budget_onecycle,
    lowered_epochs,
    schedule_candidates,
    schedule_specs,
    snapshot_specs,
)
from .train import (
    DIVERGE_THRESHOLD,
    TRAIN_THREADS,
    environment,
    get_splits,
    resumable,
    schedule_reads_total,
)
from .tuning import (
    CHANCE,
    COLLAPSE_BELOW,
    KEEP_EVERY,
    RUNG_EPOCHS,
    SWEEP_GRIDS,
    SeedOutcomes,
    Sweep,
    Tuning,
    compared_outcomes,
    compared_specs,
    effective_lr,
    full_budget_spec,
    promote,
    run_outcomes,
    run_sweep,
    run_tuning,
    schedule_rates,
    sweep_specs,
    tuned_specs,
)

__all__ = [
    "ADAM_LIKE",
    "ADAM_RECORD",
    "CHANCE",
    "COLLAPSE_BELOW",
    "DIVERGE_THRESHOLD",
    "KEEP_EVERY",
    "LAYER_QUANTILES",
    "LR_LAMBDAS",
    "NAMED",
    "NOTE_RECORD",
    "OPTIMIZERS",
    "PLATEAU",
    "PROBES",
    "PROFILES",
    "RANGE_TEST_ITERS",
    "RUNG_EPOCHS",
    "SAME_SCHEDULE",
    "SHORT_BUDGET",
    "SWEEP_GRIDS",
    "TRAIN_THREADS",
    "VALIDATION_METRICS",
    "CacheError",
    "ExecutorError",
    "PerProfile",
    "Profile",
    "RandomPlaneJob",
    "RandomPlaneSurface",
    "RangeTestJob",
    "Record",
    "Result",
    "RunConfig",
    "SeedOutcomes",
    "SeedResults",
    "Sharpness",
    "SharpnessJob",
    "Spec",
    "Sweep",
    "TrajectorySurface",
    "TrajectorySurfaceJob",
    "Tuning",
    "best_on_validation",
    "bias_correction_specs",
    "cache_dir",
    "check_seed",
    "clear_cache",
    "compared_outcomes",
    "compared_specs",
    "current_profile",
    "dask_executor",
    "default_workers",
    "effective_lr",
    "environment",
    "full_budget_annealed",
    "full_budget_onecycle",
    "full_budget_spec",
    "get_splits",
    "lowered_epochs",
    "promote",
    "random_plane_surface",
    "rank_on_validation",
    "resumable",
    "run",
    "run_many",
    "run_outcomes",
    "run_range_test",
    "run_seeds",
    "run_specs",
    "run_sweep",
    "run_tuning",
    "schedule_candidates",
    "schedule_rates",
    "schedule_reads_total",
    "schedule_specs",
    "sharpness",
    "snapshot_specs",
    "sweep_specs",
    "trajectory_surface",
    "tuned_specs",
    "worker_cpu_time",
]
