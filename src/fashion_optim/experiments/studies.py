"""The note's named studies: the shared runs every page reuses (:data:`NAMED`), the
weights they record (:data:`PROBES`), the schedule comparison's specs, the full-budget
one-cycle run, and the snapshot runs behind the loss-surface figure.

A page that asks for one of these gets the run another page trained, from the cache.
"""

from __future__ import annotations

from .profiles import PerProfile, Profile, current_profile, resolve_value
from .specs import Record, Spec

__all__ = [
    "ADAM_RECORD",
    "LAYER_QUANTILES",
    "NAMED",
    "NOTE_EPOCHS",
    "NOTE_RECORD",
    "PROBES",
    "SHORT_BUDGET",
    "SNAPSHOT_EPOCHS",
    "SNAPSHOT_EVERY",
    "bias_correction_specs",
    "full_budget_onecycle",
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

#: The short budget of the learning-rate sweep, the schedule comparison and the
#: bias-correction ablation: SGD with momentum as in ``NAMED["momentum"]``, on stratified
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


def full_budget_onecycle(max_lr: float) -> Spec:
    """``NAMED["momentum"]`` with ``OneCycleLR(max_lr)``, stepped per mini-batch.

    Same data, epochs, optimizer, base rate and initial weights as the note's
    constant-rate run of SGD with momentum, so the two differ only in the schedule; no
    probes are recorded. ``max_lr`` is the range test's suggestion.
    """
    if not (isinstance(max_lr, int | float) and max_lr > 0):
        raise ValueError(f"max_lr must be a positive number, got {max_lr!r}.")
    return NAMED["momentum"].replace(
        name="SGD + momentum, OneCycleLR",
        scheduler="onecycle",
        scheduler_kwargs={"max_lr": float(max_lr)},
        record=Record(),
    )


def schedule_specs(
    base_lr: float, max_lr: float, profile: Profile | str | None = None
) -> dict[str, Spec]:
    """The schedules the note compares on :data:`SHORT_BUDGET`, from the constant rate
    ``base_lr`` (the sweep's choice), by key.

    ``"constant"`` is the sweep's own run at ``base_lr`` (no scheduler, the same cache
    entry). ``"step"`` is ``StepLR(k, 0.1)`` and ``"lambda_step"`` the ``LambdaLR`` of
    ``0.1 ** (epoch // k)``, the same schedule written twice, with ``k`` half the epochs;
    ``"lambda"`` is a linear warm-up followed by :math:`1/\\sqrt{t}` decay. OneCycleLR
    peaks at ``max_lr``, with its default momentum cycle (0.95 down to 0.85 and back,
    ``"onecycle"``) and without it (momentum held at 0.9, ``"onecycle_flat"``), so that
    its gain is not confounded with the momentum cycle. Each spec's name is the torch
    class it uses.
    """
    for name, value in (("base_lr", base_lr), ("max_lr", max_lr)):
        if not (isinstance(value, int | float) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}.")
    epochs = resolve_value(SHORT_BUDGET.epochs, current_profile(profile))
    k = max(1, epochs // 2)
    milestones = sorted({max(1, (epochs + 1) // 2), max(1, epochs - 1)})
    peak = {"max_lr": float(max_lr)}
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
        "cosine": ("CosineAnnealingLR", "cosine", {}),
        "onecycle": ("OneCycleLR", "onecycle", peak),
        "onecycle_flat": (
            "OneCycleLR, momentum held",
            "onecycle",
            {**peak, "cycle_momentum": False},
        ),
        "plateau": ("ReduceLROnPlateau", "plateau", {"patience": 1, "factor": 0.1}),
    }
    return {
        name: SHORT_BUDGET.replace(
            name=label, lr=float(base_lr), scheduler=scheduler, scheduler_kwargs=kwargs
        )
        for name, (label, scheduler, kwargs) in table.items()
    }


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
