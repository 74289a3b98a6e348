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
- **The convention** (:data:`CONVENTIONS`, :func:`replay`): each tool's smoothing, the
  multiple of the lowest smoothed loss at which its test stops, and its ramp.
  :func:`replay` re-reads a recorded test under another tool's convention.

:func:`regret` and :func:`grid_steps` score a suggestion against a sensitivity curve and
a chosen rate.

========================  ======================================================  ============
rule                      the rate it reads                                       from
========================  ======================================================  ============
``"steepest"``            steepest descent per decade, before the lowest point    this package
``"valley"``              about 2/3 into the longest decreasing stretch           fastai
``"minimum/10"``          a tenth of the rate at the lowest loss                  fastai
``"steep"``               steepest descent per unit of log rate                   fastai
``"slide"``               where a window of 15 points sliding down from the end   fastai
                          first has the same slope at both ends (within 0.005)
``"min_gradient"``        the most negative ``np.gradient`` per *mini-batch*      torch-lr-finder
========================  ======================================================  ============

fastai's rules pick the peak of a one-cycle schedule (``fit_one_cycle``'s ``lr_max``),
not a constant rate. fastai reads its four rules on the points from ``num_iter // 10`` to
the fifth from the end; torch-lr-finder skips the first 10 and the last 5; ``"steepest"`` skips as
:func:`~fashion_optim.lr_finder.range_test` does (10 and 5). With a geometric ramp, a gradient per
mini-batch and one per unit of log rate differ by a constant factor, so ``"steep"`` and
``"min_gradient"`` differ only in the points they skip and in one-sided against centred
differences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .ewma import BiasCorrectedEWMA

