"""Range tests over seeds, and a range test against the learning-rate sweep.

:func:`range_test_seeds` draws one range test per seed on one axes;
:func:`range_test_with_sweep` puts it above the sweep's validation accuracy
(:func:`~fashion_optim.plotting.sweep_curves`) on the same learning-rate axis, so that
what the range test suggests reads against what training chose, and
:func:`range_tests_against_sweep` does so for several optimizers in one figure.
:func:`range_test_table` and :func:`range_test_lag_table` tabulate the tests seed by
seed; :func:`sensitivity_curve` gives the curve a suggestion is scored on, and
:func:`suggestion_scorecard` and :func:`scorecard_sentences` score the rates that
suggestion rules read from them by their regret and distance from a chosen rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .axes import label_lr_axis
from .figures import range_test_blow_up
from .style import NEUTRAL, color_for
from .sweeps import sweep_curves
from .tables import log_median

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


def range_tests_against_sweep(
    tests: Mapping[str, Sequence[Any]],
    sweep: Any,
    *,
    seeds: Sequence[int],
    chosen: Mapping[str, float],
    titles: Mapping[str, str] | None = None,
    chosen_label: str = "chosen at the full budget",
) -> Figure:
    """One column per optimizer: its range tests over seeds above its sweep
    (:func:`range_test_with_sweep`), the rate of ``chosen`` marked across both, and one
    legend below the figure, one entry per label (colour names the optimizer).

    The bottom axes start a decade below the sweep's lowest rate (``sharex`` carries it
    to the top) and end where the last range test stopped.

    Parameters
    ----------
    tests : mapping of str to sequence of fashion_optim.lr_finder.RangeTestResult
        Optimizer key (of the sweep) to its range tests, one per seed, in column order.
    sweep : fashion_optim.experiments.Sweep
        The sweep drawn below, e.g. the tuning's first rung.
    seeds : sequence of int
        The seeds of each optimizer's tests.
    chosen : mapping of str to float
        The rate each column marks.
    titles : mapping of str to str, optional
        Column titles (default: the keys).
    chosen_label : str
        The marked rate's legend entry.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = range_tests_against_sweep(tests, sweep, seeds=[0, 1],
    ...                                 chosen={"adam": 1e-3})  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        2, len(tests), figsize=(9.0, 6.6), sharex="col", height_ratios=(1.2, 1),
        layout="constrained", squeeze=False,
    )  # fmt: skip
    for col, (key, results) in enumerate(tests.items()):
        range_test_with_sweep(
            axes[0, col], axes[1, col], results, sweep, key, seeds=seeds,
            title=(titles or {}).get(key, key), chosen=chosen[key], chosen_label=chosen_label,
        )  # fmt: skip
        axes[0, col].set_xlabel("")
        top = max(float(res.lrs[-1]) for res in results)
        axes[1, col].set_xlim(sweep.rates(key)[0] / 10, top)
    entries: dict[str, Any] = {}  # the first column's entry for a label shared by both
    for ax in axes.T.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), loc="outside lower center", ncols=4)
    return fig


def range_test_table(
    tests: Mapping[str, Sequence[Any]], seeds: Sequence[int], names: Mapping[str, str]
) -> Any:
    """A ``pandas.DataFrame``, one row per optimizer and seed: the range test's length in
    mini-batches, ``lr_min``, its suggestion, ``lr_max`` and its blow-up
    (:func:`~fashion_optim.plotting.range_test_blow_up`; ``"none"`` where there is none),
    each to two significant digits.

    Parameters
    ----------
    tests : mapping of str to sequence of fashion_optim.lr_finder.RangeTestResult
        Optimizer key to its range tests, one per seed.
    seeds : sequence of int
    names : mapping of str to str
        The optimizer's name in the index, by key.

    Examples
    --------
    >>> from fashion_optim.lr_finder import RangeTestResult
    >>> lrs = np.geomspace(1e-4, 1.0, 50)
    >>> res = RangeTestResult(lrs, 2.3 - lrs, 2.3 - lrs, 1e-2, 1e-3, 0.5, False, None, "exp")
    >>> range_test_table({"adam": [res]}, [0], {"adam": "Adam"}).iloc[0, 1:].tolist()
    ['0.001', '0.01', '0.5', 'none']
    """
    import pandas as pd

    rows = {}
    for key, results in tests.items():
        for seed, res in zip(seeds, results, strict=True):
            i = range_test_blow_up(res)
            rows[names[key], seed] = {
                "mini-batches": len(res.lrs),
                "lr_min": f"{res.lr_min:.2g}",
                "suggested": f"{res.suggested_lr:.2g}",
                "lr_max": f"{res.lr_max:.2g}",
                "blow-up": "none" if i is None else f"{res.lrs[i]:.2g}",
            }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["optimizer", "seed"])


