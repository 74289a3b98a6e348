"""The learning-rate sweep: each optimizer of the note on a grid of rates, on the short
budget, over the profile's seeds; and its choice of each optimizer's rate, on validation.

:func:`run_sweep` trains (or loads) every point of :data:`SWEEP_GRIDS`;
:meth:`Sweep.best_rate` chooses a rate by the mean final validation accuracy, among the
rates at which no seed diverged; :func:`tuned_specs` gives the note's shared
configurations at those rates, for the full-budget comparison. The grids step by
:math:`\\sqrt{10}` and hold each optimizer's default rate, so the default is a point of the
sweep, and a tuned configuration that equals an existing one is the same cache entry.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..training import TrainingDivergedError
from .profiles import Profile, current_profile
from .runner import Result, SeedResults, run_many
from .selection import best_on_validation
from .specs import Record, Spec
from .studies import NAMED, SHORT_BUDGET

__all__ = [
    "SWEEP_GRIDS",
    "SeedOutcomes",
    "Sweep",
    "effective_lr",
    "run_outcomes",
    "run_sweep",
    "schedule_rates",
    "sweep_specs",
    "tuned_specs",
]


def _grid(low_exponent: float, points: int) -> tuple[float, ...]:
    """``points`` rates from ``10**low_exponent`` in steps of sqrt(10), to 4 digits."""
    return tuple(float(f"{10 ** (low_exponent + k / 2):.4g}") for k in range(points))


#: The learning rates of the sweep, by key of :data:`NAMED`: from where a short training
#: barely moves to where it diverges, in steps of :math:`\sqrt{10}`.
SWEEP_GRIDS: dict[str, tuple[float, ...]] = {
    "sgd": _grid(-2.5, 7),  # 0.003162 ... 3.162
    "momentum": _grid(-3.5, 7),  # 0.0003162 ... 0.3162
    "nesterov": _grid(-3.5, 7),
    "adam": _grid(-4.5, 7),  # 3.162e-05 ... 0.03162
}


def effective_lr(spec: Spec | float, momentum: float | None = None) -> float:
    """The rate :math:`\\eta/(1-\\mu)` at which heavy-ball momentum steps in the long run
    (:math:`\\eta` for a spec without momentum).

    Examples
    --------
    >>> effective_lr(NAMED["momentum"])
    0.1
    """
    if isinstance(spec, Spec):
        lr, mu = spec.lr, spec.optimizer_kwargs.get("momentum", 0.0)
    else:
        lr, mu = spec, momentum or 0.0
    return float(f"{lr / (1 - mu):.10g}")


def sweep_specs(keys: Sequence[str] = tuple(SWEEP_GRIDS)) -> dict[tuple[str, float], Spec]:
    """The sweep's specs, keyed ``(key, lr)``: ``NAMED[key]`` at ``lr`` on the data
    (training and validation subsets) and epochs of :data:`SHORT_BUDGET`, recording
    nothing beyond the history."""
    unknown = [k for k in keys if k not in SWEEP_GRIDS]
    if unknown:
        raise ValueError(f"no sweep grid for {unknown}; valid keys: {sorted(SWEEP_GRIDS)}.")
    return {
        (key, lr): NAMED[key].replace(
            name=f"{NAMED[key].name}, lr {lr:g}",
            lr=lr,
            epochs=SHORT_BUDGET.epochs,
            train_subset=SHORT_BUDGET.train_subset,
            val_subset=SHORT_BUDGET.val_subset,
            record=Record(),
        )
        for key in keys
        for lr in SWEEP_GRIDS[key]
    }


@dataclass
class SeedOutcomes:
    """One spec over seeds, as trained: the seeds that finished and those that diverged
    (a point of the sweep, or a tuned configuration)."""

    spec: Spec
    finished: list[Result] = field(default_factory=list)
    diverged: list[tuple[int, TrainingDivergedError]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every seed finished (only complete points can be chosen)."""
        return bool(self.finished) and not self.diverged

    @property
    def results(self) -> SeedResults | None:
        """The finished seeds (None when every seed diverged)."""
        return SeedResults(self.spec, self.finished) if self.finished else None


