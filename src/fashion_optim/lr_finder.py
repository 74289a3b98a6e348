"""The learning-rate range test (Leslie Smith's, as fastai and torch-lr-finder run it).

:func:`range_test` trains one mini-batch per learning rate on a geometric (or linear) ramp
and watches where the loss falls fastest and where it blows up; it returns a frozen
:class:`RangeTestResult` and leaves the model, the optimizer and the random state as it
found them. Other tools' suggestion rules are :mod:`fashion_optim.suggest`'s.
"""

from __future__ import annotations

import copy
import math
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .ewma import BiasCorrectedEWMA
from .suggest import steepest_descent

__all__ = ["RangeTestResult", "range_test"]

StepMode = Literal["exp", "linear"]


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
    """:func:`~fashion_optim.suggest.steepest_descent` of the curve without its skipped
    ends, or ``None`` each (with a warning) when too few points remain."""
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
    return steepest_descent(lrs[skip_start:stop], smoothed[skip_start:stop])


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
        average, best = BiasCorrectedEWMA(beta), math.inf
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
            current = average.update(value)
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