def _lag_reading(rise: float, past: bool) -> str:
    """What the ratio of the raw loss at ``lr_max`` to its low says about the upper end."""
    if past:
        return "past the blow-up: read the raw curve"
    if rise > 1.2:
        return "climbing: the smoothed minimum lags"
    return "slightly above its low" if rise > 1.02 else "at its low: no visible lag"


def range_test_lag_table(
    tests: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
    names: Mapping[str, str],
    *,
    ramps: Mapping[str, tuple[float, float]],
    num_iter: int,
    age: float,
) -> Any:
    """A ``pandas.DataFrame``, one row per optimizer and seed: how far the smoothed loss
    lags on the ramp, and what that does to ``lr_max``.

    Columns: the lag as a factor of learning rate, ``(end / start) ** (age / (num_iter
    - 1))`` on a geometric ramp; ``lr_max``; the raw loss at ``lr_max`` over the lowest
    raw loss up to it; and a reading: past the blow-up
    (:func:`~fashion_optim.plotting.range_test_blow_up`), climbing (ratio above 1.2),
    slightly above its low (above 1.02) or at its low.

    Parameters
    ----------
    tests : mapping of str to sequence of fashion_optim.lr_finder.RangeTestResult
    seeds : sequence of int
    names : mapping of str to str
    ramps : mapping of str to (float, float)
        Each optimizer's ``(start_lr, end_lr)``.
    num_iter : int
        The mini-batches planned for each ramp.
    age : float
        The smoothing's average age in mini-batches
        (:func:`~fashion_optim.ewma.ewma_age`).

    Examples
    --------
    >>> from fashion_optim.lr_finder import RangeTestResult
    >>> lrs = np.geomspace(1e-4, 1.0, 50)
    >>> res = RangeTestResult(lrs, 2.3 - lrs, 2.3 - lrs, 1e-2, 1e-3, 0.5, False, None, "exp")
    >>> table = range_test_lag_table({"adam": [res]}, [0], {"adam": "Adam"},
    ...                              ramps={"adam": (1e-4, 1.0)}, num_iter=50, age=19)
    >>> table.loc[("Adam", 0)].tolist()
    ['35.6', '0.5', '1.00', 'at its low: no visible lag']
    """
    import pandas as pd

    rows = {}
    for key, results in tests.items():
        start, end = ramps[key]
        for seed, res in zip(seeds, results, strict=True):
            at_max = int(np.argmin(np.abs(np.log(res.lrs / res.lr_max))))
            rise = res.losses[at_max] / res.losses[: at_max + 1].min()
            i = range_test_blow_up(res)
            rows[names[key], seed] = {
                "lag (x lr)": f"{(end / start) ** (age / (num_iter - 1)):.1f}",
                "lr_max": f"{res.lr_max:.2g}",
                "raw at lr_max / its low": f"{rise:.2f}",
                "reading": _lag_reading(rise, i is not None and res.lr_max > res.lrs[i]),
            }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["optimizer", "seed"])


