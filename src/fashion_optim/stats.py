"""Small statistics for comparing runs: paired differences over seeds and the test set's
own sampling error.

Runs with the same seed start from the same weights and see the same mini-batches,
whatever the optimizer, so two configurations are compared seed by seed
(:func:`paired_difference`), which removes the part of the spread that the seed causes in
both. Several comparisons are corrected for their number (:func:`paired_tests`: Holm's
adjustment, Bonferroni-level intervals), and two models tested on the same images are
compared image by image (:func:`mcnemar`), whose paired error is far below
:func:`binomial_se`, the standard error of one accuracy on a finite test set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _scipy_stats

__all__ = [
    "MIN_PAIRS",
    "McNemar",
    "PairedDifference",
    "PairedTest",
    "binomial_se",
    "holm",
    "mcnemar",
    "paired_by_seed",
    "paired_by_seed_values",
    "paired_difference",
    "paired_tests",
]


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


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm's step-down adjustment of ``pvalues`` for multiple comparisons.

    The :math:`i`-th smallest of :math:`m` p-values is multiplied by :math:`m - i + 1`
    (from :math:`i = 1`), the products made non-decreasing in that order and capped at 1.
    Rejecting every hypothesis whose adjusted p-value is below :math:`\\alpha` keeps the
    chance of any false rejection at most :math:`\\alpha`, and rejects at least what
    Bonferroni's :math:`m p` does (Holm 1979).

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(4).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"pvalues must be a 1-D array of numbers in [0, 1], got {pvalues!r}.")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test of two classifiers on the same test images.

    Attributes
    ----------
    only_a, only_b : int
        Images that only ``a`` (only ``b``) classifies correctly: the discordant pairs.
    n : int
        Number of images.
    pvalue : float
        Two-sided exact binomial test of ``only_a`` among ``only_a + only_b`` at 1/2
        (1.0 when they never disagree).
    """

    only_a: int
    only_b: int
    n: int
    pvalue: float

    @property
    def difference(self) -> float:
        """Accuracy of ``a`` minus accuracy of ``b``."""
        return (self.only_a - self.only_b) / self.n

    @property
    def se(self) -> float:
        """Standard error of :attr:`difference` over the images (paired): the spread of
        the per-image differences in correctness, over :math:`\\sqrt{n}`."""
        b, c, n = self.only_a, self.only_b, self.n
        return math.sqrt(max((b + c) / n - ((b - c) / n) ** 2, 0.0) / n)


def mcnemar(pred_a: ArrayLike, pred_b: ArrayLike, labels: ArrayLike) -> McNemar:
    """McNemar's exact test for two classifiers' predictions ``pred_a`` and ``pred_b`` of
    the same images, whose true classes are ``labels`` (``scipy.stats.binomtest`` on
    the images where exactly one of them is right).

    Only the images on which the two disagree in correctness carry information about
    which is better; this is why two models tested on the same images differ by much less
    noise than each accuracy's own binomial error.

    Examples
    --------
    >>> t = mcnemar([0, 1, 1, 2], [0, 1, 0, 0], [0, 1, 1, 2])
    >>> t.only_a, t.only_b, t.pvalue
    (2, 0, 0.5)
    """
    a, b, y = (np.asarray(x).ravel() for x in (pred_a, pred_b, labels))
    if not (a.shape == b.shape == y.shape) or a.size == 0:
        raise ValueError(
            f"pred_a, pred_b and labels must have one entry per image, the same non-zero "
            f"number each, got {a.shape}, {b.shape} and {y.shape}."
        )
    ra, rb = a == y, b == y
    only_a, only_b = int(np.sum(ra & ~rb)), int(np.sum(~ra & rb))
    k = only_a + only_b
    p = 1.0 if k == 0 else float(_scipy_stats.binomtest(only_a, k, 0.5).pvalue)
    return McNemar(only_a, only_b, int(y.size), p)


#: The fewest pairs (seeds) an interval is drawn on. With two, Student's t has one
#: degree of freedom, so the pages show the seeds themselves instead.
MIN_PAIRS = 3


