r"""Moving averages of sequences: the simple moving average and the EWMA.

Every function works along axis 0, so ``x`` may be a series of shape ``[T]`` or a
stack of series of shape ``[T, k]`` (``[T, ...]`` in general), such as a sequence of
gradients. Results are ``float64`` arrays of the same shape as ``x``.

The exponentially weighted moving average (EWMA) follows Adam's convention: it starts
from zero, so its first values are biased towards zero, and :func:`bias_corrected`
divides that bias out.

.. math::

    m_0 = 0, \qquad m_t = \beta\, m_{t-1} + (1 - \beta)\, x_t, \qquad
    \hat m_t = \frac{m_t}{1 - \beta^t}.

Steps are counted from 1: ``x[0]`` is :math:`x_1` and ``ewma(x)[t - 1]`` is
:math:`m_t`.
"""

from __future__ import annotations

import math
import operator

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "BiasCorrectedEWMA",
    "bias_corrected",
    "ewma",
    "ewma_age",
    "ewma_weights",
    "sma",
    "sma_window_for_age",
]

# Length of the blocks :func:`ewma` solves at once. Each block costs a [B, B] matrix
# product per column, so B trades Python-loop overhead against wasted multiplications
# by zeros; 128 is near the minimum of the total time for T from 1e2 to 1e6.
_BLOCK = 128


def _check_beta(beta: float, name: str = "beta") -> float:
    # ``not (0 <= beta < 1)`` also rejects NaN.
    if not 0.0 <= beta < 1.0:
        raise ValueError(
            f"{name} must be in [0, 1), got {beta!r}. "
            "It is the weight of the past: 0.9 averages over about 10 steps."
        )
    return float(beta)


def _check_positive_int(value: int, name: str) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer >= 1, got {value!r} of type {type(value).__name__}."
        ) from None
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value}.")
    return value


