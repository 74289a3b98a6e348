"""Adam's step over all the weights of each layer: the quantiles that
:class:`~fashion_optim.recorders.AdamQuantileRecorder` records, as bands against steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import ArrayLike

from .axes import label_step_axis
from .style import NEUTRAL, color_for
from .tables import mean_std

__all__ = [
    "ADAM_QUANTITIES",
    "adam_layer_quantiles",
    "adam_moments",
    "bias_correction_curves",
    "bias_correction_table",
    "position_words",
    "quantile_bands",
    "quantile_position",
    "uncorrected_step_ratio",
]

#: The two quantities the recorder summarises: record key, panel title, axis label (unit).
ADAM_QUANTITIES: dict[str, tuple[str, str]] = {
    "adapted": (
        r"Adapted step $|\hat m_t/(\sqrt{\hat v_t}+\epsilon)|$",
        "adapted step (no unit)",
    ),
    "rate": (
        r"Effective rate $\eta/(\sqrt{\hat v_t}+\epsilon)$",
        r"rate ($w^2$ per nat)",
    ),
}


def _pairs(levels: np.ndarray) -> tuple[list[tuple[int, int]], int | None]:
    """Indices of the symmetric pairs of levels (outermost first), and of the median."""
    k = len(levels)
    pairs = [(i, k - 1 - i) for i in range(k // 2)]
    asymmetric = [
        (levels[i], levels[j]) for i, j in pairs if not np.isclose(levels[i] + levels[j], 1)
    ]
    middle = k // 2 if k % 2 else None
    if asymmetric or (middle is not None and not np.isclose(levels[middle], 0.5)):
        raise ValueError(
            f"levels must be symmetric about a median (e.g. 0.05, 0.25, 0.5, 0.75, 0.95), "
            f"got {levels.tolist()}."
        )
    return pairs, middle


def quantile_bands(
    ax: Axes,
    x: ArrayLike,
    quantiles: ArrayLike,
    levels: Sequence[float],
    *,
    color: str | None = None,
    label: str | None = None,
    alpha: float = 0.22,
) -> tuple[Line2D | None, list[PolyCollection]]:
    """Draw the median of each column as a line and, between each symmetric pair of
    levels (e.g. 5-95 % and 25-75 %), a band; the bands overlap, so the inner ones
    are darker.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    x : array_like, shape (T,)
        Positions (steps).
    quantiles : array_like, shape (T, L)
        One row per position, one column per level.
    levels : sequence of float
        One per column of ``quantiles``, increasing and symmetric about 0.5; 0.5 itself
        gives the median line.
    color : str, optional
        Default: ``color_for("adam")``.
    label : str, optional
        Legend entry of the median line.
    alpha : float
        Opacity of each band.

    Returns
    -------
    median : matplotlib.lines.Line2D or None
        None when 0.5 is not a level.
    bands : list of matplotlib.collections.PolyCollection
        Outermost first.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> q = [[1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 3.0, 4.0, 5.0, 6.0]]
    >>> line, bands = quantile_bands(ax, [1, 2], q, (0.05, 0.25, 0.5, 0.75, 0.95))
    >>> line.get_ydata().tolist(), len(bands)
    ([3.0, 4.0], 2)
    """
    x_arr = np.asarray(x, dtype=np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64)
    if q.ndim != 2 or x_arr.ndim != 1 or q.shape != (len(x_arr), len(lv)):
        raise ValueError(
            f"quantiles must have shape (len(x), len(levels)) = ({len(x_arr)}, {len(lv)}), "
            f"got {q.shape}: one row per step, one column per level."
        )
    pairs, middle = _pairs(lv)
    color = color or color_for("adam")
    bands = [
        ax.fill_between(x_arr, q[:, i], q[:, j], color=color, alpha=alpha, linewidth=0)
        for i, j in pairs
    ]
    line = None
    if middle is not None:
        (line,) = ax.plot(x_arr, q[:, middle], color=color, lw=1.3, label=label)
    return line, bands


def adam_layer_quantiles(
    axes: Any,
    result: Any,
    layers: Sequence[str],
    *,
    names: Mapping[str, str] | None = None,
    color: str | None = None,
    steps_per_epoch: int | None = None,
    weight: tuple[str, ArrayLike, ArrayLike, ArrayLike] | None = None,
) -> dict[str, Any]:
    """One row per layer, one column per quantity: the quantile bands over the layer's
    weights of Adam's adapted step (left) and effective rate (right), on log axes that
    each column shares.

    Parameters
    ----------
    axes : numpy.ndarray
        Of :class:`matplotlib.axes.Axes`, ``len(layers)`` rows by 2 columns, from
        ``plt.subplots(len(layers), 2, sharex=True, sharey="col")``.
    result : fashion_optim.experiments.Result
        A run recorded with ``Record(layer_quantiles=...)``
        (:class:`~fashion_optim.recorders.AdamQuantileRecorder`), read through
        :meth:`~fashion_optim.experiments.Result.adam_quantiles`,
        :attr:`~fashion_optim.experiments.Result.adam_quantile_steps` and
        :attr:`~fashion_optim.experiments.Result.adam_quantile_levels`.
    layers : sequence of str
        Parameter names, one per row.
    names : mapping of str to str, optional
        A readable name per layer (e.g. ``"conv1\\n150 weights"``), written right of
        its row; by default the parameter's name.
    color : str, optional
        Default: ``color_for("adam")``.
    steps_per_epoch : int, optional
        Adds an epoch axis above the top row.
    weight : tuple, optional
        ``(layer, steps, adapted, rate)``: one weight's own adapted step (absolute
        value) and effective rate at each step, drawn in black over its layer's bands.

    Returns
    -------
    dict
        ``"bands"``: ``(layer, quantity)`` to what :func:`quantile_bands` returned;
        ``"weight"``: the weight's two lines (empty without ``weight``).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from fashion_optim import experiments
    >>> result = experiments.run(experiments.NAMED["adam"])  # doctest: +SKIP
    >>> fig, axes = plt.subplots(1, 2, squeeze=False)
    >>> out = adam_layer_quantiles(axes, result, ["features.0.weight"])  # doctest: +SKIP
    >>> sorted(out["bands"])  # doctest: +SKIP
    [('features.0.weight', 'adapted'), ('features.0.weight', 'rate')]
    """
    grid = np.asarray(axes, dtype=object)
    if grid.size != 2 * len(layers) or grid.ndim > 2 or (grid.ndim == 2 and grid.shape[1] != 2):
        raise ValueError(
            f"axes must be {len(layers)} rows (one per layer) by 2 columns, got "
            f"{grid.shape}; use plt.subplots(len(layers), 2)."
        )
    grid = grid.reshape(len(layers), 2)
    # every layer read first: a missing record raises (naming the Record option to set)
    # before anything is drawn
    values = {
        (layer, kind): result.adam_quantiles(kind, layer)
        for layer in layers
        for kind in ADAM_QUANTITIES
    }
    steps, levels = result.adam_quantile_steps, result.adam_quantile_levels
    out: dict[str, Any] = {"bands": {}, "weight": []}
    for row, layer in enumerate(layers):
        for col, (kind, (title, unit)) in enumerate(ADAM_QUANTITIES.items()):
            ax = grid[row, col]
            out["bands"][layer, kind] = quantile_bands(
                ax, steps, values[layer, kind], levels, color=color
            )
            if weight is not None and weight[0] == layer:
                trace = np.abs(np.asarray(weight[2 + col], dtype=np.float64))
                out["weight"] += ax.plot(weight[1], trace, color="black", lw=0.5, alpha=0.7)
            ax.set_yscale("log")
            ax.set_ylabel(unit, fontsize=9)  # five rows: a full-size label overlaps the next
            if row == 0:
                ax.set_title(title)
        # the layer's name as a row label, right of the row: inside, it would hide bands
        grid[row, 1].text(
            1.04, 0.5, (names or {}).get(layer, layer), transform=grid[row, 1].transAxes,
            rotation=270, va="center", ha="left", fontsize=10, multialignment="center",
        )  # fmt: skip
    for col in range(2):
        if steps_per_epoch:
            label_step_axis(grid[0, col], steps_per_epoch)  # epochs above the top row
        for row in range(len(layers)):
            grid[row, col].set_xlabel("")
        label_step_axis(grid[-1, col])
    return out


#: The unit of one weight's gradient, for the axes that draw it.
GRAD_LABEL = r"$\partial L/\partial w$ (nat per unit $w$)"


def _smoothing_panel(ax: Axes, steps, g, m, m_hat, color, n_zoom: int) -> None:
    ax.plot(steps, g, color=NEUTRAL, lw=0.7)
    ax.plot(steps, m_hat, color=color)
    ax.axhline(0.0, color="black", lw=0.6)
    top = 1.05 * np.abs(g).max()
    ax.set(ylim=(-top, 2.2 * top), ylabel=GRAD_LABEL)  # room above the data for the inset
    ax.set_title(r"EWMA for smoothing ($\beta_1$)", pad=44)  # above the epoch axis
    # the inset leaves out the raw gradients, which would flatten the EWMAs' difference
    inset = ax.inset_axes([0.5, 0.55, 0.48, 0.32])
    for values, style in ((m, "--o"), (m_hat, "-o")):
        inset.plot(steps[:n_zoom], values[:n_zoom], style, ms=2.5, color=color, lw=1.4)
    inset.axhline(0.0, color="black", lw=0.6)
    zoom_top = 1.15 * max(np.abs(m_hat[:n_zoom]).max(), np.abs(m[:n_zoom]).max())
    inset.set_ylim(-zoom_top, zoom_top)
    inset.set_title(f"zoom, EWMAs only: steps 1 to {n_zoom}", fontsize=9)
    inset.tick_params(labelsize=8)


def _adapted_panel(ax: Axes, steps, g, adapted, color) -> None:
    twin = ax.twinx()
    twin.plot(steps, g, color=NEUTRAL, lw=0.7)
    twin.spines["right"].set_visible(True)
    twin.set_ylabel("raw " + GRAD_LABEL, color="0.45")
    twin.grid(False)
    ax.plot(steps, adapted, color=color, lw=0.9, alpha=0.8)  # the raw one shows through
    ax.set_zorder(twin.get_zorder() + 1)  # the adapted gradient in front of the raw one
    ax.patch.set_visible(False)
    for axis, values in ((ax, adapted), (twin, g)):  # symmetric: the zeros line up
        lim = 1.1 * np.abs(values).max()
        axis.set_ylim(-lim, lim)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set(title="Adapted gradient", ylabel=r"$\hat m_t/(\sqrt{\hat v_t}+\epsilon)$ (no unit)")


def adam_moments(
    g: ArrayLike,
    betas: tuple[float, float],
    eps: float,
    *,
    steps_per_epoch: int | None = None,
    n_zoom: int = 20,
    color: str | None = None,
) -> Figure:
    r"""Adam's three quantities for one weight, from its gradients ``g`` alone.

    Top: the raw gradient and its bias-corrected EWMA :math:`\hat m_t` with
    :math:`\beta_1`, with an inset on the first ``n_zoom`` steps of :math:`m_t` (dashed)
    and :math:`\hat m_t`. Middle: the scaling :math:`1/(\sqrt{\hat v_t}+\epsilon)`,
    log axis, and the uncorrected :math:`1/(\sqrt{v_t}+\epsilon)` (dashed). Bottom: the
    adapted gradient :math:`\hat m_t/(\sqrt{\hat v_t}+\epsilon)` (left axis) in front of
    the raw gradient (grey, right axis).

    Parameters
    ----------
    g : array_like
        The weight's gradient at each step, ``[T]``.
    betas : (float, float)
        Adam's :math:`\beta_1, \beta_2`.
    eps : float
        Adam's :math:`\epsilon`.
    steps_per_epoch : int, optional
        Adds an epoch axis above the top panel.
    n_zoom : int
        Steps in the inset.
    color : str, optional
        Default: ``color_for("adam")``.

    Examples
    --------
    >>> g = np.sin(np.arange(1, 301) / 20) * 1e-3
    >>> len(adam_moments(g, (0.9, 0.999), 1e-8).axes)  # three panels, the last one's twin
    4
    """
    import matplotlib.pyplot as plt  # as the other figure helpers: pyplot on demand

    from .. import ewma

    (beta1, beta2), g = betas, np.asarray(g, dtype=np.float64)
    color = color or color_for("adam")
    steps = np.arange(1, len(g) + 1)
    m, v = ewma.ewma(g, beta1), ewma.ewma(g**2, beta2)
    m_hat = ewma.bias_corrected(g, beta1)
    scaling = 1.0 / (np.sqrt(ewma.bias_corrected(g**2, beta2)) + eps)
    fig, (ax_m, ax_v, ax_a) = plt.subplots(
        3, 1, figsize=(7.5, 9.4), sharex=True, height_ratios=(1.35, 1, 1), layout="constrained"
    )
    _smoothing_panel(ax_m, steps, g, m, m_hat, color, n_zoom)
    ax_v.plot(steps, scaling, color=color)
    ax_v.plot(steps, 1.0 / (np.sqrt(v) + eps), "--", color=color, lw=1.3)
    ax_v.set(yscale="log", title=r"EWMA for scaling ($\beta_2$)")
    ax_v.set_ylabel(r"$1/(\sqrt{\hat v_t}+\epsilon)$ ($w$ per nat)")
    _adapted_panel(ax_a, steps, g, m_hat * scaling, color)
    label_step_axis(ax_m, steps_per_epoch)
    ax_m.set_xlabel("")
    label_step_axis(ax_a)
    key = [
        Line2D([], [], color=NEUTRAL, label="raw gradient"),
        Line2D([], [], color=color, label="bias-corrected"),
        Line2D([], [], color=color, ls="--", label="uncorrected"),
    ]
    fig.legend(handles=key, loc="outside lower center", ncols=3)
    return fig


def uncorrected_step_ratio(steps: ArrayLike, betas: tuple[float, float]) -> np.ndarray:
    r"""How many times longer Adam's step is without its bias corrections than with them,
    at step :math:`t` (from 1), for a constant gradient and :math:`\epsilon` aside:

    .. math::

        r_t = \frac{1-\beta_1^t}{\sqrt{1-\beta_2^t}}.

    Without correction the step is :math:`m_t/\sqrt{v_t}`; with it,
    :math:`\hat m_t/\sqrt{\hat v_t} = r_t^{-1}\, m_t/\sqrt{v_t}`. Its mean over a run's
    steps is how much farther the uncorrected variant moves on a constant gradient.

    Examples
    --------
    >>> uncorrected_step_ratio([1, 12, 391], (0.9, 0.999)).round(2).tolist()
    [3.16, 6.57, 1.76]
    """
    t = np.asarray(steps, dtype=np.float64)
    beta1, beta2 = betas
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
        raise ValueError(f"betas must each be in [0, 1), got {betas!r}.")
    if t.size and (np.any(t < 1) or np.any(t != np.round(t))):
        raise ValueError(f"steps count from 1 (whole numbers), got {t.min()!r} as smallest.")
    return (1 - beta1**t) / np.sqrt(1 - beta2**t)


#: The keys of the two variants in the ablation's figure, by ``bias_correction``.
_VARIANTS = {True: "adam", False: "uncorrected adam"}
_WORDS = {True: "with correction", False: "without correction"}
_METRIC_WORDS = {"test_acc": "test accuracy", "val_acc": "validation accuracy"}


def _ablation_sweep(outcomes: Mapping[tuple[float, bool], Any]) -> Any:
    """The ablation as a :class:`~fashion_optim.experiments.Sweep` with two keys."""
    from ..experiments import Sweep  # plotting never trains; this only reads

    missing = [
        (lr, not c) for lr, c in outcomes if (lr, not c) not in outcomes
    ]  # fmt: skip
    if not outcomes or missing:
        raise ValueError(
            f"outcomes must hold both variants at every rate, missing {missing or 'all'}: "
            "pass what run_outcomes(bias_correction_specs(...)) returned."
        )
    points: dict[str, dict[float, Any]] = {key: {} for key in _VARIANTS.values()}
    seeds: set[int] = set()
    for (lr, corrected), point in outcomes.items():
        points[_VARIANTS[corrected]][float(lr)] = point
        seeds |= {r.seed for r in point.finished} | {s for s, _ in point.diverged}
    return Sweep(points, tuple(sorted(seeds)))


def bias_correction_curves(
    ax: Axes, outcomes: Mapping[tuple[float, bool], Any], factor: float
) -> dict[bool, float]:
    """Adam with (solid) and without (dashed colour) its bias corrections, swept over the
    same rates: final validation accuracy against the learning rate, as
    :func:`~fashion_optim.plotting.sweep_curves` draws a sweep (failures marked, each
    variant's choice on validation ringed), and the uncorrected curve again at its rates
    times ``factor`` (thin, dotted): where it would sit were its steps ``factor`` times
    the corrected ones.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    outcomes : mapping
        ``(rate, corrected)`` to :class:`~fashion_optim.experiments.SeedOutcomes`, as
        :func:`~fashion_optim.experiments.run_outcomes` returns for
        :func:`~fashion_optim.experiments.bias_correction_specs`.
    factor : float
        The uncorrected step over the corrected one, e.g. the mean of
        :func:`uncorrected_step_ratio` over the run.

    Returns
    -------
    dict
        The rate each variant chooses on validation, by ``corrected`` (a variant whose
        every rate failed is left out).
    """
    from .sweeps import sweep_curves

    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"factor must be a positive number, got {factor!r}.")
    sweep = _ablation_sweep(outcomes)
    labels = {key: _WORDS[c] for c, key in _VARIANTS.items()}
    chosen = sweep_curves(ax, sweep, list(_VARIANTS.values()), "val_acc", labels=labels)
    curve = sweep.curve(_VARIANTS[False])
    ax.plot(
        curve["lr"] * factor, curve["mean"], ":", color=color_for(_VARIANTS[False]), lw=1.2,
        label=f"without correction, at lr × {factor:.2f}",
    )  # fmt: skip
    return {c: chosen[key] for c, key in _VARIANTS.items() if key in chosen}


def bias_correction_table(
    outcomes: Mapping[tuple[float, bool], Any],
    n_steps: int,
    betas: tuple[float, float],
    metric: str = "test_acc",
) -> tuple[Any, list[str]]:
    """Adam with and without its bias corrections, swept over the same rates, compared
    twice, seed by seed on ``metric`` (the rates chosen on validation):

    - *best against best*: each variant at its own best rate on validation;
    - *at matched early steps*: the corrected variant at its best rate, the uncorrected
      one at the rate of the grid nearest (on the log axis) to that rate divided by
      :math:`\bar r`, the mean of :func:`uncorrected_step_ratio` over the ``n_steps``
      steps: there its steps are, on a constant gradient, as long as the corrected
      ones on average.

    Differences are without − with, paired by seed over the seeds both finished, with
    Holm's correction for the two (:func:`fashion_optim.stats.paired_tests`).

    Parameters
    ----------
    outcomes : mapping
        As for :func:`bias_correction_curves`.
    n_steps : int
        The optimizer steps of each run.
    betas : (float, float)
        Adam's :math:`\beta_1, \beta_2`.
    metric : str
        What is compared: ``"test_acc"`` (the reported metric) or a history field.

    Returns
    -------
    table : pandas.DataFrame
        One row per comparison: the two rates, each variant's mean ± std of ``metric``
        and its validation accuracy, the paired difference, Holm's p, resolved or not.
    sentences : list of str
        What the numbers show: the step factor, how far the best rate moved, and the two
        comparisons (a difference is claimed only where the test resolves it).
    """
    import pandas as pd

    from .. import stats

    if not (isinstance(n_steps, int | np.integer) and n_steps >= 1):
        raise ValueError(f"n_steps must be a whole number >= 1, got {n_steps!r}.")
    sweep = _ablation_sweep(outcomes)
    ratio = uncorrected_step_ratio(np.arange(1, n_steps + 1), betas)
    factor = float(ratio.mean())
    with_, without = (_VARIANTS[c] for c in (True, False))
    try:
        best = {c: sweep.best_rate(_VARIANTS[c]) for c in (True, False)}
    except ValueError as exc:
        raise ValueError(f"no rate of one variant finished on every seed: {exc}") from None
    grid = sweep.rates(without)
    matched = float(grid[np.argmin(np.abs(np.log(grid) - np.log(best[True] / factor)))])
    pairs = {"best against best": (best[False], best[True])}
    lost = sweep.points[without][matched].results is None  # every seed diverged there
    if not lost:
        pairs["at matched early steps"] = (matched, best[True])
    values = {
        name: stats.paired_by_seed_values(
            sweep.points[without][off].results, sweep.points[with_][on].results, metric
        )
        for name, (off, on) in pairs.items()
    }
    tests = stats.paired_tests(values)
    rows, words = {}, _METRIC_WORDS.get(metric, metric)
    for name, (off, on) in pairs.items():
        res_off, res_on = sweep.points[without][off].results, sweep.points[with_][on].results
        test = tests[name]
        rows[name] = {
            "rate with": f"{on:g}",
            "rate without": f"{off:g}",
            "val. acc. with": mean_std(res_on.final("val_acc")),
            "val. acc. without": mean_std(res_off.final("val_acc")),
            f"{words} with": mean_std(res_on.per_seed(metric)),
            f"{words} without": mean_std(res_off.per_seed(metric)),
            "without − with": str(test),
            "Holm p": "–" if np.isnan(test.pvalue_holm) else f"{test.pvalue_holm:.3g}",
            "resolved": "yes" if test.resolved else "no",
            "failed without": sweep.points[without][off].failure_note() or "none",
        }
    frame = pd.DataFrame.from_dict(rows, orient="index").rename_axis("comparison")
    b1, b2 = betas
    sentences = [
        f"Over the {n_steps} steps of each run, 1 − β₂^t grows to only "
        f"{1 - b2**n_steps:.2f} (at t = {n_steps}; 1 − β₁^t to "
        f"{1 - b1**n_steps:.2f}): v_t is still that fraction of its corrected value at "
        "the end, so a run this short is where the correction matters most. The "
        f"uncorrected step is r_t = {ratio[0]:.2f} times "
        f"the corrected one at t = 1, {ratio.max():.2f} at its peak (t = "
        f"{int(ratio.argmax()) + 1}), {ratio[-1]:.2f} at the last step, and "
        f"{factor:.2f} on average: on a constant gradient it moves {factor:.2f} times "
        "as far."
    ]
    moved = best[True] / best[False]
    how = (
        f"moves down by a factor {moved:.3g}"
        if moved > 1
        else "does not move"
        if moved == 1
        else f"moves up by a factor {1 / moved:.3g}"
    )
    step = ""
    if len(grid) > 1:  # both in the grid's steps (a factor sqrt(10) on Adam's)
        unit = float(np.log(grid[1] / grid[0]))
        step = (
            f" ({abs(np.log(moved)) / unit:.0f} of the grid's steps of "
            f"{np.exp(unit):.3g}; the early steps' factor {factor:.2f} is "
            f"{np.log(factor) / unit:.1f} of them)"
        )
    sentences.append(
        f"On validation, the corrected variant is best at lr {best[True]:g}, the "
        f"uncorrected one at {best[False]:g}: without correction the best rate "
        f"{how}{step}."
    )
    sentences.append(_shift_sentence(sweep, factor))
    if lost:
        sentences.append(
            f"At matched early steps, the grid's rate nearest {best[True]:g} / {factor:.2f} "
            f"is {matched:g}, where every seed of the uncorrected variant diverged."
        )
    for name, (off, on) in pairs.items():
        test, n = tests[name], tests[name].difference.n
        where = (
            f"each at its own best rate ({off:g} without, {on:g} with)"
            if name == "best against best"
            else f"at matched early steps ({off:g} without, the grid's rate nearest "
            f"{on:g} / {factor:.2f} = {on / factor:.3g}, against {on:g} with)"
        )
        if test.resolved:
            verdict = (
                f"{'lower' if test.difference.mean < 0 else 'higher'} without correction, "
                f"{test} over {n} seeds (resolved after Holm)"
            )
        else:
            verdict = f"{test} over {n} seeds: the seeds do not tell the variants apart"
        if note := sweep.points[without][off].failure_note():
            verdict += f" (without correction, {note})"
        sentences.append(f"{words[0].upper()}{words[1:]} {where}, without − with: {verdict}.")
    return frame, [s for s in sentences if s]


def _shift_sentence(sweep: Any, factor: float) -> str:
    """How close the uncorrected curve comes to the corrected one once its rates are
    multiplied by ``factor`` (interpolated on the log-rate axis), against unmoved; ``""``
    where fewer than two rates can be compared."""
    curves = {}
    for c, key in _VARIANTS.items():
        ok = [lr for lr, p in sorted(sweep.points[key].items()) if p.complete]
        acc = [sweep.points[key][lr].results.final("val_acc")[0] for lr in ok]
        curves[c] = (np.log(ok), np.array(acc))
    (on_x, on_acc), (off_x, off_acc) = curves[True], curves[False]
    if len(off_x) < 2:
        return ""
    gaps = {}
    for shift in (1.0, factor):
        x = on_x - np.log(shift)  # the uncorrected rate whose steps match each corrected one
        inside = (x >= off_x.min() - 1e-9) & (x <= off_x.max() + 1e-9)
        if inside.sum() < 2:
            return ""
        moved = np.interp(x[inside], off_x, off_acc)
        gaps[shift] = (np.abs(moved - on_acc[inside]).max(), int(inside.sum()))
    (plain, n_plain), (shifted, n_shifted) = gaps[1.0], gaps[factor]
    return (
        f"Moved right by r̄ = {factor:.2f} (its rates times r̄, interpolated on the log "
        "axis), the uncorrected curve's mean validation accuracy lies within "
        f"{shifted:.4f} of the corrected one at the {n_shifted} corrected rates it spans "
        f"where no seed failed, against {plain:.4f} unmoved ({n_plain} rates)."
    )


def quantile_position(
    value: float, levels: Sequence[float], quantiles: Sequence[float]
) -> tuple[float | None, float | None]:
    """Between which two recorded levels ``value`` lies: the highest level whose
    quantile is at most ``value`` and the lowest whose quantile is above it (None below
    the first or above the last).

    Examples
    --------
    >>> quantile_position(3.5, (0.05, 0.25, 0.5, 0.75, 0.95), (1, 2, 3, 4, 5))
    (0.5, 0.75)
    >>> quantile_position(0.1, (0.05, 0.95), (1, 5))
    (None, 0.05)
    """
    lv, q = np.asarray(levels, dtype=np.float64), np.asarray(quantiles, dtype=np.float64)
    if lv.shape != q.shape or lv.ndim != 1 or not np.isfinite(value):
        raise ValueError(
            f"one quantile per level and a finite value, got {len(lv)} levels, "
            f"{q.size} quantiles and value {value!r}."
        )
    i = int(np.searchsorted(q, value, side="right"))  # quantiles are non-decreasing
    return (float(lv[i - 1]) if i else None, float(lv[i]) if i < len(lv) else None)


def position_words(lo: float | None, hi: float | None) -> str:
    """Words for what :func:`quantile_position` returned.

    Examples
    --------
    >>> position_words(0.25, 0.5), position_words(None, 0.05), position_words(0.95, None)
    ('between the 25% and the 50% quantiles', 'below the 5% quantile', 'above the 95% quantile')
    """
    if lo is None and hi is None:
        raise ValueError("a position needs at least one level; got (None, None).")
    if lo is None or hi is None:
        return f"below the {hi:.0%} quantile" if lo is None else f"above the {lo:.0%} quantile"
    return f"between the {lo:.0%} and the {hi:.0%} quantiles"
