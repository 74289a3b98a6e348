"""Learning rates: the range test, a scheduler factory and schedule traces.

:func:`range_test` is Leslie Smith's learning-rate range test as popularised by fastai and
torch-lr-finder: train one mini-batch per learning rate on a geometric (or linear) ramp and
watch where the loss falls fastest and where it blows up. :func:`make_scheduler` builds any
of torch's schedulers by name, and :func:`trace_lr` shows, without training, the learning
rate each mini-batch of a run would use, stepping the scheduler exactly as
:class:`~fashion_optim.training.Trainer` does.
"""

from __future__ import annotations

import copy
import math
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler
from tqdm.auto import tqdm

from .training import scheduler_interval, step_scheduler_batch, step_scheduler_epoch

__all__ = [
    "SCHEDULERS",
    "RangeTestResult",
    "make_scheduler",
    "range_test",
    "scheduler_interval",
    "trace_lr",
]

StepMode = Literal["exp", "linear"]

# --------------------------------------------------------------------------- range test


@dataclass(frozen=True, eq=False)  # arrays have no single truth value
class RangeTestResult:
    """What :func:`range_test` measured and what it suggests.

    Attributes
    ----------
    lrs : numpy.ndarray
        The learning rate of each recorded mini-batch, ``[k]``.
    losses : numpy.ndarray
        The raw mini-batch losses, ``[k]``.
    smoothed : numpy.ndarray
        The bias-corrected exponentially weighted moving average of ``losses``, ``[k]``.
    suggested_lr : float or None
        The learning rate where the smoothed loss falls fastest (per decade of learning
        rate); ``None`` when too few points remain after the skips.
    lr_min, lr_max : float or None
        Bounds of the useful range: from where the smoothed loss has clearly started to
        fall to where it is lowest (see :func:`range_test`).
    diverged : bool
        Whether the test stopped because the loss exploded (or became NaN).
    stopped_at : int or None
        The 0-based iteration at which it stopped early, ``None`` when it ran to the end.
    step_mode : {"exp", "linear"}
        The shape of the learning-rate ramp.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested_lr: float | None
    lr_min: float | None
    lr_max: float | None
    diverged: bool
    stopped_at: int | None
    step_mode: StepMode


def _lr_schedule(start_lr: float, end_lr: float, num_iter: int, step_mode: str) -> np.ndarray:
    last = num_iter - 1
    if step_mode == "exp":
        return np.array([start_lr * (end_lr / start_lr) ** (i / last) for i in range(num_iter)])
    return np.array([start_lr + (end_lr - start_lr) * (i / last) for i in range(num_iter)])


def _validate_range_args(
    start_lr, end_lr, num_iter, step_mode, smooth, diverge_threshold, skip_start, skip_end
) -> None:
    if not start_lr > 0:
        raise ValueError(f"start_lr must be > 0, got {start_lr}.")
    if not end_lr > start_lr:
        raise ValueError(
            f"end_lr must be > start_lr ({start_lr}), got {end_lr}; the test ramps the "
            "learning rate up."
        )
    if not (isinstance(num_iter, int) and num_iter >= 2):
        raise ValueError(f"num_iter must be an integer >= 2, got {num_iter!r}.")
    if step_mode not in ("exp", "linear"):
        raise ValueError(f"step_mode must be 'exp' or 'linear', got {step_mode!r}.")
    if not 0 < smooth < 1:
        raise ValueError(f"smooth must be in (0, 1), got {smooth}.")
    if not diverge_threshold > 1:
        raise ValueError(f"diverge_threshold must be > 1, got {diverge_threshold}.")
    for name, value in (("skip_start", skip_start), ("skip_end", skip_end)):
        if not (isinstance(value, int) and value >= 0):
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}.")


def _suggest(
    lrs: np.ndarray, smoothed: np.ndarray, skip_start: int, skip_end: int
) -> tuple[float | None, float | None, float | None]:
    """Steepest descent and useful range of the smoothed curve (see :func:`range_test`)."""
    stop = len(smoothed) - skip_end
    if stop - skip_start < 2:
        warnings.warn(
            f"the range test recorded {len(smoothed)} points, too few to suggest a learning "
            f"rate after skipping {skip_start} at the start and {skip_end} at the end; "
            "lower skip_start/skip_end, raise num_iter or lower start_lr.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None, None, None
    lr = lrs[skip_start:stop]
    s = smoothed[skip_start:stop]
    slope = np.gradient(s, np.log10(lr))
    lowest = int(np.argmin(s))
    # Only the way down matters: a steep stretch after the minimum is a recovery from a
    # divergence bump, not a learning rate to train with.
    steepest = int(np.argmin(slope[: lowest + 1]))
    top = int(np.argmax(s[: lowest + 1]))
    drop = s[top] - s[lowest]
    falling = top + int(np.argmax(s[top : lowest + 1] <= s[top] - 0.1 * drop))
    return float(lr[steepest]), float(lr[falling]), float(lr[lowest])


def range_test(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    train_loader: Iterable,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    step_mode: StepMode = "exp",
    smooth: float = 0.05,
    diverge_threshold: float = 5.0,
    skip_start: int = 10,
    skip_end: int = 5,
    progress: bool | None = None,
) -> RangeTestResult:
    r"""Leslie Smith's learning-rate range test.

    Train ``num_iter`` mini-batches, the :math:`i`-th with every parameter group's learning
    rate set to

    .. math::

        \eta_i &= \eta_\text{start}\left(\frac{\eta_\text{end}}{\eta_\text{start}}
        \right)^{i/(N-1)} \quad\text{("exp")}, \\
        \eta_i &= \eta_\text{start} + (\eta_\text{end} - \eta_\text{start})\,\frac{i}{N-1}
        \quad\text{("linear")},

    :math:`i = 0, \dots, N-1`, and record each mini-batch's loss (computed before that
    batch's update). The loader is cycled when it runs out (calling ``set_epoch`` with the
    next epoch when it has one). The curve is smoothed with a bias-corrected exponentially
    weighted moving average, :math:`\beta = 1 - \text{smooth}`:

    .. math::

        m_i = \beta m_{i-1} + (1 - \beta)\,\ell_i, \quad m_{-1} = 0, \qquad
        \hat\ell_i = \frac{m_i}{1 - \beta^{i+1}}.

    The test stops early, with ``diverged=True``, when :math:`\hat\ell_i` exceeds
    ``diverge_threshold`` times the lowest smoothed loss so far, or when a loss is NaN or
    infinite (that mini-batch is then not recorded).

    The suggestion ignores the first ``skip_start`` and last ``skip_end`` recorded points.
    On what remains, up to the minimum of :math:`\hat\ell`:

    * ``lr_max`` is where :math:`\hat\ell` is lowest;
    * ``lr_min`` is the first point, after the highest smoothed loss before that minimum,
      where :math:`\hat\ell` has covered 10 % of its drop to the minimum: the loss is
      clearly falling;
    * ``suggested_lr`` is the steepest descent, the most negative
      :math:`d\hat\ell / d\log_{10}\eta` (central differences, :func:`numpy.gradient`).

    The model (``state_dict``, gradients and train/eval modes), the optimizer
    (``state_dict``, learning rates included), torch's global random state (and CUDA's)
    and the loader's epoch (its ``epoch`` attribute, put back with ``set_epoch``) are
    restored bitwise afterwards, even on error.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable
        ``loss_fn(outputs, targets)`` returning the mean loss of the batch.
    optimizer : torch.optim.Optimizer
        Built on ``model``'s parameters; its other hyper-parameters (momentum, weight
        decay...) are those the test uses.
    train_loader : iterable
        Yields ``(inputs, targets)`` mini-batches.
    start_lr, end_lr : float
        The ramp's ends, ``0 < start_lr < end_lr``.
    num_iter : int
        Mini-batches (and learning rates), at least 2.
    step_mode : {"exp", "linear"}
        Geometric or arithmetic ramp.
    smooth : float
        Weight of the newest loss in the moving average, in (0, 1).
    diverge_threshold : float
        Stop when the smoothed loss exceeds this multiple (> 1) of the best one.
    skip_start, skip_end : int
        Recorded points ignored at each end when suggesting.
    progress : bool, optional
        Progress bar on standard error; ``None`` (default) shows it only on a terminal.

    Returns
    -------
    RangeTestResult

    Examples
    --------
    >>> from fashion_optim.models import LeNet
    >>> model = LeNet()
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> result = range_test(model, nn.CrossEntropyLoss(), opt, loader)  # doctest: +SKIP
    >>> result.suggested_lr  # doctest: +SKIP
    0.0123...
    """
    _validate_range_args(
        start_lr, end_lr, num_iter, step_mode, smooth, diverge_threshold, skip_start, skip_end
    )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer)}.")
    schedule = _lr_schedule(start_lr, end_lr, num_iter, step_mode)
    beta = 1.0 - smooth
    device = next(iter(model.parameters())).device

    model_state = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    rng_state = torch.get_rng_state()
    cuda_rng_state = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    has_epoch = hasattr(train_loader, "set_epoch")
    loader_epoch = getattr(train_loader, "epoch", None) if has_epoch else None

    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    diverged, stopped_at = False, None
    bar = tqdm(
        total=num_iter,
        disable=None if progress is None else not progress,
        file=sys.stderr,
        unit="batch",
        leave=False,
        desc="LR range test",
    )
    try:
        model.train()
        epoch = loader_epoch if isinstance(loader_epoch, int) else 0
        batches = iter(train_loader)
        avg, best = 0.0, math.inf
        for i, lr in enumerate(schedule.tolist()):
            try:
                x, y = next(batches)
            except StopIteration:
                epoch += 1
                if has_epoch:
                    train_loader.set_epoch(epoch)
                batches = iter(train_loader)
                try:
                    x, y = next(batches)
                except StopIteration:
                    raise ValueError("train_loader yields no batches.") from None
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            value = loss.item()
            if not math.isfinite(value):
                diverged, stopped_at = True, i
                break
            loss.backward()
            optimizer.step()
            avg = beta * avg + (1.0 - beta) * value
            current = avg / (1.0 - beta ** (i + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(current)
            best = min(best, current)
            bar.update(1)
            if current > diverge_threshold * best:
                diverged, stopped_at = True, i
                break
    finally:
        bar.close()
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        for p, g in zip(model.parameters(), grads, strict=True):
            p.grad = g
        for m, mode in zip(model.modules(), modes, strict=True):
            m.training = mode
        torch.set_rng_state(rng_state)
        if cuda_rng_state is not None:
            torch.cuda.set_rng_state_all(cuda_rng_state)
        if has_epoch and loader_epoch is not None:
            train_loader.set_epoch(loader_epoch)

    lrs_a, smoothed_a = np.asarray(lrs, dtype=float), np.asarray(smoothed, dtype=float)
    suggested, lr_min, lr_max = _suggest(lrs_a, smoothed_a, skip_start, skip_end)
    return RangeTestResult(
        lrs=lrs_a,
        losses=np.asarray(losses, dtype=float),
        smoothed=smoothed_a,
        suggested_lr=suggested,
        lr_min=lr_min,
        lr_max=lr_max,
        diverged=diverged,
        stopped_at=stopped_at,
        step_mode=step_mode,
    )


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