@dataclass(frozen=True)
class PairedTest:
    """One of several paired comparisons, corrected for their number.

    Attributes
    ----------
    difference : PairedDifference
        Mean difference over seeds with its interval at the Bonferroni level
        :math:`1 - \\alpha/m` (``low`` and ``high`` NaN below :data:`MIN_PAIRS` seeds).
    pvalue : float
        Paired t-test over seeds, two-sided (NaN below :data:`MIN_PAIRS`).
    pvalue_holm : float
        ``pvalue`` after :func:`holm` over the ``m`` comparisons.
    alpha : float
    m : int
        Number of comparisons corrected for.
    per_seed : tuple of float
        The differences seed by seed.
    """

    difference: PairedDifference
    pvalue: float
    pvalue_holm: float
    alpha: float
    m: int
    per_seed: tuple[float, ...]

    @property
    def resolved(self) -> bool:
        """Whether the difference is told apart from zero after the correction for the
        pairs compared: its simultaneous interval (Bonferroni level :math:`1-\alpha/m`)
        excludes zero, and so Holm's adjusted p-value is below :math:`\alpha` too.

        Holm's step-down test alone can reject a pair whose Bonferroni interval still
        holds zero (its second-smallest p-value is held to :math:`\alpha/(m-1)`, not
        :math:`\alpha/m`); a page names a difference only where the interval it prints
        shows it, so both must agree.
        """
        return bool(self.pvalue_holm < self.alpha and self.difference.excludes_zero)

    def __str__(self) -> str:
        d = self.difference
        if d.n < MIN_PAIRS:
            seeds = ", ".join(f"{x:+.4f}" for x in self.per_seed)
            return f"{d.mean:+.4f} (seeds: {seeds})"
        return f"{d.mean:+.4f} [{d.low:+.4f}, {d.high:+.4f}]"


def paired_tests(
    pairs: dict[str, tuple[ArrayLike, ArrayLike]], alpha: float = 0.05
) -> dict[str, PairedTest]:
    """Paired comparisons ``a - b`` by seed for each of ``pairs`` (name to ``(a, b)``, one
    value per seed each), corrected for their number: Holm's adjustment of the paired
    t-tests' p-values, and intervals at the Bonferroni level :math:`1 - \\alpha/m`
    (simultaneous: all hold at once with probability :math:`1 - \\alpha`). A pair with
    fewer than :data:`MIN_PAIRS` seeds gets no interval and no test, and is never
    resolved.

    Examples
    --------
    >>> t = paired_tests({"x": ([0.90, 0.91, 0.92], [0.89, 0.90, 0.90])})["x"]
    >>> t.m, round(t.difference.mean, 4), t.resolved
    (1, 0.0133, False)
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}.")
    m = len(pairs)
    diffs, pvals = {}, {}
    for name, (a, b) in pairs.items():
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        d = paired_difference(x, y, 1 - alpha / m)
        if d.n < MIN_PAIRS:
            d = PairedDifference(d.mean, math.nan, math.nan, d.n, d.confidence)
            p = math.nan
        elif np.all(x - y == (x - y)[0]):  # no spread: the t statistic is infinite or 0/0
            p = 1.0 if (x - y)[0] == 0 else 0.0
        else:
            p = float(_scipy_stats.ttest_rel(x, y).pvalue)
        diffs[name], pvals[name] = d, p
    tested = [name for name in pairs if not math.isnan(pvals[name])]
    adjusted = dict(zip(tested, holm([pvals[n] for n in tested]), strict=True)) if tested else {}
    return {
        name: PairedTest(
            diffs[name],
            pvals[name],
            float(adjusted.get(name, math.nan)),
            alpha,
            m,
            tuple(
                float(v)
                for v in np.asarray(pairs[name][0], float) - np.asarray(pairs[name][1], float)
            ),
        )
        for name in pairs
    }


def paired_by_seed_values(a, b, metric: str = "test_acc") -> tuple[np.ndarray, np.ndarray]:
    """``metric`` per seed of two :class:`~fashion_optim.experiments.SeedResults`, over
    the seeds both have, in the same order (the input of :func:`paired_tests`)."""
    va, vb = (dict(zip(r.seeds, r.per_seed(metric), strict=True)) for r in (a, b))
    both = [seed for seed in va if seed in vb]
    return np.array([va[s] for s in both]), np.array([vb[s] for s in both])
