"""Tuning each optimizer's learning rate: successive halving over a grid of rates whose
last rung is the full training, the choice on full-budget validation, and the failure
rule (diverged or collapsed) that keeps a failed point from ever being chosen.

:func:`run_tuning` trains every rate of :data:`SWEEP_GRIDS` for the first rung of
:data:`RUNG_EPOCHS`, promotes the best third (by mean final validation accuracy, points
with a failed seed excluded) to the next rung, and so on; the last rung is the note's full
budget, where each optimizer's default rate and the first rung's choice join the
promoted ones and :meth:`Tuning.best_rate` chooses. Promoted runs are the same specs with
more epochs, so they continue their shorter runs where the engine resumes them.
:func:`run_sweep` is the old short-budget sweep (a few epochs on a subset), which chooses
no headline rate.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..training import TrainingDivergedError
from .profiles import PerProfile, Profile, current_profile, resolve_value
from .runner import Result, SeedResults, run_many
from .selection import best_on_validation, rank_on_validation
from .specs import Record, Spec
from .studies import NAMED, NOTE_EPOCHS, SHORT_BUDGET

__all__ = [
    "CHANCE",
    "COLLAPSE_BELOW",
    "KEEP_EVERY",
    "RUNG_EPOCHS",
    "SWEEP_GRIDS",
    "SeedOutcomes",
    "Sweep",
    "Tuning",
    "compared_outcomes",
    "compared_specs",
    "effective_lr",
    "full_budget_spec",
    "promote",
    "run_outcomes",
    "run_sweep",
    "run_tuning",
    "schedule_rates",
    "sweep_specs",
    "tuned_specs",
]

#: Accuracy of a guess on Fashion-MNIST's ten balanced classes.
CHANCE = 0.1
#: A run that finished with a final validation accuracy below this has collapsed: twice
#: chance. A model stuck at chance (one class predicted, or noise) scores about 0.10; on
#: 2,000 validation images the chance of such a model reaching 0.20 is below
#: :math:`10^{-39}` (binomial). At the top of a grid such a run broke (dead units, a
#: loss stuck at :math:`\ln 10`); at the bottom, after a short rung, it has not left
#: chance yet. Either way it is no candidate, and it is counted apart from divergence.
COLLAPSE_BELOW = 0.2


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
    """One spec over seeds, as trained: the seeds that finished and those that diverged.

    A finished seed may still have *collapsed* (final validation accuracy below
    :data:`COLLAPSE_BELOW`, or not finite): it counts as a failure, apart from divergence.
    """

    spec: Spec
    finished: list[Result] = field(default_factory=list)
    diverged: list[tuple[int, TrainingDivergedError]] = field(default_factory=list)

    @property
    def collapsed(self) -> list[tuple[int, float]]:
        """``(seed, final validation accuracy)`` of the finished seeds stuck near chance."""
        out = []
        for r in self.finished:
            acc = float(r.history.val_acc[-1]) if len(r.history.val_acc) else math.nan
            if not (math.isfinite(acc) and acc >= COLLAPSE_BELOW):
                out.append((r.seed, acc))
        return out

    @property
    def failed(self) -> int:
        """The number of seeds that failed (diverged or collapsed)."""
        return len(self.diverged) + len(self.collapsed)

    @property
    def complete(self) -> bool:
        """Whether every seed finished without collapsing (only such points are chosen)."""
        return bool(self.finished) and self.failed == 0

    @property
    def results(self) -> SeedResults | None:
        """The seeds that finished, collapsed ones included (None when every seed
        diverged)."""
        return SeedResults(self.spec, self.finished) if self.finished else None

    def failure_note(self) -> str:
        """``""``, or what failed: ``"2 of 5 seeds diverged, 1 collapsed"``."""
        n = len(self.finished) + len(self.diverged)
        parts = []
        if self.diverged:
            parts.append(f"{len(self.diverged)} diverged")
        if self.collapsed:
            parts.append(f"{len(self.collapsed)} collapsed")
        return f"{self.failed} of {n} seeds failed ({', '.join(parts)})" if parts else ""


@dataclass
class Sweep:
    """The points of one budget by key of :data:`NAMED` and rate (a short-budget sweep,
    or one rung of :class:`Tuning`)."""

    points: dict[str, dict[float, SeedOutcomes]]
    seeds: tuple[int, ...]

    def rates(self, key: str) -> np.ndarray:
        return np.array(sorted(self.points[key]))

    def curve(self, key: str, metric: str = "val_acc") -> dict[str, np.ndarray]:
        """Per rate: the mean and sample std over finished seeds of ``metric`` after the
        last epoch (NaN where none finished), how many seeds diverged, how many
        collapsed."""
        if metric.startswith("test"):
            raise ValueError(
                f"the sweep chooses rates, so it is read on validation (or training) "
                f"metrics only, not {metric!r}; the test set reports the chosen rates."
            )
        rates = self.rates(key)
        mean, std, diverged, collapsed = [], [], [], []
        for lr in rates:
            point = self.points[key][lr]
            res = point.results
            m, s = res.final(metric) if res is not None else (math.nan, math.nan)
            mean.append(m)
            std.append(s)
            diverged.append(len(point.diverged))
            collapsed.append(len(point.collapsed))
        return {
            "lr": rates,
            "mean": np.array(mean),
            "std": np.array(std),
            "diverged": np.array(diverged),
            "collapsed": np.array(collapsed),
        }

    def best_rate(self, key: str, metric: str = "val_acc") -> float:
        """The rate with the best mean final validation ``metric`` among those at which no
        seed failed (see :func:`~fashion_optim.experiments.best_on_validation`)."""
        candidates = {
            lr: (p.results if p.complete else None) for lr, p in sorted(self.points[key].items())
        }
        return float(best_on_validation(candidates, metric))

    def largest_stable_rate(self, key: str) -> float:
        """The largest rate at which no seed failed (diverged or collapsed)."""
        stable = [lr for lr, p in self.points[key].items() if p.complete]
        if not stable:
            raise ValueError(f"every rate of {key!r} failed (diverged or collapsed) for some seed.")
        return float(max(stable))


def run_outcomes(
    specs: Mapping[Hashable, Spec],
    *,
    profile: Profile | str | None = None,
    progress: bool | None = None,
    seeds: Sequence[int] | Mapping[Hashable, Sequence[int]] | None = None,
) -> dict[Hashable, SeedOutcomes]:
    """:func:`~fashion_optim.experiments.run_specs` over ``seeds`` (default: the
    profile's; a mapping gives each key of ``specs`` its own), in one batch, with
    diverged runs kept as such (not raised), keyed as ``specs`` is. The compared
    configurations are trained by :func:`compared_outcomes`."""
    prof = current_profile(profile)
    if isinstance(seeds, Mapping):
        missing = [key for key in specs if key not in seeds]
        if missing:
            raise ValueError(f"seeds has no entry for {missing}; give every key its seeds.")
        per_key = {key: tuple(seeds[key]) for key in specs}
    else:
        per_key = dict.fromkeys(specs, tuple(prof.seeds if seeds is None else seeds))
    empty = [key for key, s in per_key.items() if not s]
    if empty:
        raise ValueError(
            f"no seeds for {empty}; give at least one seed (or None for the profile's)."
        )
    jobs = [(spec, seed) for key, spec in specs.items() for seed in per_key[key]]
    outcomes = iter(run_many(jobs, profile=prof, progress=progress, return_exceptions=True))
    out: dict[Hashable, SeedOutcomes] = {}
    for key, spec in specs.items():
        point = SeedOutcomes(spec)
        for seed in per_key[key]:
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


#: The epochs of each rung of the successive halving, per profile: the last is the
#: note's full budget (``NOTE_EPOCHS``), so the rate is chosen at the budget it is
#: reported at. Each rung trains about three times the epochs of the one before.
RUNG_EPOCHS = PerProfile(full=(1, 3, 10), quick=(1, 3))
#: A rung promotes the best ``1 / KEEP_EVERY`` of its rates (at least one), as in
#: Hyperband's default :math:`\eta = 3` (Li et al. 2018).
KEEP_EVERY = 3


def full_budget_spec(key: str, lr: float) -> Spec:
    """``NAMED[key]`` at ``lr``: the note's shared run when ``lr`` is its default rate (or
    plain SGD at ``lr / (1 - momentum)``, ``NAMED["sgd_effective"]``), else a copy named
    by its rate. Everything but the rate is the shared run's, so equal rates are one
    cache entry whichever page asks.

    Examples
    --------
    >>> full_budget_spec("sgd", 0.1).name
    'SGD at lr / (1 - momentum)'
    >>> full_budget_spec("adam", 0.003162).name
    'Adam, lr 0.003162'
    """
    if key not in NAMED:
        raise ValueError(f"unknown configuration {key!r}; valid keys: {sorted(NAMED)}.")
    if not (isinstance(lr, int | float) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    base = NAMED[key]
    for spec in (base, *NAMED.values()):
        if spec == base.replace(name=spec.name, lr=float(lr)):
            return spec
    return base.replace(name=f"{base.name}, lr {lr:g}", lr=float(lr))


def _rung_spec(key: str, lr: float, epochs: int, last: bool) -> Spec:
    spec = full_budget_spec(key, lr)
    # the last rung is the shared run itself (epochs per profile); earlier ones, the
    # same spec cut short, which a longer rung continues
    return (
        spec
        if last
        else spec.replace(name=f"{spec.name} ({epochs} of the full epochs)", epochs=epochs)
    )


def promote(rung: Sweep, key: str, keep_every: int = KEEP_EVERY) -> list[float]:
    """The rates of ``key`` that go on from ``rung``: the best ``len(rates) //
    keep_every`` (at least one) by mean final validation accuracy, among the rates at
    which no seed failed; fewer when fewer are eligible, best first.

    Examples
    --------
    >>> promote(Sweep({"sgd": {}}, (0,)), "sgd")
    []
    """
    if not (isinstance(keep_every, int) and keep_every >= 1):
        raise ValueError(f"keep_every must be an integer >= 1, got {keep_every!r}.")
    points = rung.points[key]
    n = max(1, len(points) // keep_every)
    eligible = {lr: (p.results if p.complete else None) for lr, p in sorted(points.items())}
    return [float(lr) for lr in rank_on_validation(eligible)[:n]]


@dataclass
class Tuning:
    """Successive halving's rungs: ``rungs[i]`` holds the rates that reached rung ``i``
    (trained for ``epochs[i]`` epochs over ``seeds``); the last rung is the full budget,
    where each optimizer's default rate and the first rung's choice join the promoted
    ones.
    """

    rungs: list[Sweep]
    epochs: tuple[int, ...]
    seeds: tuple[int, ...]

    @property
    def keys(self) -> list[str]:
        return list(self.rungs[0].points)

    @property
    def last(self) -> Sweep:
        """The full-budget rung."""
        return self.rungs[-1]

    def best_rate(self, key: str) -> float:
        """The rate chosen on full-budget validation (no seed failed there)."""
        return self.last.best_rate(key)

    def first_rung_choice(self, key: str) -> float:
        """The rate the first rung alone would have chosen."""
        return self.rungs[0].best_rate(key)

    def never_failed(self, key: str, lr: float) -> bool:
        """Whether no seed failed at ``lr`` at any rung it was trained at."""
        return all(r.points[key][lr].complete for r in self.rungs if lr in r.points[key])

    def epoch_cost(self) -> int:
        """Epochs trained for the tuning over every seed, counting a promoted run only
        for the epochs it adds to its shorter run (as the engine resumes it)."""
        total, before = 0, {}
        for rung, epochs in zip(self.rungs, self.epochs, strict=True):
            for key, pts in rung.points.items():
                for lr in pts:
                    total += (epochs - before.get((key, lr), 0)) * len(self.seeds)
                    before[(key, lr)] = epochs
        return total


def run_tuning(
    keys: Sequence[str] = tuple(SWEEP_GRIDS),
    *,
    profile: Profile | str | None = None,
    progress: bool | None = None,
    keep_every: int = KEEP_EVERY,
) -> Tuning:
    """Successive halving over :data:`SWEEP_GRIDS` for ``keys``, over the profile's seeds.

    Rung ``i`` trains each surviving rate for ``RUNG_EPOCHS[i]`` epochs (the same spec
    with more epochs, so a promoted run continues its shorter one where the engine
    resumes runs); :func:`promote` keeps the best third. At the last rung, the full
    budget, each optimizer's default rate (its shared run) and the first rung's own
    choice join the promoted rates (so what the first rung alone would have chosen is
    measured at the full budget), and :meth:`Tuning.best_rate` chooses among them on
    validation. Failed runs (diverged or
    collapsed) are kept as such and never promoted or chosen.
    """
    unknown = [k for k in keys if k not in SWEEP_GRIDS]
    if unknown:
        raise ValueError(f"no sweep grid for {unknown}; valid keys: {sorted(SWEEP_GRIDS)}.")
    prof = current_profile(profile)
    epochs = tuple(resolve_value(RUNG_EPOCHS, prof))
    full = resolve_value(NOTE_EPOCHS, prof)
    if epochs[-1] != full:
        raise ValueError(f"the last rung must be the full budget ({full} epochs), got {epochs}.")
    alive = {key: list(SWEEP_GRIDS[key]) for key in keys}
    rungs: list[Sweep] = []
    first_choice: dict[str, list[float]] = {k: [] for k in keys}
    for i, n_epochs in enumerate(epochs):
        last = i == len(epochs) - 1
        if last:  # the default rate and the first rung's own choice join the last rung
            alive = {k: sorted({*alive[k], NAMED[k].lr, *first_choice[k]}) for k in keys}
        specs = {(k, lr): _rung_spec(k, lr, n_epochs, last) for k in keys for lr in alive[k]}
        outcomes = run_outcomes(specs, profile=prof, progress=progress)
        points: dict[str, dict[float, SeedOutcomes]] = {k: {} for k in keys}
        for (k, lr), point in outcomes.items():
            points[k][lr] = point
        rung = Sweep(points, tuple(prof.seeds))
        rungs.append(rung)
        alive = {k: promote(rung, k, keep_every) for k in keys}
        if i == 0:
            first_choice = {k: alive[k][:1] for k in keys}
    return Tuning(rungs, epochs, tuple(prof.seeds))


def compared_specs(tuning: Tuning, keys: Sequence[str] | None = None) -> dict[tuple, Spec]:
    """The configurations the note compares at the full budget, keyed ``("default",
    key)`` and ``("tuned", key)``; train them over ``profile.compare_seeds`` with
    :func:`run_outcomes`. A tuned rate equal to the default is the same spec (one
    configuration, one row)."""
    keys = list(tuning.keys if keys is None else keys)
    specs: dict[tuple, Spec] = {("default", k): NAMED[k] for k in keys}
    specs |= {("tuned", k): full_budget_spec(k, tuning.best_rate(k)) for k in keys}
    return specs


def compared_outcomes(
    tuning: Tuning,
    keys: Sequence[str] | None = None,
    extra: Mapping[Hashable, Spec] | None = None,
    *,
    profile: Profile | str | None = None,
    progress: bool | None = None,
) -> dict[Hashable, SeedOutcomes]:
    """The configurations the note compares at the full budget, trained (or loaded) in
    one batch: :func:`compared_specs` and ``extra`` (a one-cycle run...), keyed as they
    are.

    The chosen rates and ``extra`` run over ``profile.compare_seeds``, so that their
    paired intervals have enough degrees of freedom; each optimizer's default rate runs
    over ``profile.seeds`` (the tuning's), unless it is also the chosen rate (one
    configuration, the more seeds). That is the protocol's trade for the build's time:
    five seeds where the note names a winner, three where it only reports.
    """
    prof = current_profile(profile)
    specs = dict(compared_specs(tuning, keys))
    specs |= dict(extra or {})
    # a default run of the same configuration as a compared one (whatever its name)
    # takes the compared seeds
    many = [spec.resolve(prof) for key, spec in specs.items() if not _is_default(key)]
    seeds = {
        key: prof.compare_seeds if spec.resolve(prof) in many else prof.seeds
        for key, spec in specs.items()
    }
    return run_outcomes(specs, profile=prof, progress=progress, seeds=seeds)


def _is_default(key: Hashable) -> bool:
    return isinstance(key, tuple) and key[:1] == ("default",)


def schedule_rates(sweep: Sweep | Tuning) -> tuple[float, float]:
    """The schedule comparison's two rates for SGD with momentum: the constant rate
    chosen on validation, and OneCycleLR's peak.

    The peak is the grid's next rate above the chosen one (:math:`\\sqrt{10}` times
    higher) when no seed failed (diverged or collapsed) there, at any budget it was
    trained at; else the chosen rate itself: a one-cycle schedule spends a short time
    near its peak and anneals from it, so it may peak above the best constant rate, but
    not where a constant rate already fails.
    """
    base = sweep.best_rate("momentum")
    if isinstance(sweep, Tuning):
        grid = [float(lr) for lr in sweep.rungs[0].rates("momentum")]
        ok = lambda lr: sweep.never_failed("momentum", lr)  # noqa: E731
    else:
        grid = [float(lr) for lr in sweep.rates("momentum")]
        ok = lambda lr: sweep.points["momentum"][lr].complete  # noqa: E731
    i = grid.index(base)
    above = grid[i + 1] if i + 1 < len(grid) else None
    if above is not None and ok(above):
        return base, above
    return base, base


def tuned_specs(sweep: Sweep | Tuning, keys: Sequence[str] | None = None) -> dict[str, Spec]:
    """:func:`full_budget_spec` of each key at the rate ``sweep`` chose: the shared
    run's data, epochs and records, so a chosen rate equal to an existing
    configuration's reuses its runs."""
    chosen = (
        keys if keys is not None else list(sweep.points if isinstance(sweep, Sweep) else sweep.keys)
    )
    out = {}
    for key in chosen:
        lr = sweep.best_rate(key)
        spec = full_budget_spec(key, lr)
        out[key] = spec.replace(name=f"{NAMED[key].name}, tuned (lr {lr:g})")
    return out