__all__ = [
    "CONVENTIONS",
    "RULES",
    "SMOOTHINGS",
    "Convention",
    "Replay",
    "grid_steps",
    "regret",
    "replay",
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


def _slide(
    lrs: np.ndarray,
    s: np.ndarray,
    num_iter: int,
    lr_diff: int = 15,
    thresh: float = 0.005,
) -> float:
    lr, loss = _fastai_window(lrs, s, num_iter)
    grad = np.gradient(loss)  # per mini-batch, in the loss's units
    # a window of lr_diff points slides down from the end while the slopes at its two
    # ends differ by more than thresh; the rate is its left end's last such position
    right, left = -1, -1 - lr_diff
    found = lr[left]
    while left >= -len(loss) and abs(grad[right] - grad[left]) > thresh:
        found = lr[left]
        right, left = right - 1, left - 1
    return float(found)


def _min_gradient(lrs: np.ndarray, s: np.ndarray, num_iter: int) -> float:
    lr, loss = lrs[10:-5], s[10:-5]
    return float(lr[int(np.argmin(np.gradient(loss)))])


#: The suggestion rules by name (see the module documentation).
RULES: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "steepest": _steepest,
    "valley": _valley,
    "minimum/10": _minimum_over_10,
    "steep": _steep,
    "slide": _slide,
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


@dataclass(frozen=True)
class Convention:
    """How a tool runs and smooths its range test.

    ``beta`` and ``smoothing``: its moving average (:func:`smooth_losses`); ``stop``: it
    stops once the smoothed loss exceeds ``stop`` times its lowest value so far (that
    point is recorded); ``ramp``: the exponent of its geometric ramp at mini-batch
    :math:`i`, ``"i/(N-1)"`` (the ramp ends at ``end_lr``) or ``"i/num_it"`` (fastai's:
    its last rate is one step short of ``end_lr``).
    """

    beta: float
    smoothing: Smoothing
    stop: float
    ramp: Literal["i/(N-1)", "i/num_it"]


#: Each tool's defaults by name, for :func:`fashion_optim.lr_finder.range_test` (this
#: package), fastai's ``LRFinder`` and ``lr_find``, and torch-lr-finder's
#: ``LRFinder.range_test`` (``smooth_f = 0.05``, ``diverge_th = 5``).
CONVENTIONS: dict[str, Convention] = {
    "this package": Convention(0.95, "corrected", 5.0, "i/(N-1)"),
    "fastai": Convention(0.98, "corrected", 4.0, "i/num_it"),
    "torch-lr-finder": Convention(0.95, "seeded", 5.0, "i/(N-1)"),
}


@dataclass(frozen=True)
class Replay:
    """A recorded range test as another convention would have recorded it: its ``lrs``
    and raw ``losses`` (cut where that convention stops), the ``num_iter`` it planned,
    and whether the record holds all of it (``exact``)."""

    lrs: np.ndarray
    losses: np.ndarray
    num_iter: int
    exact: bool


def replay(
    lrs: ArrayLike,
    losses: ArrayLike,
    convention: Convention,
    *,
    num_iter: int,
) -> Replay:
    """Re-read a range test recorded on the ramp ``i/(N-1)`` (``N = num_iter``, as
    :func:`fashion_optim.lr_finder.range_test` runs it) under ``convention``, from its
    raw losses alone.

    The ramp ``i/num_it`` with ``num_it = N - 1`` trains, batch for batch, the rates of
    the first ``N - 1`` points of the ``i/(N-1)`` ramp between the same ends, so the last
    point is dropped (when it was recorded) and ``num_iter`` becomes ``N - 1``. The losses
    are then smoothed with the convention's ``beta`` and ``smoothing`` and cut after the
    first point whose smoothed loss exceeds ``stop`` times the lowest before it. When the
    recorded test stopped early and the convention's stop did not fire within it, that
    tool would have trained further than was recorded: ``exact`` is then False (the
    suggestion read from the record may differ from that tool's).

    Examples
    --------
    >>> lrs, losses = np.geomspace(1e-3, 1, 6), np.array([2.0, 1.0, 0.5, 0.5, 9.0, 9.0])
    >>> r = replay(lrs, losses, Convention(0.01, "seeded", 4.0, "i/num_it"), num_iter=6)
    >>> r.losses.tolist(), r.num_iter, r.exact
    ([2.0, 1.0, 0.5, 0.5, 9.0], 5, True)
    """
    lr = np.asarray(lrs, dtype=float)
    raw = np.asarray(losses, dtype=float)
    if lr.shape != raw.shape or raw.ndim != 1 or raw.size == 0:
        raise ValueError(
            f"lrs and losses must be two non-empty 1-d arrays of one shape, got {lr.shape} "
            f"and {raw.shape}."
        )
    if not (isinstance(num_iter, int) and num_iter >= len(raw)):
        raise ValueError(
            f"num_iter must be the planned mini-batches (an integer >= the {len(raw)} "
            f"recorded), got {num_iter!r}."
        )
    if convention.ramp not in ("i/(N-1)", "i/num_it"):
        raise ValueError(f"unknown ramp {convention.ramp!r}; use 'i/(N-1)' or 'i/num_it'.")
    ran_out = len(raw) == num_iter  # the recorded test ran its whole ramp
    if convention.ramp == "i/num_it":
        num_iter -= 1
        lr, raw = lr[:num_iter], raw[:num_iter]
    smoothed = smooth_losses(raw, convention.beta, convention.smoothing)
    above = smoothed > convention.stop * np.minimum.accumulate(smoothed)
    if above.any():
        cut = int(np.argmax(above)) + 1
        return Replay(lr[:cut], raw[:cut], num_iter, True)
    return Replay(lr, raw, num_iter, ran_out)


def suggest_all(
    lrs: ArrayLike,
    losses: ArrayLike,
    *,
    num_iter: int,
    conventions: dict[str, Convention] | None = None,
) -> dict[tuple[str, str], tuple[float, bool]]:
    """:func:`suggest` for every rule under every convention (default
    :data:`CONVENTIONS`), each read from :func:`replay` of the recorded test, keyed
    ``(rule, convention)``: the rate, and whether the replay was exact."""
    out = {}
    for name, conv in (CONVENTIONS if conventions is None else conventions).items():
        again = replay(lrs, losses, conv, num_iter=num_iter)
        for rule in RULES:
            rate = suggest(
                rule, again.lrs, again.losses, beta=conv.beta, smoothing=conv.smoothing,
                num_iter=again.num_iter,
            )  # fmt: skip
            out[rule, name] = (rate, again.exact)
    return out


def grid_steps(rate: float, reference: float, step: float = math.sqrt(10)) -> float:
    r"""How many steps of a geometric grid (ratio ``step``) ``rate`` lies from
    ``reference``: :math:`\log(\text{rate}/\text{reference}) / \log(\text{step})`,
    positive above it.

    Examples
    --------
    >>> round(grid_steps(0.1, 0.01), 12), round(grid_steps(0.001, 0.01, step=10), 12)
    (2.0, -1.0)
    """
    if not (rate > 0 and reference > 0 and step > 1):
        raise ValueError(
            f"rate and reference must be > 0 and step > 1, got {rate!r}, {reference!r}, {step!r}."
        )
    return math.log(rate / reference) / math.log(step)


def regret(
    rates: ArrayLike,
    accuracy: ArrayLike,
    suggestion: float,
    *,
    outside: Literal["raise", "nan"] = "raise",
) -> float:
    """The validation accuracy a suggested rate gives up against the best point of a
    sensitivity curve: ``max(accuracy)`` minus the curve at ``suggestion``, read by
    linear interpolation on the log-rate axis.

    A pass/fail distance in factors of two ignores how flat the curve is where a rule
    lands; this scores the rule by what following it costs. ``rates`` must increase;
    a suggestion outside them is refused (the curve says nothing there), or, with
    ``outside="nan"``, scored NaN.

    Examples
    --------
    >>> regret([0.001, 0.01, 0.1], [0.80, 0.90, 0.70], 0.01)
    0.0
    >>> round(regret([0.001, 0.01, 0.1], [0.80, 0.90, 0.70], 10**-2.5), 6)
    0.05
    >>> regret([0.001, 0.01], [0.80, 0.90], 1.0, outside="nan")
    nan
    """
    if outside not in ("raise", "nan"):
        raise ValueError(f"outside must be 'raise' or 'nan', got {outside!r}.")
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
        if outside == "nan" and suggestion > 0:
            return math.nan
        raise ValueError(
            f"the suggestion {suggestion!r} lies outside the curve's rates "
            f"[{rates[0]!r}, {rates[-1]!r}]: the curve cannot score it; widen the grid."
        )
    return float(y.max() - np.interp(np.log10(suggestion), x, y))