def _as_series(x: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        raise ValueError(
            "x must have at least one dimension (time along axis 0), got a scalar. "
            "Wrap it in a list for a series of length 1."
        )
    return arr


def _along_time(v: NDArray[np.float64], ndim: int) -> NDArray[np.float64]:
    """Reshape a vector over time, shape [T], to broadcast against a [T, ...] array."""
    return v.reshape(v.shape + (1,) * (ndim - 1))


def sma(x: ArrayLike, window: int) -> NDArray[np.float64]:
    r"""Trailing simple moving average along axis 0.

    .. math::

        s_t = \frac{1}{\min(t, n)} \sum_{i=\max(1, t - n + 1)}^{t} x_i,

    with :math:`n` the window: once ``window`` values are available it is their plain
    mean; before that, the mean of all values so far. The output has the length of
    ``x``.

    Parameters
    ----------
    x : array_like, shape (T,) or (T, ...)
        The series, time along axis 0.
    window : int
        Number of trailing values averaged, at least 1.

    Returns
    -------
    numpy.ndarray
        The moving average, same shape as ``x``, ``float64``.

    Examples
    --------
    >>> sma([1.0, 2.0, 3.0, 4.0], window=2)
    array([1. , 1.5, 2.5, 3.5])
    """
    arr = _as_series(x)
    window = _check_positive_int(window, "window")
    n_steps = arr.shape[0]
    if n_steps == 0:
        return arr.copy()
    # Differencing one cumulative sum over the whole series would make the error grow
    # with the running total. Instead, cut the series into blocks of one window: the
    # window ending at row j of block b is the tail of block b-1 after row j plus the
    # head of block b up to row j, each a cumulative sum over at most one block.
    rest = arr.shape[1:]
    n_blocks = -(-(window - 1 + n_steps) // window)
    padded = np.zeros((n_blocks * window, *rest))
    padded[window - 1 : window - 1 + n_steps] = arr  # zeros before x: partial windows
    blocks = padded.reshape(n_blocks, window, *rest)
    head = np.cumsum(blocks, axis=1)
    tail = np.cumsum(blocks[:, ::-1], axis=1)[:, ::-1]
    sums = head
    sums[1:, :-1] += tail[:-1, 1:]
    sums = sums.reshape(n_blocks * window, *rest)[window - 1 : window - 1 + n_steps]
    counts = np.minimum(np.arange(1, n_steps + 1), window).astype(np.float64)
    return sums / _along_time(counts, arr.ndim)


def _resolve_beta(beta: float | None, alpha: float | None) -> float:
    if (beta is None) == (alpha is None):
        raise ValueError(
            "Pass exactly one of beta (weight of the past) or alpha = 1 - beta "
            f"(weight of the new value), got beta={beta!r} and alpha={alpha!r}."
        )
    if beta is not None:
        return _check_beta(beta)
    # ``not (0 < alpha <= 1)`` also rejects NaN.
    if not 0.0 < alpha <= 1.0:
        raise ValueError(
            f"alpha must be in (0, 1], got {alpha!r}. "
            "It is the weight of the new value, alpha = 1 - beta."
        )
    return 1.0 - float(alpha)


def ewma(
    x: ArrayLike, beta: float | None = None, *, alpha: float | None = None
) -> NDArray[np.float64]:
    r"""Exponentially weighted moving average along axis 0, started from zero.

    .. math::

        m_0 = 0, \qquad m_t = \beta\, m_{t-1} + (1 - \beta)\, x_t
        = (1 - \beta) \sum_{i=1}^{t} \beta^{t-i} x_i.

    This is Adam's first-moment estimate. Because it starts from zero, a constant
    series :math:`c` gives :math:`m_t = c\,(1 - \beta^t)`: see :func:`bias_corrected`.

    Parameters
    ----------
    x : array_like, shape (T,) or (T, ...)
        The series, time along axis 0.
    beta : float, optional
        Weight of the past, in [0, 1). Pass this or ``alpha``, not both.
    alpha : float, optional
        Weight of the new value, ``alpha = 1 - beta``, in (0, 1] (keyword only).

    Returns
    -------
    numpy.ndarray
        :math:`m_1, \dots, m_T`, same shape as ``x``, ``float64``.

    Notes
    -----
    The recursion is solved in blocks of :math:`B` steps: inside a block,
    :math:`m_{s+j} = \beta^{j} m_s + (1-\beta)\sum_{i=1}^{j} \beta^{j-i} x_{s+i}` is one
    product with a lower-triangular matrix whose entries are all in [0, 1], so no
    power of :math:`\beta^{-1}` is formed and nothing can overflow, unlike the
    one-shot ``beta**t * cumsum(x * beta**-t)``. It matches the step-by-step loop to
    rounding error.

    Examples
    --------
    >>> ewma([1.0, 1.0, 1.0], beta=0.5)
    array([0.5  , 0.75 , 0.875])
    >>> ewma([1.0, 1.0, 1.0], alpha=0.5)
    array([0.5  , 0.75 , 0.875])
    """
    beta = _resolve_beta(beta, alpha)
    arr = _as_series(x)
    n_steps = arr.shape[0]
    flat = arr.reshape(n_steps, math.prod(arr.shape[1:]))
    out = np.empty_like(flat)

    lags = np.arange(_BLOCK)
    lag_matrix = lags[:, None] - lags[None, :]
    # weights[j, i] = (1 - beta) beta^(j - i) for i <= j: the weight of the block's
    # (i+1)-th input in its (j+1)-th output. ``np.where`` evaluates the power at
    # negative lags too, so clip them before raising beta to them.
    weights = np.where(lag_matrix >= 0, (1.0 - beta) * beta ** np.maximum(lag_matrix, 0), 0.0)
    # carry[j] = beta^(j + 1): how much of the previous block's last value survives.
    carry = beta ** (lags + 1.0)

    previous = np.zeros(flat.shape[1])
    for start in range(0, n_steps, _BLOCK):
        block = flat[start : start + _BLOCK]
        n = block.shape[0]
        out[start : start + n] = weights[:n, :n] @ block + carry[:n, None] * previous
        previous = out[start + n - 1]
    return out.reshape(arr.shape)


def bias_corrected(x: ArrayLike, beta: float) -> NDArray[np.float64]:
    r"""EWMA divided by its weight sum, as in Adam's bias correction.

    .. math::

        \hat m_t = \frac{m_t}{1 - \beta^t}, \qquad t = 1, \dots, T,

    with :math:`m_t` from :func:`ewma`. The weights of :math:`m_t` sum to
    :math:`1 - \beta^t` (see :func:`ewma_weights`), so :math:`\hat m_t` is a weighted
    mean: a constant series is returned unchanged, and :math:`\hat m_1 = x_1`.

    Parameters
    ----------
    x : array_like, shape (T,) or (T, ...)
        The series, time along axis 0.
    beta : float
        Weight of the past, in [0, 1).

    Returns
    -------
    numpy.ndarray
        :math:`\hat m_1, \dots, \hat m_T`, same shape as ``x``, ``float64``.

    Examples
    --------
    >>> bias_corrected([2.0, 2.0, 2.0], beta=0.9)
    array([2., 2., 2.])
    """
    beta = _check_beta(beta)
    m = ewma(x, beta)
    steps = np.arange(1, m.shape[0] + 1, dtype=np.float64)
    return m / _along_time(1.0 - beta**steps, m.ndim)


class BiasCorrectedEWMA:
    r"""The bias-corrected EWMA of a stream, one value at a time.

    For a loop that acts on each smoothed value as it comes: the learning-rate range test
    (:func:`fashion_optim.lr_finder.range_test`) stops as soon as it blows up.
    :meth:`update` takes :math:`x_t` and returns :math:`\hat m_t = m_t / (1 - \beta^t)`,
    :math:`m_t = \beta m_{t-1} + (1 - \beta) x_t` from :math:`m_0 = 0`: the values of
    :func:`bias_corrected`, to rounding error (that one solves the recursion in blocks).

    Parameters
    ----------
    beta : float
        Weight of the past, in [0, 1).

    Examples
    --------
    >>> average = BiasCorrectedEWMA(0.5)
    >>> [average.update(x) for x in (2.0, 4.0)]
    [2.0, 3.3333333333333335]
    """

    def __init__(self, beta: float) -> None:
        self.beta = _check_beta(beta)
        self.mean = 0.0  # m_t, not yet corrected
        self.steps = 0

    def update(self, x: float) -> float:
        r"""Add :math:`x_t`; return :math:`\hat m_t`."""
        self.steps += 1
        self.mean = self.beta * self.mean + (1.0 - self.beta) * x
        return self.mean / (1.0 - self.beta**self.steps)


def ewma_weights(beta: float, t: int) -> NDArray[np.float64]:
    r"""Weights the EWMA at step ``t`` gives to :math:`x_1, \dots, x_t`.

    .. math::

        m_t = \sum_{i=1}^{t} w_i x_i, \qquad w_i = (1 - \beta)\, \beta^{t - i},
        \qquad \sum_{i=1}^{t} w_i = 1 - \beta^t.

    Parameters
    ----------
    beta : float
        Weight of the past, in [0, 1).
    t : int
        The step, at least 1.

    Returns
    -------
    numpy.ndarray, shape (t,)
        ``w[i - 1]`` is the weight of :math:`x_i`; the newest value comes last.

    Examples
    --------
    >>> ewma_weights(0.5, 3)
    array([0.125, 0.25 , 0.5  ])
    """
    beta = _check_beta(beta)
    t = _check_positive_int(t, "t")
    return (1.0 - beta) * beta ** np.arange(t - 1, -1, -1, dtype=np.float64)


def ewma_age(beta: float) -> float:
    r"""Average age (lag) of the values an EWMA of infinite length averages.

    The age of :math:`x_{t-k}` at step :math:`t` is :math:`k`: the current value has
    age 0. Weighting ages by the EWMA's weights,

    .. math::

        \bar a = \sum_{k \ge 0} (1 - \beta)\, \beta^k\, k = \frac{\beta}{1 - \beta}.

    The "memory of about :math:`1/(1-\beta)` steps" usually quoted (10 steps for
    :math:`\beta = 0.9`) is the same average counted with the current value as age 1:
    :math:`1/(1-\beta) = \bar a + 1`.

    Parameters
    ----------
    beta : float
        Weight of the past, in [0, 1).

    Returns
    -------
    float
        :math:`\beta / (1 - \beta)`, in steps.

    See Also
    --------
    sma_window_for_age : the simple moving average with the same average age.

    Examples
    --------
    >>> round(ewma_age(0.9), 12)
    9.0
    """
    beta = _check_beta(beta)
    return beta / (1.0 - beta)


def sma_window_for_age(beta: float) -> float:
    r"""Window of the simple moving average whose values have the EWMA's average age.

    A trailing simple moving average of window :math:`n` gives weight :math:`1/n` to
    ages :math:`0, \dots, n-1` (same counting as :func:`ewma_age`), so its average age
    is :math:`(n - 1)/2`. Equating it with :math:`\beta/(1 - \beta)`:

    .. math::

        n = 2 \bar a + 1 = \frac{1 + \beta}{1 - \beta}.

    The window does not depend on the counting: with the current value as age 1 both
    averages grow by one. It is a float; round it to use it as a window.

    Parameters
    ----------
    beta : float
        Weight of the past, in [0, 1).

    Returns
    -------
    float
        :math:`(1 + \beta) / (1 - \beta)`, in steps (19 for :math:`\beta = 0.9`).

    Examples
    --------
    >>> round(sma_window_for_age(0.9), 12)
    19.0
    """
    beta = _check_beta(beta)
    return (1.0 + beta) / (1.0 - beta)
