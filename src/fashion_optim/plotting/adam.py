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

from .axes import label_step_axis, plain_log_ticks
from .style import NEUTRAL, color_for
from .tables import mean_std

__all__ = [
    "ADAM_QUANTITIES",
    "adam_layer_quantiles",
    "adam_moments",
    "bias_correction_losses",
    "bias_correction_table",
    "position_words",
    "quantile_bands",
    "quantile_position",
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
    records: Mapping[str, np.ndarray],
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
    records : mapping
        A run's records with the recorder's ``"adam_q/..."`` arrays
        (:attr:`fashion_optim.experiments.Result.records`).
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
    >>> rec = {"adam_q/steps": np.array([1, 2]), "adam_q/levels": np.array([0.25, 0.5, 0.75]),
    ...        "adam_q/adapted/w": np.ones((2, 3)), "adam_q/rate/w": np.ones((2, 3))}
    >>> fig, axes = plt.subplots(1, 2, squeeze=False)
    >>> sorted(adam_layer_quantiles(axes, rec, ["w"])["bands"])
    [('w', 'adapted'), ('w', 'rate')]
    """
    grid = np.asarray(axes, dtype=object)
    if grid.size != 2 * len(layers) or grid.ndim > 2 or (grid.ndim == 2 and grid.shape[1] != 2):
        raise ValueError(
            f"axes must be {len(layers)} rows (one per layer) by 2 columns, got "
            f"{grid.shape}; use plt.subplots(len(layers), 2)."
        )
    grid = grid.reshape(len(layers), 2)
    missing = [
        f"adam_q/{kind}/{layer}"
        for layer in layers
        for kind in ADAM_QUANTITIES
        if f"adam_q/{kind}/{layer}" not in records
    ]
    if missing or "adam_q/steps" not in records:
        raise KeyError(
            f"the records have no {missing or ['adam_q/steps']}; record the run with "
            "Record(layer_quantiles=...) (AdamQuantileRecorder)."
        )
    steps, levels = records["adam_q/steps"], records["adam_q/levels"]
    out: dict[str, Any] = {"bands": {}, "weight": []}
    for row, layer in enumerate(layers):
        for col, (kind, (title, unit)) in enumerate(ADAM_QUANTITIES.items()):
            ax = grid[row, col]
            values = records[f"adam_q/{kind}/{layer}"]
            out["bands"][layer, kind] = quantile_bands(ax, steps, values, levels, color=color)
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


def bias_correction_losses(
    outcomes: Mapping[tuple[float, bool], Any],
    rates: Sequence[float],
    *,
    chosen: float | None = None,
    n_first: int = 100,
) -> tuple[Figure, dict[tuple[float, bool], np.ndarray]]:
    """One panel per learning rate: the loss of each of the first ``n_first``
    mini-batches, mean over the seeds that finished, of Adam with its bias corrections
    (solid) and without (dashed); the legend counts the seeds behind each line.

    Parameters
    ----------
    outcomes : mapping
        ``(rate, corrected)`` to the runs over seeds
        (:class:`~fashion_optim.experiments.SeedOutcomes`: ``finished`` and
        ``diverged``), as :func:`~fashion_optim.experiments.run_outcomes` returns for
        :func:`~fashion_optim.experiments.bias_correction_specs`.
    rates : sequence of float
        One panel each.
    chosen : float, optional
        The rate the sweep chose, marked in its panel's title.
    n_first : int
        Mini-batches drawn.

    Returns
    -------
    figure : matplotlib.figure.Figure
    early : dict
        The mean curves drawn, by ``(rate, corrected)`` (none for a variant whose every
        seed diverged).
    """
    import matplotlib.pyplot as plt

    look = {True: ("-", "adam"), False: ("--", "uncorrected adam")}  # style, colour's name
    fig, axes = plt.subplots(1, len(rates), figsize=(9.0, 4.0), sharey=True, squeeze=False)
    fig.set_layout_engine("constrained")
    early: dict[tuple[float, bool], np.ndarray] = {}
    for ax, lr in zip(axes[0], rates, strict=True):
        for corrected, (ls, name) in look.items():
            outcome = outcomes[lr, corrected]
            n_seeds = len(outcome.finished) + len(outcome.diverged)
            if done := outcome.finished:
                curve = np.mean([r.history.batch_loss[:n_first] for r in done], axis=0)
                early[lr, corrected] = curve
                which = "with" if corrected else "without"
                label = f"{which} correction ({len(done)} of {n_seeds} seeds)"
                x = range(1, len(curve) + 1)
                ax.plot(x, curve, ls, color=color_for(name), label=label)
        ax.set(yscale="log", title=f"lr {lr:g}{' (chosen)' if lr == chosen else ''}")
        plain_log_ticks(ax)
        label_step_axis(ax)
        ax.legend(loc="upper right")
    axes[0, 0].set_ylabel("training loss per mini-batch (nat)")
    return fig, early


def bias_correction_table(
    outcomes: Mapping[tuple[float, bool], Any],
    rates: Sequence[float],
    early: Mapping[tuple[float, bool], np.ndarray],
    n_first: int,
) -> tuple[Any, list[str]]:
    """Adam with and without its bias corrections, per learning rate: the final
    validation accuracy over the seeds that finished, the difference without − with
    paired by seed (:func:`fashion_optim.stats.paired_difference`, 95 % t-interval) over
    the seeds that finished both, and a sentence per rate that says what the numbers
    show (the early loss, and whether the interval excludes zero).

    Parameters
    ----------
    outcomes : mapping
        As for :func:`bias_correction_losses`.
    rates : sequence of float
    early : mapping
        The mean early losses :func:`bias_correction_losses` returned.
    n_first : int
        The mini-batches they cover.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by (learning rate, correction).
    sentences : list of str
    """
    import pandas as pd

    from .. import stats

    final = {k: {r.seed: r.history.val_acc[-1] for r in p.finished} for k, p in outcomes.items()}
    table, sentences = {}, []
    for lr in rates:
        on, off = final[lr, True], final[lr, False]
        both = [s for s in on if s in off]
        d = stats.paired_difference([off[s] for s in both], [on[s] for s in both]) if both else None
        for key, v in (("with", list(on.values())), ("without", list(off.values()))):
            shown = mean_std(v) if len(v) > 1 else f"{v[0]:.4f}" if v else "–"
            table[f"{lr:g}", key] = {"seeds finished": len(v), "val. accuracy": shown}
        paired = "–" if d is None else str(d) if d.n > 1 else f"{d.mean:+.4f}"
        table[f"{lr:g}", "without"]["without − with"] = paired
        a, b = (early[lr, c].mean() if (lr, c) in early else np.nan for c in (False, True))
        loss = (
            f"{a:.2f} nat without correction, {'above' if a > b else 'not above'} {b:.2f} with it"
        )
        loss = loss if a + b > 0 else "cannot be compared (every seed diverged one way)"
        text = f"lr {lr:g}: mean loss over the first {n_first} steps {loss}. Final validation "
        if d is None:
            text += "accuracy: no seed finished both ways."
        else:
            text += f"accuracy {abs(d.mean):.4f} {'lower' if d.mean < 0 else 'higher'} without it"
            zero = "excludes zero" if d.excludes_zero else f"includes zero: {d.n} seeds cannot tell"
            text += f" over {d.n} seeds; the interval {d} {zero}." if d.n > 1 else ", on one seed."
        sentences.append(text)
    frame = pd.DataFrame.from_dict(table, orient="index").fillna("")
    return frame.rename_axis(["learning rate", "correction"]), sentences


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
