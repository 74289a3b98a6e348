"""Range tests over seeds, and a range test against the learning-rate sweep.

:func:`range_test_seeds` draws one range test per seed on one axes;
:func:`range_test_with_sweep` puts it above the sweep's validation accuracy
(:func:`~fashion_optim.plotting.sweep_curves`) on the same learning-rate axis, so that
what the range test suggests reads against what training chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from .axes import label_lr_axis
from .figures import range_test_blow_up
from .style import NEUTRAL, color_for
from .sweeps import sweep_curves

# The line style of each seed's smoothed loss, in seed order (cycled).
_SEED_STYLES: tuple[Any, ...] = ("-", "--", ":", "-.")


def range_test_seeds(
    ax: Axes,
    results: Sequence[Any],
    *,
    seeds: Sequence[int] | None = None,
    color: str | None = None,
    clip: float = 1.3,
    blow_up_run: int = 5,
) -> dict[str, list[Any]]:
    """Draw several range tests of one optimizer, one per seed, on one axes.

    Each seed's smoothed loss is a line in ``color`` (solid, dashed, dotted,
    dash-dotted, in seed order), its raw losses a thin grey line clipped at ``clip`` times the
    largest first smoothed loss, its suggestion (``suggested_lr``) a dot on its smoothed
    curve, and its blow-up (:func:`~fashion_optim.plotting.range_test_blow_up`) a cross
    on the bottom edge.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    results : sequence of fashion_optim.lr_finder.RangeTestResult
        One per seed.
    seeds : sequence of int, optional
        Their seeds, for the legend (default 0, 1, ...).
    color : str, optional
        Colour of the smoothed losses and suggestions (default: the axes' next).
    clip : float
        The top of the axis, in multiples of the largest first smoothed loss.
    blow_up_run : int
        ``run`` of :func:`~fashion_optim.plotting.range_test_blow_up`.

    Returns
    -------
    dict
        Lists of artists, one per seed: ``smoothed``, ``raw``, ``suggestion`` and
        ``blow_up`` (an empty line where a seed has none).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from fashion_optim.lr_finder import RangeTestResult
    >>> lrs = np.geomspace(1e-4, 1.0, 50)
    >>> res = RangeTestResult(lrs, 2.3 - lrs, 2.3 - lrs, 1e-2, 1e-3, 0.5, False, None, "exp")
    >>> fig, ax = plt.subplots()
    >>> drawn = range_test_seeds(ax, [res, res], seeds=[0, 1])
    >>> len(drawn["smoothed"]), drawn["smoothed"][1].get_label()
    (2, 'seed 1, smoothed')
    """
    if not results:
        raise ValueError("results must hold at least one range test (one per seed).")
    seeds = list(range(len(results))) if seeds is None else list(seeds)
    if len(seeds) != len(results):
        raise ValueError(f"seeds must name each of the {len(results)} results, got {seeds}.")
    if not clip > 1:
        raise ValueError(f"clip must be > 1 (a multiple of the first loss), got {clip!r}.")
    top = clip * max(float(res.smoothed[0]) for res in results)
    drawn: dict[str, list[Any]] = {"smoothed": [], "raw": [], "suggestion": [], "blow_up": []}
    low = np.inf
    for k, (seed, res) in enumerate(zip(seeds, results, strict=True)):
        lrs, losses = np.asarray(res.lrs, float), np.asarray(res.losses, float)
        smoothed = np.asarray(res.smoothed, float)
        style = _SEED_STYLES[k % len(_SEED_STYLES)]
        low = min(low, losses.min())
        (raw,) = ax.plot(lrs, np.minimum(losses, top), color=NEUTRAL, lw=0.6, alpha=0.6)
        (line,) = ax.plot(lrs, smoothed, color=color, ls=style, label=f"seed {seed}, smoothed")
        color = line.get_color()
        lr = res.suggested_lr
        at = [] if lr is None else [np.interp(np.log(lr), np.log(lrs), smoothed)]
        (dot,) = ax.plot([] if lr is None else [lr], at, "o", color=color, mec="black", ms=6)
        i = range_test_blow_up(res, blow_up_run)
        where = [] if i is None else [lrs[i]]
        (cross,) = ax.plot(
            where, [0.04] * len(where), "X", color=color, mec="black", ms=8, zorder=5,
            clip_on=not where, transform=ax.get_xaxis_transform(),
        )  # fmt: skip
        for role, artist in zip(drawn, (line, raw, dot, cross), strict=True):
            drawn[role].append(artist)
    drawn["suggestion"][0].set_label("suggestion (steepest)")
    drawn["blow_up"][0].set_label("blow-up")
    drawn["raw"][0].set_label("raw loss")
    ax.set_ylim(0.9 * low, 1.08 * top)
    ax.set_ylabel("training loss (nat)")
    label_lr_axis(ax)
    return drawn


def range_test_with_sweep(
    ax_test: Axes,
    ax_sweep: Axes,
    results: Sequence[Any],
    sweep: Any,
    key: str,
    *,
    seeds: Sequence[int] | None = None,
    title: str | None = None,
    chosen: float | None = None,
    chosen_label: str = "sweep's choice",
) -> dict[str, Any]:
    """Draw one optimizer's range tests over seeds above its learning-rate sweep, on one
    learning-rate axis, with the sweep's chosen rate across both.

    ``ax_test`` gets :func:`range_test_seeds`; ``ax_sweep`` gets
    :func:`~fashion_optim.plotting.sweep_curves` of ``key`` (the final validation
    accuracy, mean ± std over the seeds that finished, an ``x`` with the count where
    seeds diverged, the chosen rate ringed), as on the sweep's own page. A dash-dotted
    line on both axes marks the chosen rate; the x limits hold the range tests and the
    grid. Colours are :func:`~fashion_optim.plotting.color_for` ``key``.

    Parameters
    ----------
    ax_test, ax_sweep : matplotlib.axes.Axes
    results : sequence of fashion_optim.lr_finder.RangeTestResult
        One per seed.
    sweep : fashion_optim.experiments.Sweep
        What :func:`~fashion_optim.experiments.run_sweep` returned, with ``key``.
    key : str
        The optimizer, a key of :data:`~fashion_optim.experiments.NAMED`.
    seeds : sequence of int, optional
        As in :func:`range_test_seeds`.
    title : str, optional
        Title of ``ax_test``.
    chosen : float, optional
        The rate the dash-dotted line marks, when it is not the sweep's own choice (for
        instance the rate chosen at the full budget, drawn over the first rung's sweep).
    chosen_label : str
        Its legend entry.

    Returns
    -------
    dict
        ``test`` (what :func:`range_test_seeds` returned), ``chosen_lr`` (the sweep's
        choice) and ``chosen`` (its line on each axes).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from fashion_optim import experiments
    >>> sweep = experiments.run_sweep(["adam"])  # doctest: +SKIP
    >>> tests = [experiments.run_range_test(experiments.NAMED["adam"], s, start_lr=1e-7,
    ...          end_lr=1.0) for s in sweep.seeds]  # doctest: +SKIP
    >>> fig, (top, bottom) = plt.subplots(2, 1, sharex=True)
    >>> range_test_with_sweep(top, bottom, tests, sweep, "adam")["chosen_lr"]  # doctest: +SKIP
    0.01
    """
    if key not in sweep.points:
        raise ValueError(f"the sweep has no {key!r}; it holds {sorted(sweep.points)}.")
    color = color_for(key)
    drawn: dict[str, Any] = {
        "test": range_test_seeds(ax_test, results, seeds=seeds, color=color),
    }
    label = f"sweep, mean ± std over {len(sweep.seeds)} seeds"
    own = sweep_curves(ax_sweep, sweep, [key], labels={key: label}).get(key)
    drawn["chosen_lr"] = chosen = own if chosen is None else float(chosen)
    drawn["chosen"] = [
        ax.axvline(chosen, color="black", ls="-.", lw=1.2, label="_" + chosen_label)
        for ax in (ax_test, ax_sweep)
    ]
    drawn["chosen"][0].set_label(chosen_label)  # one legend entry for the pair
    ax_sweep.set_ylim(0, 1.05)
    ax_sweep.set_ylabel("validation accuracy (fraction)")
    rates = sweep.rates(key)
    low = min(float(np.min(res.lrs)) for res in results)
    high = max(float(np.max(res.lrs)) for res in results)
    for ax in (ax_test, ax_sweep):
        ax.set_xlim(min(low, rates.min()), max(high, rates.max()))
    if title is not None:
        ax_test.set_title(title)
    return drawn
