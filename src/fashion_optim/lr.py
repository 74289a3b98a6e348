"""Learning-rate schedules: a scheduler factory and schedule traces.

:func:`make_scheduler` builds any of torch's schedulers by name, and :func:`trace_lr`
shows, without training, the learning rate each mini-batch of a run would use, stepping
the scheduler exactly as :class:`~fashion_optim.training.Trainer` does. The learning-rate
range test is :mod:`fashion_optim.lr_finder`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler

from .training import scheduler_interval, step_scheduler_batch, step_scheduler_epoch

__all__ = [
    "SCHEDULERS",
    "make_scheduler",
    "scheduler_interval",
    "trace_lr",
]

# --------------------------------------------------------------------------- schedulers

#: Valid names for :func:`make_scheduler` and :func:`trace_lr`.
SCHEDULERS: tuple[str, ...] = (
    "constant",
    "step",
    "multistep",
    "exponential",
    "lambda",
    "cosine",
    "cosine_warm_restarts",
    "cyclic",
    "onecycle",
    "plateau",
)

#: Keyword arguments each scheduler cannot do without (besides those derived from
#: ``epochs``/``steps_per_epoch``).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "step": ("step_size",),
    "multistep": ("milestones",),
    "exponential": ("gamma",),
    "lambda": ("lr_lambda",),
    "cosine_warm_restarts": ("T_0",),
    "cyclic": ("base_lr", "max_lr"),
    "onecycle": ("max_lr",),
}


def _uses_momentum(optimizer: torch.optim.Optimizer) -> bool:
    return any(g.get("momentum", 0) or "betas" in g for g in optimizer.param_groups)


def _positive_int(name: str, value: Any, scheduler: str) -> int:
    if value is None:
        raise ValueError(f"the {scheduler!r} scheduler needs {name}; pass {name}=<int>.")
    if not (isinstance(value, int) and value >= 1):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return value


def make_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    **kwargs: Any,
) -> Any:
    """Build one of torch's learning-rate schedulers by name.

    ============================ =========================================== =========
    name (case-insensitive)      scheduler                                   steps per
    ============================ =========================================== =========
    ``"constant"``               ``ConstantLR(factor=1, total_iters=0)``     epoch
    ``"step"``                   ``StepLR`` (``step_size`` required)         epoch
    ``"multistep"``              ``MultiStepLR`` (``milestones`` required)   epoch
    ``"exponential"``            ``ExponentialLR`` (``gamma`` required)      epoch
    ``"lambda"``                 ``LambdaLR`` (``lr_lambda`` required)       epoch
    ``"cosine"``                 ``CosineAnnealingLR`` (``T_max=epochs``)    epoch
    ``"cosine_warm_restarts"``   ``CosineAnnealingWarmRestarts`` (``T_0``    batch
                                 required, in epochs)
    ``"cyclic"``                 ``CyclicLR`` (``base_lr``, ``max_lr``       batch
                                 required)
    ``"onecycle"``               ``OneCycleLR`` (``max_lr`` required,        batch
                                 ``total_steps=epochs*steps_per_epoch``)
    ``"plateau"``                ``ReduceLROnPlateau``                       epoch
    ============================ =========================================== =========

    ``"constant"`` returns a real scheduler that never changes the learning rate (not
    ``None``), so a :class:`~fashion_optim.training.Trainer` treats every run alike.
    For ``"cyclic"`` and ``"onecycle"``, ``cycle_momentum`` defaults to whether the
    optimizer already uses momentum (a ``momentum > 0`` or Adam-like ``betas``): torch's
    default, ``True``, would switch momentum on for plain SGD (and fails for optimizers
    without momentum). Pass it explicitly to override. Other keyword arguments go to the
    scheduler unchanged; the last column is :func:`scheduler_interval`.

    Parameters
    ----------
    name : str
        One of :data:`SCHEDULERS`.
    optimizer : torch.optim.Optimizer
    epochs : int, optional
        Length of the run; the default ``T_max`` of ``"cosine"`` and part of the total
        step count of ``"onecycle"``.
    steps_per_epoch : int, optional
        Mini-batches per epoch; needed by ``"onecycle"``.
    **kwargs
        Passed to the scheduler.

    Returns
    -------
    torch.optim.lr_scheduler.LRScheduler or torch.optim.lr_scheduler.ReduceLROnPlateau

    Examples
    --------
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> type(make_scheduler("cosine", opt, epochs=10)).__name__
    'CosineAnnealingLR'
    >>> sched = make_scheduler("OneCycle", opt, epochs=10, steps_per_epoch=50, max_lr=1.0)
    >>> sched.total_steps, scheduler_interval(sched)
    (500, 'batch')
    """
    if not isinstance(name, str) or name.lower() not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; valid names: {', '.join(SCHEDULERS)}.")
    key = name.lower()
    missing = [arg for arg in _REQUIRED.get(key, ()) if arg not in kwargs]
    if missing:
        raise ValueError(
            f"the {key!r} scheduler needs {', '.join(missing)}; pass "
            f"{', '.join(f'{m}=...' for m in missing)}."
        )
    if epochs is not None:
        _positive_int("epochs", epochs, key)
    if steps_per_epoch is not None:
        _positive_int("steps_per_epoch", steps_per_epoch, key)
    if key in ("cyclic", "onecycle"):
        kwargs.setdefault("cycle_momentum", _uses_momentum(optimizer))

    if key == "constant":
        return lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0, **kwargs)
    if key == "step":
        return lr_scheduler.StepLR(optimizer, **kwargs)
    if key == "multistep":
        return lr_scheduler.MultiStepLR(optimizer, **kwargs)
    if key == "exponential":
        return lr_scheduler.ExponentialLR(optimizer, **kwargs)
    if key == "lambda":
        return lr_scheduler.LambdaLR(optimizer, **kwargs)
    if key == "cosine":
        if "T_max" not in kwargs:
            kwargs["T_max"] = _positive_int("epochs (or T_max)", epochs, key)
        return lr_scheduler.CosineAnnealingLR(optimizer, **kwargs)
    if key == "cosine_warm_restarts":
        return lr_scheduler.CosineAnnealingWarmRestarts(optimizer, **kwargs)
    if key == "cyclic":
        return lr_scheduler.CyclicLR(optimizer, **kwargs)
    if key == "onecycle":
        if "total_steps" not in kwargs:
            kwargs["total_steps"] = _positive_int("epochs", epochs, key) * _positive_int(
                "steps_per_epoch", steps_per_epoch, key
            )
        return lr_scheduler.OneCycleLR(optimizer, **kwargs)
    return lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)


def trace_lr(
    name_or_factory: str | Callable[..., Any],
    epochs: int,
    steps_per_epoch: int,
    *,
    lr: float = 0.1,
    metrics: Sequence[float] | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """The learning rate of every mini-batch of a run, without training.

    A dummy parameter and ``SGD(lr=lr)`` stand in for the model; the scheduler is stepped
    exactly as :class:`~fashion_optim.training.Trainer` steps it (per batch or per epoch,
    see :func:`scheduler_interval`), and the learning rate is read before each mini-batch,
    as in :attr:`History.batch_lr <fashion_optim.training.History>`.

    Parameters
    ----------
    name_or_factory : str or callable
        A name for :func:`make_scheduler`, or ``factory(optimizer, **kwargs)`` returning a
        scheduler (or ``None`` for a constant learning rate).
    epochs, steps_per_epoch : int
        Shape of the run.
    lr : float
        The optimizer's (initial) learning rate.
    metrics : sequence of float, optional
        Per-epoch validation losses fed to ``ReduceLROnPlateau`` (required for it, at least
        ``epochs`` values); other schedulers ignore them.
    **kwargs
        Passed to :func:`make_scheduler` or to the factory.

    Returns
    -------
    numpy.ndarray
        ``[epochs * steps_per_epoch]`` learning rates.

    Examples
    --------
    >>> trace_lr("step", epochs=4, steps_per_epoch=2, lr=1.0, step_size=2)
    array([1. , 1. , 1. , 1. , 0.1, 0.1, 0.1, 0.1])
    """
    _positive_int("epochs", epochs, "trace_lr")
    _positive_int("steps_per_epoch", steps_per_epoch, "trace_lr")
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    if isinstance(name_or_factory, str):
        scheduler = make_scheduler(
            name_or_factory, optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch, **kwargs
        )
    elif callable(name_or_factory):
        scheduler = name_or_factory(optimizer, **kwargs)
    else:
        raise TypeError(
            f"name_or_factory must be a scheduler name or a callable, got "
            f"{type(name_or_factory)}; valid names: {', '.join(SCHEDULERS)}."
        )
    plateau = isinstance(scheduler, lr_scheduler.ReduceLROnPlateau)
    if plateau:
        if metrics is None:
            raise ValueError(
                "ReduceLROnPlateau needs the per-epoch validation losses: pass "
                f"metrics=<sequence of {epochs} floats>."
            )
        if len(metrics) < epochs:
            raise ValueError(f"metrics must hold at least {epochs} values, got {len(metrics)}.")
    interval = scheduler_interval(scheduler) if scheduler is not None else None
    out = np.empty(epochs * steps_per_epoch)
    for epoch in range(epochs):
        for batch in range(steps_per_epoch):
            out[epoch * steps_per_epoch + batch] = optimizer.param_groups[0]["lr"]
            # No gradient: the step changes nothing but keeps torch's step-order check quiet.
            optimizer.step()
            if interval == "batch":
                step_scheduler_batch(scheduler, epoch, batch, steps_per_epoch)
        if interval == "epoch":
            step_scheduler_epoch(scheduler, float(metrics[epoch]) if plateau else None)
    return out
