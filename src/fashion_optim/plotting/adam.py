"""Adam's step over all the weights of each layer: the quantiles that
:class:`~fashion_optim.recorders.AdamQuantileRecorder` records, as bands against steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from numpy.typing import ArrayLike

from .axes import label_step_axis
from .style import color_for

__all__ = [
    "ADAM_QUANTITIES",
    "adam_layer_quantiles",
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