@dataclass
class Sweep:
    """The sweep's points by key of :data:`NAMED` and rate."""

    points: dict[str, dict[float, SeedOutcomes]]
    seeds: tuple[int, ...]

    def rates(self, key: str) -> np.ndarray:
        return np.array(sorted(self.points[key]))

    def curve(self, key: str, metric: str = "val_acc") -> dict[str, np.ndarray]:
        """Per rate: the mean and sample std over finished seeds of ``metric`` after the
        last epoch (NaN where none finished), and how many seeds diverged."""
        if metric.startswith("test"):
            raise ValueError(
                f"the sweep chooses rates, so it is read on validation (or training) "
                f"metrics only, not {metric!r}; the test set reports the chosen rates."
            )
        rates = self.rates(key)
        mean, std, diverged = [], [], []
        for lr in rates:
            point = self.points[key][lr]
            res = point.results
            m, s = res.final(metric) if res is not None else (math.nan, math.nan)
            mean.append(m)
            std.append(s)
            diverged.append(len(point.diverged))
        return {
            "lr": rates,
            "mean": np.array(mean),
            "std": np.array(std),
            "diverged": np.array(diverged),
        }

    def best_rate(self, key: str, metric: str = "val_acc") -> float:
        """The rate with the best mean final validation ``metric`` among those at which no
        seed diverged (see :func:`~fashion_optim.experiments.best_on_validation`)."""
        candidates = {
            lr: (p.results if p.complete else None) for lr, p in sorted(self.points[key].items())
        }
        return float(best_on_validation(candidates, metric))

    def largest_stable_rate(self, key: str) -> float:
        """The largest rate at which every seed finished."""
        stable = [lr for lr, p in self.points[key].items() if p.complete]
        if not stable:
            raise ValueError(f"every rate of {key!r} diverged for some seed.")
        return float(max(stable))


def run_outcomes(
    specs: Mapping[Hashable, Spec],
    *,
    profile: Profile | str | None = None,
    progress: bool | None = None,
) -> dict[Hashable, SeedOutcomes]:
    """:func:`~fashion_optim.experiments.run_specs` over the profile's seeds, in one batch,
    with diverged runs kept as such (not raised), keyed as ``specs`` is."""
    prof = current_profile(profile)
    jobs = [(spec, seed) for spec in specs.values() for seed in prof.seeds]
    outcomes = iter(run_many(jobs, profile=prof, progress=progress, return_exceptions=True))
    out: dict[Hashable, SeedOutcomes] = {}
    for key, spec in specs.items():
        point = SeedOutcomes(spec)
        for seed in prof.seeds:
            outcome = next(outcomes)
            if isinstance(outcome, TrainingDivergedError):
                point.diverged.append((seed, outcome))
            else:
                point.finished.append(outcome)
        out[key] = point
    return out


def run_sweep(
    keys: Sequence[str] = tuple(SWEEP_GRIDS),
    *,
    profile: Profile | str | None = None,
    progress: bool | None = None,
) -> Sweep:
    """Train (or load) every point of the sweep of ``keys`` over the profile's seeds, in
    one batch. Diverged runs are kept as such, not raised."""
    prof = current_profile(profile)
    outcomes = run_outcomes(sweep_specs(keys), profile=prof, progress=progress)
    points: dict[str, dict[float, SeedOutcomes]] = {key: {} for key in keys}
    for (key, lr), point in outcomes.items():
        points[key][lr] = point
    return Sweep(points, tuple(prof.seeds))


def schedule_rates(sweep: Sweep) -> tuple[float, float]:
    """The schedule comparison's two rates, from the sweep of SGD with momentum: the
    constant rate it chose on validation, and OneCycleLR's peak.

    The peak is the sweep's next rate above the chosen one (:math:`\\sqrt{10}` times
    higher) when no seed diverged there, else the chosen rate itself: a one-cycle schedule
    spends a short time near its peak and anneals from it, so it may peak above the best
    constant rate, but not where a constant rate already fails.
    """
    base = sweep.best_rate("momentum")
    grid = [float(lr) for lr in sweep.rates("momentum")]
    i = grid.index(base)
    above = grid[i + 1] if i + 1 < len(grid) else None
    if above is not None and sweep.points["momentum"][above].complete:
        return base, above
    return base, base


def tuned_specs(sweep: Sweep, keys: Sequence[str] | None = None) -> dict[str, Spec]:
    """``NAMED[key]`` at the sweep's chosen rate, for the full-budget comparison: the same
    data, epochs and records, so a tuned rate equal to an existing configuration's reuses
    its runs."""
    chosen = keys if keys is not None else list(sweep.points)
    return {
        key: NAMED[key].replace(
            name=f"{NAMED[key].name}, tuned (lr {sweep.best_rate(key):g})",
            lr=sweep.best_rate(key),
        )
        for key in chosen
    }
