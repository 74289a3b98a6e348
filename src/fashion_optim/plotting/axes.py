"""Small helpers on one axes: bands over seeds, smoothed curves, axis labels with units."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter
from numpy.typing import ArrayLike, NDArray

from ..ewma import bias_corrected
from .style import color_for


def band(
    ax: Axes,
    x: ArrayLike,
    runs: ArrayLike,
    label: str | None = None,
    color: str | None = None,
    *,
    alpha: float = 0.2,
    **line_kwargs: Any,
) -> tuple[Line2D, PolyCollection]:
    """Draw the mean over seeds as a line and a ±1 standard deviation band around it.

    The standard deviation is the sample one (``ddof=1``), as in
    :class:`fashion_optim.experiments.SeedResults`; with a single run the band has zero
    width.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    x : array_like, shape (T,)
        Positions along the horizontal axis (steps, epochs, learning rates...).
    runs : array_like, shape (seeds, T)
        One row per seed.
    label : str, optional
        Legend entry of the line.
    color : str, optional
        Colour of the line and the band; default: ``color_for(label)`` when a label is
        given, else the axes' next colour.
    alpha : float
        Opacity of the band.
    **line_kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` (``linestyle``, ``marker``...).

    Returns
    -------
    line : matplotlib.lines.Line2D
        The mean.
    fill : matplotlib.collections.PolyCollection
        The band from mean - std to mean + std.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> line, fill = band(ax, [1, 2, 3], [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], label="sgd")
    >>> line.get_ydata().tolist()
    [2.0, 2.0, 2.0]
    """
    x_arr = np.asarray(x, dtype=np.float64)
    runs_arr = np.asarray(runs, dtype=np.float64)
    if runs_arr.ndim == 1:
        runs_arr = runs_arr[None, :]
    if runs_arr.ndim != 2 or x_arr.ndim != 1 or runs_arr.shape[1] != x_arr.shape[0]:
        raise ValueError(
            f"runs must have shape (seeds, T) with T = len(x) = {x_arr.shape}, got runs of "
            f"shape {runs_arr.shape}. Stack one row per seed, e.g. SeedResults.stack(name)."
        )
    mean = runs_arr.mean(axis=0)
    std = runs_arr.std(axis=0, ddof=1) if runs_arr.shape[0] > 1 else np.zeros_like(mean)
    if color is None and label is not None:
        color = color_for(label)
    (line,) = ax.plot(x_arr, mean, label=label, color=color, **line_kwargs)
    fill = ax.fill_between(
        x_arr, mean - std, mean + std, color=line.get_color(), alpha=alpha, linewidth=0
    )
    return line, fill


def smooth_curve(values: ArrayLike, beta: float = 0.9) -> NDArray[np.float64]:
    """Smooth a noisy curve with a bias-corrected EWMA along its *last* axis.

    A thin wrapper of :func:`fashion_optim.ewma.bias_corrected` for curves laid out as
    in :func:`band`: ``[T]`` or ``[seeds, T]``. Being bias-corrected, the first values
    are not pulled towards zero; like every trailing average it lags the raw curve by
    about ``beta / (1 - beta)`` steps (:func:`fashion_optim.ewma.ewma_age`).

    Parameters
    ----------
    values : array_like, shape (T,) or (..., T)
        The curve(s), time along the last axis.
    beta : float
        Weight of the past, in [0, 1).

    Returns
    -------
    numpy.ndarray
        Same shape as ``values``, ``float64``.

    Examples
    --------
    >>> smooth_curve([2.0, 2.0, 2.0], beta=0.9)
    array([2., 2., 2.])
    >>> smooth_curve([[0.0, 2.0], [4.0, 4.0]], beta=0.5).tolist()
    [[0.0, 1.3333333333333333], [4.0, 4.0]]
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        raise ValueError("values must be a curve of shape (T,) or (..., T), got a scalar.")
    return np.moveaxis(bias_corrected(np.moveaxis(arr, -1, 0), beta), 0, -1)


def label_lr_axis(ax: Axes, axis: str = "x", *, log: bool = True) -> None:
    """Label an axis as the learning rate, on a log scale by default.

    Learning rates span decades (a range test goes from 1e-6 to 1), so equal ratios
    should take equal room.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    axis : {"x", "y"}
    log : bool
        Use a log scale.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> label_lr_axis(ax)
    >>> ax.get_xscale(), ax.get_xlabel()
    ('log', 'learning rate (log scale)')
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}.")
    label = "learning rate (log scale)" if log else "learning rate"
    if axis == "x":
        ax.set_xlabel(label)
        ax.set_xscale("log" if log else "linear")
    else:
        ax.set_ylabel(label)
        ax.set_yscale("log" if log else "linear")


def plain_log_ticks(ax: Axes, axis: str = "y") -> None:
    """Label a log axis in plain numbers at 1, 2, 3 and 5 times each power of ten.

    Losses span about one decade: ``0.3, 0.5, 1, 2`` reads better there than matplotlib's
    default ``3 x 10^-1, 10^0``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    axis : {"x", "y"}

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> ax.set_yscale("log")
    >>> plain_log_ticks(ax)
    >>> [ax.yaxis.get_minor_formatter()(v) for v in (0.3, 0.4, 0.5, 2.0)]
    ['0.3', '', '0.5', '2']
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}.")
    fmt = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "1235" else "")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(fmt)
    target.set_minor_formatter(fmt)


def label_step_axis(ax: Axes, steps_per_epoch: int | None = None) -> Axes | None:
    """Label the x axis in optimizer steps, with epochs on a secondary top axis.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        An axes whose x data are optimizer steps (mini-batches), counted from 1.
    steps_per_epoch : int, optional
        When given, add a top axis in epochs (step / steps_per_epoch).

    Returns
    -------
    matplotlib.axes.Axes or None
        The secondary epoch axis, when one was added.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> top = label_step_axis(ax, steps_per_epoch=47)
    >>> ax.get_xlabel(), top.get_xlabel()
    ('step (mini-batch)', 'epoch')
    """
    ax.set_xlabel("step (mini-batch)")
    if steps_per_epoch is None:
        return None
    if not (isinstance(steps_per_epoch, int | np.integer) and steps_per_epoch >= 1):
        raise ValueError(f"steps_per_epoch must be an integer >= 1, got {steps_per_epoch!r}.")
    n = float(steps_per_epoch)
    top = ax.secondary_xaxis("top", functions=(lambda s: s / n, lambda e: e * n))
    top.set_xlabel("epoch")
    return top


def legend_below(ax: Axes, ncols: int, handles: Any = None, **kwargs: Any) -> Any:
    """The legend of ``ax``'s lines (or of ``handles``), for the whole figure, below its
    axes (the figure needs ``layout="constrained"``).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(layout="constrained")
    >>> _ = ax.plot([0, 1], label="sgd")
    >>> [t.get_text() for t in legend_below(ax, ncols=1).get_texts()]
    ['sgd']
    """
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    figure = ax.get_figure()
    return figure.legend(handles=handles, loc="outside lower center", ncols=ncols, **kwargs)


def smoothed_losses(
    ax: Axes,
    runs: Any,
    beta: float,
    *,
    first: int | None = None,
    labels: Any = None,
    dashed: Any = (),
) -> dict[str, np.ndarray]:
    """Each run's mini-batch loss, smoothed (:func:`smooth_curve`) and averaged over its
    seeds, against the step; log loss axis.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    runs : mapping of str to fashion_optim.experiments.SeedResults
        Keyed by a :data:`~fashion_optim.plotting.COLORS` name, which sets the colour.
    beta : float
        The smoothing's weight of the past.
    first : int, optional
        Only the first mini-batches.
    labels : mapping, optional
        A legend label per key (default: the key).
    dashed : sequence of str
        Keys drawn dashed.

    Returns
    -------
    dict
        The curves drawn, by key.
    """
    curves = {}
    for key, result in runs.items():
        losses = result.stack("batch_loss")[:, :first]
        curves[key] = smooth_curve(losses, beta).mean(axis=0)
        steps = np.arange(1, curves[key].size + 1)
        ls = "--" if key in dashed else "-"
        label = (labels or {}).get(key, key)
        ax.plot(steps, curves[key], ls, color=color_for(key), label=label)
    ax.set(yscale="log", ylabel=f"training loss, EWMA β = {beta:g} (nat)")
    plain_log_ticks(ax)
    return curves
