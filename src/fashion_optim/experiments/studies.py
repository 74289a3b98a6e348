"""The note's named studies: the shared runs every page reuses (:data:`NAMED`), the
weights they record (:data:`PROBES`), the schedule comparison's specs, the full-budget
one-cycle and annealed runs, and the snapshot runs behind the loss-surface figure.

A page that asks for one of these gets the run another page trained, from the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .profiles import PerProfile, Profile, current_profile, resolve_value
from .specs import Record, Spec

__all__ = [
    "ADAM_RECORD",
    "LAYER_QUANTILES",
    "NAMED",
    "NOTE_EPOCHS",
    "NOTE_RECORD",
    "PLATEAU",
    "PROBES",
    "SHORT_BUDGET",
    "SNAPSHOT_EPOCHS",
    "SNAPSHOT_EVERY",
    "bias_correction_specs",
    "full_budget_annealed",
    "full_budget_onecycle",
    "lowered_epochs",
    "schedule_candidates",
    "schedule_specs",
    "snapshot_specs",
]

#: The weights every note run records at each mini-batch (flat indices by parameter):
#: the centre tap of the first 5x5 filter of the first convolution, and one weight of
#: the first fully connected layer. Their gradients, their layer's gradient norm, and
#: the optimizer's state for them (momentum buffer, Adam's moments) are kept.
PROBES: dict[str, list[int]] = {"features.0.weight": [12], "classifier.1.weight": [0]}
#: What the note's shared runs record (gradients and optimizer state of :data:`PROBES`).
NOTE_RECORD = Record(gradients=PROBES, state=PROBES)
#: The quantile levels over each layer's weights that the shared Adam run records.
LAYER_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
#: What the shared Adam run records: :data:`NOTE_RECORD`, and per layer (parameter
#: tensor) the :data:`LAYER_QUANTILES` of Adam's adapted step and effective rate over
#: its weights, every 4 steps (each record sorts every weight twice; every step would
#: slow the run by a fifth: benchmarks/README.md). Only ``NAMED["adam"]`` and its
#: tuned copies record them; the sweep's points do not.
ADAM_RECORD = Record(
    gradients=PROBES, state=PROBES, layer_quantiles=LAYER_QUANTILES, layer_quantiles_every=4
)
#: The epochs of the note's shared runs, per profile.
NOTE_EPOCHS = PerProfile(full=10, quick=3)

#: The note's shared configurations, also for ``python -m fashion_optim run NAME``.
NAMED: dict[str, Spec] = {
    "sgd": Spec("SGD", lr=0.01, epochs=NOTE_EPOCHS, record=NOTE_RECORD),
    "momentum": Spec(
        "SGD + momentum",
        lr=0.01,
        optimizer_kwargs={"momentum": 0.9},
        epochs=NOTE_EPOCHS,
        record=NOTE_RECORD,
    ),
    "nesterov": Spec(
        "SGD + Nesterov",
        lr=0.01,
        optimizer_kwargs={"momentum": 0.9, "nesterov": True},
        epochs=NOTE_EPOCHS,
        record=NOTE_RECORD,
    ),
    "sgd_effective": Spec(
        "SGD at lr / (1 - momentum)", lr=0.1, epochs=NOTE_EPOCHS, record=NOTE_RECORD
    ),
    "adam": Spec("Adam", optimizer="adam", lr=1e-3, epochs=NOTE_EPOCHS, record=ADAM_RECORD),
}

#: The short budget of the learning-rate sweep and the schedule comparison: SGD with
#: momentum as in ``NAMED["momentum"]``, on stratified
#: subsets of the training and validation splits and a few epochs, without probes. The
#: sweep and the others replace the optimizer and rate, and keep the data and epochs.
SHORT_BUDGET = Spec(
    "momentum, short budget",
    lr=0.01,
    optimizer_kwargs={"momentum": 0.9},
    epochs=PerProfile(full=4, quick=3),
    train_subset=PerProfile(full=10000, quick=5000),
    val_subset=PerProfile(full=5000, quick="profile"),
)


def _positive(name: str, value: object) -> float:
    if not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}.")
    return float(value)


def full_budget_onecycle(max_lr: float) -> Spec:
    """``NAMED["momentum"]`` with ``OneCycleLR(max_lr)``, stepped per mini-batch.

    Same data, epochs, optimizer, base rate and initial weights as the note's
    constant-rate run of SGD with momentum, so the two differ only in the schedule; no
    probes are recorded. ``max_lr`` is the peak of :func:`schedule_rates
    <fashion_optim.experiments.schedule_rates>`.
    """
    return NAMED["momentum"].replace(
        name="SGD + momentum, OneCycleLR",
        scheduler="onecycle",
        scheduler_kwargs={"max_lr": _positive("max_lr", max_lr)},
        record=Record(),
    )


def _per_batch_cosine(epochs: int) -> tuple[str, dict[str, int]]:
    # CosineAnnealingWarmRestarts steps every mini-batch with the fractional epoch; with
    # its first period T_0 the whole run, it never restarts within it, and its rate
    # before mini-batch i of T is lr * (1 + cos(pi * i / T)) / 2: CosineAnnealingLR with
    # T_max = T, stepped per mini-batch (tests/test_experiments.py pins the two equal).
    return "cosine_warm_restarts", {"T_0": int(epochs)}


def full_budget_annealed(peak: float) -> Spec:
    """``NAMED["momentum"]`` from ``peak``, annealed to zero along a cosine stepped
    every mini-batch over the whole budget: the full-budget run that OneCycleLR from the
    same peak is set against, besides the constant rate.

    The rate before mini-batch :math:`i` of the run's :math:`T` is
    :math:`\\eta_i = \\text{peak}\\,(1 + \\cos(\\pi i / T)) / 2`, ``CosineAnnealingLR``
    with ``T_max = T`` stepped per mini-batch (written with torch's
    ``CosineAnnealingWarmRestarts``, whose first period is the whole run, so that the
    trainer steps it per mini-batch). Same data, epochs, optimizer and initial weights
    as the constant-rate run; no probes are recorded.

    Examples
    --------
    >>> cfg = full_budget_annealed(0.1).resolve("full")
    >>> cfg.lr, cfg.scheduler, cfg.scheduler_kwargs
    (0.1, 'cosine_warm_restarts', {'T_0': 10})
    """
    epochs = NAMED["momentum"].epochs
    kwargs = PerProfile(
        **{p: _per_batch_cosine(resolve_value(epochs, p))[1] for p in ("full", "quick")}
    )
    return NAMED["momentum"].replace(
        name="SGD + momentum, cosine annealing",
        lr=_positive("peak", peak),
        scheduler="cosine_warm_restarts",
        scheduler_kwargs=kwargs,
        record=Record(),
    )


#: ReduceLROnPlateau's settings in :func:`schedule_specs`: with ``patience=0`` the rate
#: falls tenfold after the first epoch whose validation loss does not beat the best so
#: far, so on a budget of a few epochs it can act (a patience of one needs two such
#: epochs in a row).
PLATEAU = {"patience": 0, "factor": 0.1}
#: Schedules of :func:`schedule_specs` that are another one written differently, by
#: definition (``"lambda_step"``, the LambdaLR of ``0.1 ** (epoch // k)``, is
#: ``StepLR(k, 0.1)``): :func:`schedule_candidates` ranks the one it names only.
SAME_SCHEDULE: dict[str, str] = {"lambda_step": "step"}


def schedule_specs(
    base_lr: float, max_lr: float, profile: Profile | str | None = None
) -> dict[str, Spec]:
    """The schedules the note compares on :data:`SHORT_BUDGET`, by key, all laid over
    one rate, ``base_lr`` (the tuning's constant rate): every schedule but OneCycleLR
    starts from it (the warm-up reaches it after its warm-up) and never exceeds it;
    OneCycleLR peaks at it, and also runs peaking at ``max_lr``, its own rule's peak.

    ``"constant"`` is the tuning's own short run at ``base_lr`` (no scheduler, the same
    cache entry as the sweep's). ``"step"`` is ``StepLR(k, 0.1)`` and ``"lambda_step"``
    the ``LambdaLR`` of ``0.1 ** (epoch // k)``, the same schedule written twice, with
    ``k`` half the epochs; ``"lambda"`` is a linear warm-up followed by
    :math:`1/\\sqrt{t}` decay; ``"multistep"`` drops tenfold at half the run and before
    its last epoch. ``"cosine"`` anneals from ``base_lr`` to zero along a cosine stepped
    every mini-batch over the whole run (``CosineAnnealingLR`` with ``T_max`` the run's
    mini-batches; see :func:`full_budget_annealed`). ``"plateau"`` is
    ``ReduceLROnPlateau`` with :data:`PLATEAU`.

    OneCycleLR four ways, so that its higher peak, its annealing and its momentum cycle
    are told apart: peaking at ``base_lr`` (``"onecycle_base"``) or at ``max_lr``
    (``"onecycle"``), each with its default momentum cycle (0.95 down to 0.85 and back)
    and with the momentum held at 0.9 (``"onecycle_base_flat"``, ``"onecycle_flat"``).
    Each spec's name says the torch class it uses and, for OneCycleLR, its peak.

    Examples
    --------
    >>> specs = schedule_specs(0.01, 0.0316, profile="full")
    >>> [specs[k].scheduler_kwargs["max_lr"] for k in ("onecycle_base", "onecycle")]
    [0.01, 0.0316]
    >>> specs["cosine"].resolve("full").scheduler_kwargs
    {'T_0': 4}
    """
    base, peak = _positive("base_lr", base_lr), _positive("max_lr", max_lr)
    epochs = resolve_value(SHORT_BUDGET.epochs, current_profile(profile))
    k = max(1, epochs // 2)
    milestones = sorted({max(1, (epochs + 1) // 2), max(1, epochs - 1)})
    held = {"cycle_momentum": False}
    table = {
        "constant": ("constant rate", None, {}),
        "step": (f"StepLR({k}, 0.1)", "step", {"step_size": k, "gamma": 0.1}),
        "lambda_step": (
            f"LambdaLR(0.1 ** (epoch // {k}))",
            "lambda",
            {"lr_lambda": f"x0.1_every_{k}"},
        ),
        "lambda": ("LambdaLR (warm-up, 1/sqrt)", "lambda", {"lr_lambda": "warmup_inverse_sqrt"}),
        "multistep": ("MultiStepLR", "multistep", {"milestones": milestones, "gamma": 0.1}),
        "cosine": ("cosine annealing, per mini-batch", *_per_batch_cosine(epochs)),
        "onecycle_base": (f"OneCycleLR, peak {base:g}", "onecycle", {"max_lr": base}),
        "onecycle_base_flat": (
            f"OneCycleLR, peak {base:g}, momentum held",
            "onecycle",
            {"max_lr": base, **held},
        ),
        "onecycle": (f"OneCycleLR, peak {peak:g}", "onecycle", {"max_lr": peak}),
        "onecycle_flat": (
            f"OneCycleLR, peak {peak:g}, momentum held",
            "onecycle",
            {"max_lr": peak, **held},
        ),
        "plateau": ("ReduceLROnPlateau", "plateau", dict(PLATEAU)),
    }
    return {
        name: SHORT_BUDGET.replace(
            name=label, lr=base, scheduler=scheduler, scheduler_kwargs=kwargs
        )
        for name, (label, scheduler, kwargs) in table.items()
    }


def lowered_epochs(results: Any) -> dict[int, list[int]]:
    """By seed, the epochs (1-based) whose rate is below the epoch's before: where a
    ReduceLROnPlateau run lowered its rate (empty where it never did).

    ``results`` is a :class:`~fashion_optim.experiments.SeedResults` (its runs' recorded
    ``history.lr``, the rate of each epoch's first step)."""
    return {
        r.seed: [int(e) + 2 for e in np.flatnonzero(np.diff(r.history.lr) < 0)]
        for r in results.results
    }


def schedule_candidates(
    outcomes: Mapping[str, Any], profile: Profile | str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The schedules that a ranking on validation may take, and why each other is out.

    ``outcomes`` maps schedule keys (:func:`schedule_specs`) to their
    :class:`~fashion_optim.experiments.SeedOutcomes`. Out are: a schedule with a failed
    seed (diverged or collapsed); one whose configuration repeats an earlier key's (the
    OneCycleLR runs at the peak, when the peak is the base rate); one that is another
    schedule written differently (:data:`SAME_SCHEDULE`: the LambdaLR twin of StepLR,
    whose reason starts, as a repeated configuration's does, with "the same"); and
    ReduceLROnPlateau
    when it lowered the rate on no seed (it is then the constant run under another
    name). Returns ``({key: SeedResults}, {key: reason})``.
    """
    keep: dict[str, Any] = {}
    out: dict[str, str] = {}
    seen: list[tuple[str, Any]] = []
    for key, o in outcomes.items():
        cfg = o.spec.resolve(profile)
        twin = next((k for k, c in seen if c == cfg), None)
        seen.append((key, cfg))
        same = SAME_SCHEDULE.get(key)
        if twin is not None:
            out[key] = f"the same configuration as {outcomes[twin].spec.name}"
        elif same in outcomes:
            out[key] = f"the same schedule as {outcomes[same].spec.name}, by definition"
        elif not o.complete:
            out[key] = o.failure_note() or "no seed finished"
        elif cfg.scheduler == "plateau" and not any(lowered_epochs(o.results).values()):
            out[key] = "it never lowered the rate: the constant run under another name"
        else:
            keep[key] = o.results
    return keep, out


def bias_correction_specs(
    lrs: tuple[float, ...] | None = None,
) -> dict[tuple[float, bool], Spec]:
    """The from-scratch Adam (``scratch_adam``) with and without bias correction, keyed
    ``(lr, bias_correction)``, at each rate of ``lrs`` (default: Adam's grid of the
    tuning, ``SWEEP_GRIDS["adam"]``) on the budget of the tuning's first rung: the
    shared Adam run's data and betas for ``RUNG_EPOCHS[0]`` epochs (one epoch on the
    whole training split), recording nothing beyond the history.

    Both variants see the same grid at the same budget, so each can be compared at its
    own best rate, and at rates whose early steps match. The from-scratch Adam matches
    :class:`torch.optim.Adam` with the correction on (the tests pin it); without it,
    the steps use the moments as they are, biased towards zero.

    Examples
    --------
    >>> specs = bias_correction_specs((1e-3,))
    >>> sorted(specs), specs[1e-3, False].record.recorders()
    ([(0.001, False), (0.001, True)], [])
    """
    from .tuning import RUNG_EPOCHS, SWEEP_GRIDS  # tuning builds on this module

    lrs = SWEEP_GRIDS["adam"] if lrs is None else lrs
    if not lrs or not all(
        isinstance(lr, int | float) and not isinstance(lr, bool) and lr > 0 for lr in lrs
    ):
        raise ValueError(
            f"lrs must be positive numbers, at least one, got {lrs!r}; leave it out for "
            "Adam's grid of the tuning."
        )
    first_rung = PerProfile(full=RUNG_EPOCHS.full[0], quick=RUNG_EPOCHS.quick[0])
    return {
        (float(lr), correct): NAMED["adam"].replace(
            name=f"Adam{'' if correct else ' without bias correction'}, lr {lr:g}",
            optimizer="scratch_adam",
            lr=float(lr),
            optimizer_kwargs={"bias_correction": correct},
            epochs=first_rung,
            record=Record(),
        )
        for lr in lrs
        for correct in (True, False)
    }


#: How often (in optimizer steps) and for how many epochs the snapshot runs keep all
#: the weights, per profile.
SNAPSHOT_EVERY = PerProfile(full=20, quick=10)
SNAPSHOT_EPOCHS = PerProfile(full=3, quick=2)


def snapshot_specs(
    keys: tuple[str, ...] = ("sgd", "momentum", "nesterov"),
    profile: Profile | str | None = None,
) -> dict[str, Spec]:
    """Shorter runs of the :data:`NAMED` specs ``keys`` that keep every weight every
    ``SNAPSHOT_EVERY`` steps, for trajectories on a plane
    (:func:`~fashion_optim.experiments.trajectory_surface`). They start from the same
    weights and see the same mini-batches as the shared runs."""
    every = resolve_value(SNAPSHOT_EVERY, current_profile(profile))
    return {
        key: NAMED[key].replace(
            name=f"{NAMED[key].name} (snapshots)",
            record=Record(snapshot_every=every),
            epochs=SNAPSHOT_EPOCHS,
        )
        for key in keys
    }
