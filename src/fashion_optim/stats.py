"""Small statistics for comparing runs: paired differences over seeds and the test set's
own sampling error.

Runs with the same seed start from the same weights and see the same mini-batches,
whatever the optimizer, so two configurations are compared seed by seed
(:func:`paired_difference`), which removes the part of the spread that the seed causes in
both. :func:`binomial_se` is the standard error that a finite test set puts on any
accuracy, however many seeds are averaged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _scipy_stats

__all__ = ["PairedDifference", "binomial_se", "paired_by_seed", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """The mean of per-seed differences ``a - b`` and its Student-t confidence interval.

    Attributes
    ----------
    mean : float
    low, high : float
        The interval's ends (equal to ``mean`` when ``n`` is 1: no interval).
    n : int
        Number of pairs.
    confidence : float
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of zero."""
        return self.n > 1 and (self.low > 0 or self.high < 0)

    def __str__(self) -> str:
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def paired_difference(a: ArrayLike, b: ArrayLike, confidence: float = 0.95) -> PairedDifference:
    """The mean of ``a - b`` over pairs (seeds) with a two-sided Student-t interval.

    Examples
    --------
    >>> d = paired_difference([0.90, 0.91, 0.92], [0.89, 0.90, 0.90])
    >>> round(d.mean, 4), d.n
    (0.0133, 3)
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(
            f"a and b must be 1-D of the same non-zero length (one value per seed), got "
            f"shapes {x.shape} and {y.shape}."
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    d = x - y
    mean = float(d.mean())
    if d.size == 1:
        return PairedDifference(mean, mean, mean, 1, confidence)
    half = float(
        _scipy_stats.t.ppf(0.5 + confidence / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    )
    return PairedDifference(mean, mean - half, mean + half, int(d.size), confidence)


def paired_by_seed(a, b, metric: str = "test_acc", confidence: float = 0.95) -> PairedDifference:
    """:func:`paired_difference` of ``a - b`` over the seeds both finished, for two
    :class:`~fashion_optim.experiments.SeedResults` (``metric`` as in their
    ``per_seed``)."""
    va, vb = (dict(zip(r.seeds, r.per_seed(metric), strict=True)) for r in (a, b))
    both = [seed for seed in va if seed in vb]
    return paired_difference([va[s] for s in both], [vb[s] for s in both], confidence)


def binomial_se(accuracy: float, n: int) -> float:
    """The standard error :math:`\\sqrt{p(1-p)/n}` of an accuracy ``p`` measured on ``n``
    independent test images.

    Examples
    --------
    >>> round(binomial_se(0.9, 10_000), 4)
    0.003
    """
    if not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy!r}.")
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be an integer >= 1, got {n!r}.")
    return math.sqrt(accuracy * (1 - accuracy) / n)
