"""The range test's suggestion rules, as the tools people use compute them.

:func:`fashion_optim.lr_finder.range_test` records the loss of each mini-batch of a learning-rate
ramp. Which rate it *suggests* depends on two choices that the tools make differently:

- **The smoothing** (:func:`smooth_losses`). fastai keeps a bias-corrected exponentially
  weighted moving average (``"corrected"``, as :func:`fashion_optim.lr_finder.range_test` does);
  torch-lr-finder seeds the average with the first loss and does not correct it
  (``"seeded"``). Both follow the same recursion afterwards; they differ over the first
  :math:`1/(1-\\beta)` or so points.
- **The rule** (:data:`RULES`, :func:`suggest`): where on the smoothed curve to read the
  rate.

========================  ======================================================  ============
rule                      the rate it reads                                       from
========================  ======================================================  ============
``"steepest"``            steepest descent per decade, before the lowest point    this package
``"valley"``              about 2/3 into the longest decreasing stretch           fastai
``"minimum/10"``          a tenth of the rate at the lowest loss                  fastai
``"steep"``               steepest descent per unit of log rate                   fastai
``"min_gradient"``        the most negative ``np.gradient`` per *mini-batch*      torch-lr-finder
========================  ======================================================  ============

fastai reads its three rules on the points from ``num_iter // 10`` to the fifth from the
end; torch-lr-finder skips the first 10 and the last 5; ``"steepest"`` skips as
:func:`~fashion_optim.lr_finder.range_test` does (10 and 5). With a geometric ramp, a gradient per
mini-batch and one per unit of log rate differ by a constant factor, so ``"steep"`` and
``"min_gradient"`` differ only in the points they skip and in one-sided against centred
differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .ewma import BiasCorrectedEWMA

__all__ = [
    "RULES",
    "SMOOTHINGS",
    "regret",
    "smooth_losses",
    "steepest_descent",
    "suggest",
    "suggest_all",
]

Smoothing = Literal["corrected", "seeded"]
#: The smoothing conventions (see the module documentation).
SMOOTHINGS: tuple[str, ...] = ("corrected", "seeded")


def smooth_losses(losses: ArrayLike, beta: float = 0.95, mode: Smoothing = "corrected"):
    """The exponentially weighted moving average of ``losses``.

    ``"corrected"``: :math:`m_i = \\beta m_{i-1} + (1-\\beta)\\ell_i` from :math:`m_{-1} = 0`,
    divided by :math:`1 - \\beta^{i+1}` (fastai). ``"seeded"``: the same recursion from
    :math:`m_0 = \\ell_0`, not divided (torch-lr-finder, whose ``smooth_f`` is
    :math:`1 - \\beta`).

    Examples
    --------
    >>> smooth_losses([2.0, 2.0, 2.0], 0.9, "corrected").round(12).tolist()
    [2.0, 2.0, 2.0]
    >>> smooth_losses([1.0, 3.0], 0.5, "seeded").tolist()
    [1.0, 2.0]
    """
    values = np.asarray(losses, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"losses must be a non-empty 1-D sequence, got shape {values.shape}.")
    if not 0 < beta < 1:
        raise ValueError(f"beta must be in (0, 1), got {beta!r}.")
    if mode not in SMOOTHINGS:
        raise ValueError(f"mode must be one of {SMOOTHINGS}, got {mode!r}.")
    if mode == "corrected":
        average = BiasCorrectedEWMA(beta)
        return np.array([average.update(loss) for loss in values])
    out = np.empty_like(values)
    m = values[0]
    for i, loss in enumerate(values):
        if i > 0:
            m = beta * m + (1 - beta) * loss
        out[i] = m
    return out


def steepest_descent(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float, float, float]:
    r"""The steepest descent of a smoothed range-test curve, and its useful range.

    Up to the curve's minimum (a steep stretch after it is a recovery from a divergence
    bump, not a learning rate to train with), the rate of the most negative
    :math:`d\hat\ell / d\log_{10}\eta` (central differences, :func:`numpy.gradient`);
    the first rate, after the highest point before the minimum, where the curve has
    covered 10 % of its drop to the minimum (it is clearly falling); and the rate of the
    minimum. ``lrs`` and ``smoothed`` are the points to read, ends already skipped.

    Examples
    --------
    >>> lrs = np.geomspace(1e-4, 1, 41)
    >>> smoothed = 2 - np.tanh(np.log10(lrs) + 2) + (lrs > 0.3)  # falls fastest at 1e-2
    >>> [f"{lr:.2g}" for lr in steepest_descent(lrs, smoothed)]
    ['0.01', '0.001', '0.25']
    """
    slope = np.gradient(smoothed, np.log10(lrs))
    lowest = int(np.argmin(smoothed))
    steepest = int(np.argmin(slope[: lowest + 1]))
    top = int(np.argmax(smoothed[: lowest + 1]))
    drop = smoothed[top] - smoothed[lowest]
    falling = top + int(np.argmax(smoothed[top : lowest + 1] <= smoothed[top] - 0.1 * drop))
    return float(lrs[steepest]), float(lrs[falling]), float(lrs[lowest])


def _steepest(lrs: np.ndarray, s: np.ndarray, num_iter: int) -> float:
    return steepest_descent(lrs[10:-5], s[10:-5])[0]


def _fastai_window(lrs: np.ndarray, s: np.ndarray, num_iter: int):
    return lrs[num_iter // 10 : -5], s[num_iter // 10 : -5]


def _valley(lrs: np.ndarray, s: np.ndarray, num_iter: int) -> float:
    lr, loss = _fastai_window(lrs, s, num_iter)
    n = len(loss)
    # the longest decreasing subsequence ending at each point (fastai's quadratic loop)
    lds = np.ones(n, dtype=int)
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if loss[i] < loss[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lr[max_start + int(sections) + int(sections / 2)])


def _minimum_over_10(lrs: np.ndarray, s: np.ndarray, num_iter: int) -> float:
    lr, loss = _fastai_window(lrs, s, num_iter)
    return float(lr[int(np.argmin(loss))] / 10)


def _steep(lrs: np.ndarray, s: np.ndarray, num_iter: int) -> float:
    lr, loss = _fastai_window(lrs, s, num_iter)
    grads = np.diff(loss) / np.diff(np.log(lr))
    return float(lr[int(np.argmin(grads))])


def _min_gradient(lrs: np.ndarray, s: np.ndarray, num_iter: int) -> float:
    lr, loss = lrs[10:-5], s[10:-5]
    return float(lr[int(np.argmin(np.gradient(loss)))])


#: The suggestion rules by name (see the module documentation).
RULES: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "steepest": _steepest,
    "valley": _valley,
    "minimum/10": _minimum_over_10,
    "steep": _steep,
    "min_gradient": _min_gradient,
}


def suggest(
    rule: str,
    lrs: ArrayLike,
    losses: ArrayLike,
    *,
    beta: float = 0.95,
    smoothing: Smoothing = "corrected",
    num_iter: int | None = None,
) -> float:
    """The learning rate ``rule`` reads from the raw range-test ``losses`` at ``lrs``,
    after smoothing them with ``smoothing`` and ``beta``.

    ``num_iter`` is the number of mini-batches the test planned (fastai's first skip is a
    tenth of it); default: the number recorded. Raises :class:`ValueError` when fewer
    than 20 points are left to read.

    Examples
    --------
    >>> lrs = np.geomspace(1e-4, 1, 60)
    >>> losses = 2 - np.tanh(np.log10(lrs) + 2)  # falls fastest at lr = 1e-2
    >>> round(suggest("steep", lrs, losses, smoothing="seeded", beta=0.01), 3)
    0.009
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; valid choices: {sorted(RULES)}.")
    lr = np.asarray(lrs, dtype=float)
    raw = np.asarray(losses, dtype=float)
    if lr.shape != raw.shape:
        raise ValueError(f"lrs and losses differ in shape: {lr.shape} and {raw.shape}.")
    n = num_iter if num_iter is not None else len(raw)
    if len(raw) - max(10, n // 10) - 5 < 20:
        raise ValueError(
            f"{len(raw)} recorded points leave fewer than 20 to read after the skips; run "
            "the range test longer (num_iter) or from a lower start_lr."
        )
    return RULES[rule](lr, smooth_losses(raw, beta, smoothing), n)


def suggest_all(
    lrs: ArrayLike,
    losses: ArrayLike,
    *,
    beta: float = 0.95,
    num_iter: int | None = None,
) -> dict[tuple[str, str], float]:
    """:func:`suggest` for every rule and smoothing, keyed ``(rule, smoothing)``."""
    return {
        (rule, mode): suggest(rule, lrs, losses, beta=beta, smoothing=mode, num_iter=num_iter)
        for rule in RULES
        for mode in SMOOTHINGS
    }


def regret(rates: ArrayLike, accuracy: ArrayLike, suggestion: float) -> float:
    """The validation accuracy a suggested rate gives up against the best point of a
    sensitivity curve: ``max(accuracy)`` minus the curve at ``suggestion``, read by
    linear interpolation on the log-rate axis.

    A pass/fail distance in factors of two ignores how flat the curve is where a rule
    lands; this scores the rule by what following it costs. ``rates`` must increase;
    a suggestion outside them is refused (the curve says nothing there).

    Examples
    --------
    >>> regret([0.001, 0.01, 0.1], [0.80, 0.90, 0.70], 0.01)
    0.0
    >>> round(regret([0.001, 0.01, 0.1], [0.80, 0.90, 0.70], 10**-2.5), 6)
    0.05
    """
    x = np.log10(np.asarray(rates, dtype=float))
    y = np.asarray(accuracy, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ValueError(
            f"rates and accuracy must be two 1-d arrays of the same length >= 2, got "
            f"shapes {x.shape} and {y.shape}."
        )
    if not (np.all(np.isfinite(x)) and np.all(np.diff(x) > 0)):
        raise ValueError("rates must be positive, finite and increasing.")
    if not np.all(np.isfinite(y)):
        raise ValueError("accuracy must be finite: leave failed points out of the curve.")
    if not (suggestion > 0 and x[0] <= np.log10(suggestion) <= x[-1]):
        raise ValueError(
            f"the suggestion {suggestion!r} lies outside the curve's rates "
            f"[{rates[0]!r}, {rates[-1]!r}]: the curve cannot score it; widen the grid."
        )
    return float(y.max() - np.interp(np.log10(suggestion), x, y))