def sensitivity_curve(sweep: Any, key: str, chance: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``key``'s rates in ``sweep`` and its mean final validation accuracy over all of
    the sweep's seeds at each: a collapsed seed with the accuracy it reached, a diverged
    one (it has none) at ``chance``, what a guess scores.

    The curve that :func:`fashion_optim.suggest.regret` reads a suggestion from.

    Examples
    --------
    >>> rates, acc = sensitivity_curve(sweep, "adam")  # doctest: +SKIP
    """
    curve = sweep.curve(key, "val_acc")
    n = len(sweep.seeds)
    finished = n - curve["diverged"]
    mean = np.where(finished > 0, np.nan_to_num(curve["mean"]), 0.0)
    return curve["lr"], (mean * finished + chance * curve["diverged"]) / n


def _per_seed(values: Any, fmt: str) -> str:
    return ", ".join("out" if not np.isfinite(v) else format(v, fmt) for v in values)


def suggestion_scorecard(scores: Any, conventions: Sequence[str] | None = None) -> Any:
    """Per optimizer, rule and convention: the suggested rate (median over seeds on a log
    scale, :func:`~fashion_optim.plotting.log_median`), then per seed its distance from
    the chosen rate in grid steps, its regret on each curve (``"out"`` where the
    suggestion lies outside the curve's rates) and, where given, its distance from a
    one-cycle peak.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per optimizer, rule, convention and seed, with columns ``optimizer``,
        ``rule``, ``convention``, ``lr``, ``steps`` (grid steps from the chosen rate),
        ``regret, <curve>`` columns (NaN outside the curve) and, optionally, ``peak
        steps`` (grid steps from the one-cycle peak, NaN where not scored).
    conventions : sequence of str, optional
        The conventions to show (default: all, in order of appearance).

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"optimizer": "Adam", "rule": "valley", "convention":
    ...     "fastai", "lr": [1e-3, 4e-3], "steps": [0.0, 1.2],
    ...     "regret, full budget": [0.01, np.nan], "regret, first rung": [0.0, 0.0216]})
    >>> suggestion_scorecard(scores).iloc[0].tolist()
    ['0.002', '+0.0, +1.2', '0.010, out', '0.000, 0.022']
    """
    import pandas as pd

    if conventions is not None:
        scores = scores[scores["convention"].isin(conventions)]
    by = scores.groupby(["optimizer", "rule", "convention"], sort=False)
    table = {"suggested lr (median)": by["lr"].agg(log_median).map("{:.2g}".format)}
    table["grid steps from the choice"] = by["steps"].agg(lambda v: _per_seed(v, "+.1f"))
    for column in [c for c in scores.columns if c.startswith("regret, ")]:
        table[column] = by[column].agg(lambda v: _per_seed(v, ".3f"))
    if "peak steps" in scores.columns:
        table["grid steps from the peak"] = by["peak steps"].agg(
            lambda v: "" if v.isna().all() else _per_seed(v, "+.1f")
        )
    return pd.DataFrame(table)


def _moves(scores: Any, base: str, other: str) -> str:
    """Which rules switching from convention ``base`` to ``other`` moves, per optimizer."""
    wide = scores.pivot_table(
        index=["optimizer", "rule", "seed"], columns="convention", values="steps"
    )
    moved = []
    for (opt, rule), shift in (wide[other] - wide[base]).groupby(level=[0, 1], sort=False):
        s = shift[shift.abs() > 1e-9]
        if len(s):
            low, high = f"{s.min():+.2f}", f"{s.max():+.2f}"
            how = low if low == high else f"{low} to {high}"  # one value where they print equal
            moved.append(f"{rule} for {opt} on {len(s)} of {len(shift)} seeds (by {how})")
    if not moved:
        return "no rule on any seed"
    moved[0] = moved[0].replace(")", " grid steps)")
    return "; ".join(moved) + "; no other rule on any seed"


def scorecard_sentences(
    scores: Any,
    base: str,
    curve: str,
    ends: Mapping[str, tuple[float, float]] | None = None,
) -> list[str]:
    """What the scorecard of :func:`suggestion_scorecard` says, as sentences: per
    optimizer under convention ``base``, the rules by mean regret on ``curve`` (lowest
    first) with on how many seeds each lies within half a grid step of the choice; then
    what each other convention moves (in grid steps); then which replays were not exact
    (column ``exact``, see :func:`fashion_optim.suggest.replay`).

    Only a rule scored on every seed is ranked: a mean over the seeds whose suggestion
    lies inside the curve would drop the seeds where the rule left it, and flatter the
    rule. The others are listed apart, with on how many seeds they left the curve (above
    or below it, where ``ends`` gives its rates).

    Parameters
    ----------
    scores : pandas.DataFrame
        As for :func:`suggestion_scorecard`, with ``seed`` and ``exact``.
    base : str
        The convention the ranking uses.
    curve : str
        The curve of the ``regret, <curve>`` column it ranks by.
    ends : mapping of str to (float, float), optional
        Per optimizer name, the curve's lowest and highest rate.

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"optimizer": "Adam", "seed": [0, 0, 0, 0],
    ...     "rule": ["valley", "valley", "steep", "steep"], "lr": [1e-3, 1e-3, 0.1, 0.1],
    ...     "convention": ["ours", "theirs"] * 2, "steps": [0.1, 0.6, -2.0, -2.0],
    ...     "regret, first rung": [0.0, 0.01, 0.2, 0.2], "exact": True})
    >>> for line in scorecard_sentences(scores, "ours", "first rung"):
    ...     print(line)  # doctest: +NORMALIZE_WHITESPACE
    Adam (ours), mean regret on the first rung: valley 0.000 (1 of 1 seeds within
    half a grid step of the choice), steep 0.200 (0 of 1).
    Switching from ours to theirs moves valley for Adam on 1 of 1 seeds (by +0.50 grid
    steps); no other rule on any seed.
    Every replay was exact: each tool's test would have stopped within what was
    recorded.
    """
    column = f"regret, {curve}"
    sentences = []
    own = scores[scores["convention"] == base]
    for opt, card in own.groupby("optimizer", sort=False):
        by = card.groupby("rule", sort=False)
        n, scored = by.size(), by[column].count()
        full = scored[scored == n].index
        mean = by[column].mean()[full].sort_values()  # every seed scored
        within = by["steps"].agg(lambda v: int((v.abs() <= 0.5).sum()))
        parts = []
        for k, rule in enumerate(mean.index):
            seeds = " seeds within half a grid step of the choice" if k == 0 else ""
            parts.append(f"{rule} {mean[rule]:.3f} ({within[rule]} of {n[rule]}{seeds})")
        ranked = ", ".join(parts) if parts else "no rule is scored on every seed"
        sentence = f"{opt} ({base}), mean regret on the {curve}: {ranked}."
        apart = []
        for rule in [r for r in n.index if r not in full]:
            rows = card[(card["rule"] == rule) & card[column].isna()]
            where = f"{len(rows)} of {n[rule]} seeds"
            if ends is not None and opt in ends:
                low, high = ends[opt]
                above, below = int((rows["lr"] > high).sum()), int((rows["lr"] < low).sum())
                sides = [f"{above} above its top rate {high:.3g}"] if above else []
                sides += [f"{below} below its lowest {low:.3g}"] if below else []
                where += f": {', '.join(sides)}" if sides else ""
            apart.append(f"{rule} ({where})")
        if apart:
            sentence += (
                f" Not ranked, because their suggestion left the {curve}'s rates on some "
                f"seeds and a mean over the others would flatter them: {'; '.join(apart)}."
            )
        sentences.append(sentence)
    for other in dict.fromkeys(scores["convention"]):
        if other != base:
            moved = _moves(scores, base, other)
            sentences.append(f"Switching from {base} to {other} moves {moved}.")
    inexact = scores[~scores["exact"].astype(bool)]
    if inexact.empty:
        sentences.append(
            "Every replay was exact: each tool's test would have stopped within what was recorded."
        )
    else:
        which = sorted(
            {
                f"{o}, seed {s} ({c})"
                for o, s, c in inexact[["optimizer", "seed", "convention"]].itertuples(index=False)
            }
        )
        sentences.append(
            f"Not exact (that tool would have trained past the recorded stop, so its "
            f"suggestions may differ): {'; '.join(which)}."
        )
    return sentences
