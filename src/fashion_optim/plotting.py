"""One figure style and the small figure helpers the gallery and the note share.

Plotting never trains: every function here takes arrays (or results already computed
by :mod:`fashion_optim.experiments`) and draws them.

- :data:`COLORS` and :func:`color_for`: one colour per optimizer and per
  learning-rate schedule, the same on every page.
- :func:`use_style` and :func:`style_context`: constrained layout, readable fonts, a
  light grid and an *opaque* white background, so that figures stay legible when the
  site is shown in dark mode.
- :func:`band`: mean over seeds with a ±1 standard deviation band.
- :func:`smooth_curve`: a bias-corrected EWMA for noisy per-step curves.
- :func:`label_lr_axis`, :func:`label_step_axis`: axis labels with their units.
- :func:`learning_curves`: a history field per configuration, as bands over seeds.
- :func:`mean_std` and :func:`results_table`: "mean ± std" text and HTML-ready tables.
- :func:`toy_paths` and :func:`plane_paths`: optimizers' paths over the contours of a
  toy surface, or of the loss on the PCA plane of a network's trajectories.
- :func:`range_test_panel` (with :func:`range_test_blow_up`): a learning-rate range
  test, raw and smoothed loss, its suggestion and useful range; :func:`rate_drops`: how
  often a recorded learning rate went down.

Examples
--------
>>> import matplotlib.pyplot as plt
>>> import numpy as np
>>> from fashion_optim import plotting
>>> plotting.use_style()
>>> fig, ax = plt.subplots()
>>> runs = np.random.default_rng(0).normal(size=(3, 50)).cumsum(axis=1)
>>> line, fill = plotting.band(ax, np.arange(50), runs, label="sgd")
"""

from __future__ import annotations

import contextlib
import zlib
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter
from numpy.typing import ArrayLike, NDArray

from .ewma import bias_corrected

__all__ = [
    "COLORS",
    "NEUTRAL",
    "OKABE_ITO",
    "STYLE",
    "TOL_MUTED",
    "band",
    "color_for",
    "label_lr_axis",
    "label_step_axis",
    "learning_curves",
    "mean_std",
    "plain_log_ticks",
    "plane_paths",
    "range_test_blow_up",
    "range_test_panel",
    "rate_drops",
    "results_table",
    "smooth_curve",
    "style_context",
    "toy_paths",
    "use_style",
]

#: The Okabe-Ito palette (Okabe & Ito, 2008), distinguishable under the common forms of
#: colour-vision deficiency. Used for the optimizers.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Paul Tol's "muted" qualitative palette (nine colours, colour-blind safe). Used for the
#: learning-rate schedules, and for names without a colour of their own.
TOL_MUTED: tuple[str, ...] = (
    "#332288",  # indigo
    "#88CCEE",  # cyan
    "#44AA99",  # teal
    "#117733",  # green
    "#999933",  # olive
    "#DDCC77",  # sand
    "#CC6677",  # rose
    "#882255",  # wine
    "#AA4499",  # purple
)

#: Grey for raw, noisy data drawn behind its smoothed version, and for reference lines.
NEUTRAL: str = "#9A9A9A"

#: The colour of each optimizer and schedule, the same on every page. Optimizers and
#: schedules are never compared in one axes, so the two groups are only distinct
#: within themselves; ``"constant"`` (no schedule) is black, the baseline.
COLORS: dict[str, str] = {
    # optimizers (Okabe-Ito)
    "sgd": OKABE_ITO["blue"],
    "momentum": OKABE_ITO["orange"],
    "nesterov": OKABE_ITO["bluish_green"],
    "adam": OKABE_ITO["vermillion"],
    # plain SGD at momentum's effective learning rate lr / (1 - beta): SGD's lighter blue
    "sgd_effective": OKABE_ITO["sky_blue"],
    # learning-rate schedules (Tol muted, plus black for the constant baseline)
    "constant": OKABE_ITO["black"],
    "step": TOL_MUTED[6],
    "multistep": TOL_MUTED[7],
    "exponential": TOL_MUTED[4],
    "lambda": TOL_MUTED[3],
    "cosine": TOL_MUTED[0],
    "onecycle": TOL_MUTED[8],
    "plateau": TOL_MUTED[2],
    "cyclic": TOL_MUTED[1],
    "cosine_warm_restarts": TOL_MUTED[5],
}

#: Matplotlib settings of every figure, applied by :func:`use_style`.
STYLE: dict[str, Any] = {
    "figure.constrained_layout.use": True,
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 100,
    # Sphinx-gallery saves with savefig.dpi: 200 dpi stays sharp on hi-dpi screens.
    "savefig.dpi": 200,
    # Opaque white everywhere: a transparent figure turns black text unreadable on the
    # site's dark background.
    "figure.facecolor": "white",
    "figure.edgecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.edgecolor": "white",
    "savefig.transparent": False,
    "legend.facecolor": "white",
    "legend.framealpha": 0.9,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9.5,
    "figure.titlesize": 13,
    "axes.grid": True,
    "grid.color": "#D0D0D0",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "axes.prop_cycle": mpl.cycler(
        color=[OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "vermillion")]
        + [OKABE_ITO[k] for k in ("reddish_purple", "sky_blue", "black")]
    ),
}


def use_style() -> None:
    """Apply :data:`STYLE` to matplotlib for the rest of the process.

    Call it once at the top of a gallery example (sphinx-gallery resets matplotlib
    before each example). Use :func:`style_context` to style only some figures.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> use_style()
    >>> plt.figure().get_facecolor()
    (1.0, 1.0, 1.0, 1.0)
    """
    mpl.rcParams.update(STYLE)


def style_context() -> contextlib.AbstractContextManager[None]:
    """A context manager applying :data:`STYLE` inside a ``with`` block only.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> with style_context():
    ...     fig, ax = plt.subplots()
    >>> fig.get_layout_engine() is not None
    True
    """
    return mpl.rc_context(STYLE)


def _normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def color_for(name: str) -> str:
    """The colour of an optimizer, a schedule or any other named configuration.

    Names are matched case-insensitively, with spaces and hyphens read as
    underscores (``"Cosine warm-restarts"`` is ``"cosine_warm_restarts"``). A name
    without an entry in :data:`COLORS` gets a colour of :data:`TOL_MUTED` chosen by a
    checksum of the name, so it is the same on every page and in every process.

    Parameters
    ----------
    name : str
        e.g. ``"sgd"``, ``"momentum"``, ``"adam"``, ``"onecycle"``.

    Returns
    -------
    str
        A hex colour, e.g. ``"#0072B2"``.

    Examples
    --------
    >>> color_for("sgd")
    '#0072B2'
    >>> color_for("Adam") == color_for("adam")
    True
    >>> color_for("my_config") == color_for("my_config")
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r} of type {type(name).__name__}.")
    key = _normalise(name)
    if key in COLORS:
        return COLORS[key]
    # zlib.crc32, not hash(): Python salts str hashes per process.
    return TOL_MUTED[zlib.crc32(key.encode()) % len(TOL_MUTED)]


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


# --------------------------------------------------------------------------- tables


def mean_std(values: Any, digits: int = 4) -> str:
    """``"mean ± std"`` of a ``(mean, std)`` pair (as
    :class:`~fashion_optim.experiments.SeedResults` gives) or of the values over seeds
    (sample standard deviation), formatted as text.

    Examples
    --------
    >>> mean_std((0.83081, 0.00342))
    '0.8308 ± 0.0034'
    >>> mean_std([1.0, 2.0, 3.0], digits=2)
    '2.00 ± 1.00'
    """
    if isinstance(values, tuple) and len(values) == 2:
        mean, std = values
    else:
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size == 0:
            raise ValueError("mean_std needs a (mean, std) pair or at least one value.")
        mean, std = arr.mean(), (arr.std(ddof=1) if arr.size > 1 else 0.0)
    return f"{float(mean):.{digits}f} ± {float(std):.{digits}f}"


def results_table(
    runs: Any,
    *,
    metrics: tuple[str, ...] = ("test_acc", "test_loss"),
    digits: int = 4,
    index_name: str = "configuration",
) -> Any:
    """A ``pandas.DataFrame`` of mean ± std over seeds, one row per configuration.

    A cell's last expression renders as an HTML table in the gallery and the note.

    Parameters
    ----------
    runs : mapping of str to ~fashion_optim.experiments.SeedResults
        Row label (e.g. the spec's name) to its results.
    metrics : tuple of str
        ``"test_acc"``, ``"test_loss"`` (the test set, read once per configuration) or a
        :class:`~fashion_optim.training.History` field such as ``"val_acc"`` (its last
        value, per seed).
    digits : int

    Examples
    --------
    >>> table = results_table({})  # doctest: +SKIP
    """
    import pandas as pd

    names = {
        "test_acc": "test accuracy",
        "test_loss": "test loss (nat)",
        "val_acc": "validation accuracy",
        "val_loss": "validation loss (nat)",
        "train_loss": "training loss (nat)",
        "train_acc": "training accuracy",
    }
    rows = {}
    for label, res in runs.items():
        row = {}
        for metric in metrics:
            pair = getattr(res, metric) if metric.startswith("test_") else res.final(metric)
            row[names.get(metric, metric)] = mean_std(pair, digits)
        row["seeds"] = len(res.results)
        rows[label] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = index_name
    return table


def learning_curves(
    ax: Axes,
    runs: Any,
    field: str = "val_acc",
    *,
    labels: Any = None,
    **line_kwargs: Any,
) -> None:
    """Draw a :class:`~fashion_optim.training.History` field against the epoch for
    several configurations, each as :func:`band` (mean ± std over seeds) in its colour.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    runs : mapping of str to ~fashion_optim.experiments.SeedResults
        Key (a :data:`COLORS` name such as ``"momentum"``) to its results.
    field : str
        A per-epoch field: ``val_acc``, ``val_loss``, ``train_loss``, ``train_acc``.
    labels : mapping of str to str, optional
        Legend labels; default: each spec's name.
    """
    axis_labels = {
        "val_acc": "validation accuracy (fraction)",
        "val_loss": "validation loss (nat)",
        "train_loss": "training loss (nat)",
        "train_acc": "training accuracy (fraction)",
    }
    for key, res in runs.items():
        stacked = res.stack(field)
        epochs = np.arange(1, stacked.shape[1] + 1)
        label = (labels or {}).get(key, res.spec.name)
        band(ax, epochs, stacked, label=label, color=color_for(key), **line_kwargs)
    ax.set(xlabel="epoch", ylabel=axis_labels.get(field, field))


# --------------------------------------------------------------------------- trajectories


def toy_paths(
    ax: Axes,
    surface: Any,
    paths: Any,
    *,
    labels: Any = None,
    styles: Any = None,
    levels: int = 14,
) -> dict[str, Line2D]:
    """Draw optimizers' paths on a toy surface over its contours, one colour per key.

    The contours are at log-spaced levels of the surface over its window. Each path is a
    line with a dot per point and, when it ends inside the window, a hollow circle at its
    end; a path that leaves the window (or diverges to infinity or NaN) is drawn up to
    one point past the edge. The start (black square), the ends (a black hollow circle)
    and the minimum (black star) are labelled for a legend.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    surface : fashion_optim.landscape.Surface or str
        A surface or a name in :data:`fashion_optim.landscape.SURFACES`.
    paths : mapping of str to array_like, shape (points, 2)
        Key (a :data:`COLORS` name) to the points visited, e.g. from
        :func:`fashion_optim.landscape.optimize_path`; all from the surface's start.
    labels : mapping of str to str, optional
        Legend labels of the paths; default: the keys.
    styles : mapping of str to dict, optional
        Extra :class:`~matplotlib.lines.Line2D` settings per key (``ls``, ``lw``,
        ``alpha``, ``zorder``), e.g. to keep a path that others hide visible.
    levels : int
        Number of contour levels.

    Returns
    -------
    dict of str to matplotlib.lines.Line2D
        The line of each path.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import torch
    >>> from fashion_optim import landscape
    >>> path = landscape.optimize_path("quadratic", lambda p: torch.optim.SGD(p, lr=0.05), 50)
    >>> fig, ax = plt.subplots()
    >>> lines = toy_paths(ax, "quadratic", {"sgd": path})
    >>> lines["sgd"].get_color()
    '#0072B2'
    """
    from . import landscape  # torch: imported only by the pages that draw surfaces

    surf = landscape.SURFACES[surface] if isinstance(surface, str) else surface
    X, Y, Z = landscape.surface_grid(surf, n=300)
    heights = np.geomspace(max(Z.min(), 1e-2), Z.max(), levels)
    ax.contour(X, Y, Z, levels=heights, colors=NEUTRAL, linewidths=0.6)
    (x0, x1), (y0, y1) = surf.xlim, surf.ylim
    lines = {}
    for key, path in paths.items():
        pts = np.asarray(path, dtype=np.float64)
        inside = np.isfinite(pts).all(axis=1)
        inside &= (pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)
        n = len(pts) if inside.all() else int(np.argmin(inside)) + 1
        style = {"lw": 1.5, "zorder": 2, **(styles or {}).get(key, {})}
        label = (labels or {}).get(key, key)
        (lines[key],) = ax.plot(
            *pts[:n].T, marker="o", ms=2.2, color=color_for(key), label=label, **style
        )
        if inside.all():
            ax.plot(*pts[-1], "o", ms=7, mfc="white", mec=color_for(key), mew=1.8, zorder=6)
    ax.plot(*surf.start, "s", ms=6, color="black", zorder=5, ls="", label="start")
    ax.plot([], [], "o", ms=7, mfc="white", mec="black", mew=1.8, ls="", label="end")
    ax.plot(*surf.minimum, "*", ms=14, color="black", zorder=5, ls="", label="minimum")
    ax.set(xlim=surf.xlim, ylim=surf.ylim, xlabel="x (no unit)", ylabel="y (no unit)")
    return lines


def plane_paths(
    ax: Axes,
    trajectory: Any,
    keys: Any,
    *,
    labels: Any = None,
    levels: int = 16,
) -> Any:
    """Draw runs' paths on the PCA plane of their trajectories, over the loss there.

    The loss is drawn as filled grey contours at log-spaced levels; each run's path is a
    line with a dot per snapshot and a hollow circle at its end, in its key's colour; the
    shared start, the plane's origin, is a black square (both labelled for a legend). The
    axes are the plane's two directions, in weight units (they have unit length), to scale.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    trajectory : fashion_optim.experiments.TrajectorySurface
        From :func:`fashion_optim.experiments.trajectory_surface`.
    keys : sequence of str
        A :data:`COLORS` name per run, in the order the runs were given.
    labels : mapping of str to str, optional
        Legend labels of the paths; default: the keys.
    levels : int
        Number of contour levels.

    Returns
    -------
    matplotlib.contour.QuadContourSet
        The filled contours, for a colour bar.

    Examples
    --------
    >>> surface = trajectory_surface([momentum_run, sgd_run])  # doctest: +SKIP
    >>> filled = plane_paths(ax, surface, ["momentum", "sgd"])  # doctest: +SKIP
    >>> fig.colorbar(filled, ax=ax, label="training loss (nat)")  # doctest: +SKIP
    """
    from matplotlib.colors import LogNorm

    plane, grid = trajectory.plane, trajectory.surface
    keys = list(keys)
    if len(keys) != len(plane.coords):
        raise ValueError(
            f"keys must name each of the {len(plane.coords)} runs of the plane, got "
            f"{len(keys)}: {keys!r}."
        )
    heights = np.geomspace(grid["loss"].min(), grid["loss"].max(), levels)
    filled = ax.contourf(
        grid["alphas"],
        grid["betas"],
        grid["loss"],
        levels=heights,
        cmap="Greys_r",
        alpha=0.7,
        norm=LogNorm(),
    )
    ax.contour(filled, colors="0.35", linewidths=0.4)
    for coords, key in zip(plane.coords, keys, strict=True):
        label = (labels or {}).get(key, key)
        ax.plot(*coords.T, "-o", ms=2.5, lw=1.5, color=color_for(key), label=label)
        ax.plot(*coords[-1], "o", ms=8, mfc="white", mec=color_for(key), mew=2)
    ax.plot(0, 0, "s", ms=7, color="black", zorder=5, ls="", label="start")
    ax.plot([], [], "o", ms=8, mfc="white", mec="black", mew=2, ls="", label="end")
    evr = plane.explained_variance_ratio
    ax.set(
        xlabel=f"direction 1, {evr[0]:.0%} of variance (weight units)",
        ylabel=f"direction 2, {evr[1]:.0%} (weight units)",
        aspect="equal",
    )
    return filled


# --------------------------------------------------------------------------- learning rates


def rate_drops(rates: ArrayLike) -> int:
    """How many times a recorded learning rate went down from one value to the next.

    For ``History.lr`` of a ReduceLROnPlateau run, the number of times it lowered the
    rate (a drop decided after the last epoch changes no epoch, and is not counted).

    Parameters
    ----------
    rates : array_like, shape (T,)
        Learning rates in the order they were used, e.g. ``History.lr`` or
        ``History.batch_lr``.

    Returns
    -------
    int
        The number of ``i`` with ``rates[i + 1] < rates[i]``.

    Examples
    --------
    >>> rate_drops([0.01, 0.01, 0.001, 0.001, 0.0001])
    2
    >>> rate_drops([0.01, 0.01, 0.01])
    0
    """
    return int(np.count_nonzero(np.diff(np.asarray(rates, dtype=np.float64)) < 0))


def range_test_blow_up(result: Any, run: int = 5) -> int | None:
    """Where a range test's raw loss blows up: the first mini-batch, after the lowest
    raw loss, from which the raw loss stays above its first value for ``run``
    mini-batches in a row (or to the end of the test), so that a lone spike does not
    count. ``None`` when it never does.

    Parameters
    ----------
    result : fashion_optim.lr.RangeTestResult
    run : int
        Mini-batches in a row.

    Returns
    -------
    int or None
        An index into ``result.lrs``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> res = SimpleNamespace(losses=np.array([2.3, 1.0, 0.5, 3.0, 0.4, 2.5, 2.6, 2.7]))
    >>> range_test_blow_up(res, run=2)
    5
    """
    if not (isinstance(run, int) and run >= 1):
        raise ValueError(f"run must be an integer >= 1, got {run!r}.")
    losses = np.asarray(result.losses, dtype=np.float64)
    if losses.size == 0:
        return None
    above = losses > losses[0]
    for j in range(int(np.argmin(losses)), len(above)):
        if above[j : j + run].all():
            return j
    return None


def range_test_panel(
    ax: Axes,
    result: Any,
    *,
    color: str | None = None,
    default_lr: float | None = None,
    default_label: str = "note's default",
    clip: float = 1.3,
    blow_up_run: int = 5,
    title: str | None = None,
) -> dict[str, Any]:
    """Draw a learning-rate range test: the raw and smoothed loss against the learning
    rate (log axis), the useful range, the suggestion, an optional default rate and the
    blow-up.

    The raw loss of each mini-batch is grey; above ``clip`` times the first smoothed
    loss it is drawn as a triangle on a dotted clipping line, which bounds the axis. The
    smoothed loss is a line in ``color``; the shaded span runs from ``result.lr_min`` to
    ``result.lr_max``; the dashed line is ``result.suggested_lr``; the dotted one
    ``default_lr``. A cross on the bottom edge marks :func:`range_test_blow_up`. Every
    artist has a legend label, so ``ax.legend()`` (or a figure legend from one panel's
    handles) explains the panel; the clipped triangles and the blow-up are drawn, empty,
    even where there are none, so that every panel has the same legend entries.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    result : fashion_optim.lr.RangeTestResult
        What :func:`fashion_optim.lr.range_test` or
        :func:`fashion_optim.experiments.run_range_test` returned.
    color : str, optional
        Colour of the smoothed loss and the useful range (default: the axes' next).
    default_lr : float, optional
        A learning rate to compare with, e.g. the one the runs use.
    default_label : str
        Its legend label.
    clip : float
        The top of the axis, in multiples of the first smoothed loss.
    blow_up_run : int
        ``run`` of :func:`range_test_blow_up`.
    title : str, optional

    Returns
    -------
    dict
        The artists drawn, by role: ``raw``, ``clipped``, ``smoothed``, ``clip`` and
        ``blow_up``; ``range`` and ``suggestion`` where the result has them; ``default``
        with ``default_lr``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from fashion_optim.lr import RangeTestResult
    >>> lrs = np.geomspace(1e-4, 1.0, 50)
    >>> losses = 2.3 - np.tanh(np.log10(lrs) + 3) + 3.0 * (lrs > 0.3)
    >>> res = RangeTestResult(lrs, losses, losses, 1e-3, 1e-4, 0.1, True, 49, "exp")
    >>> fig, ax = plt.subplots()
    >>> drawn = range_test_panel(ax, res, color="#E69F00", default_lr=0.01)
    >>> ax.get_xscale(), drawn["suggestion"].get_xdata()[0]
    ('log', 0.001)
    """
    lrs = np.asarray(result.lrs, dtype=np.float64)
    losses = np.asarray(result.losses, dtype=np.float64)
    smoothed = np.asarray(result.smoothed, dtype=np.float64)
    if lrs.size == 0 or lrs.shape != losses.shape or lrs.shape != smoothed.shape:
        raise ValueError(
            f"result must hold as many learning rates, losses and smoothed losses (at "
            f"least one), got {lrs.shape}, {losses.shape} and {smoothed.shape}."
        )
    if not clip > 1:
        raise ValueError(f"clip must be > 1 (a multiple of the first loss), got {clip!r}.")
    top = clip * smoothed[0]
    above = losses > top
    drawn: dict[str, Any] = {}
    (drawn["raw"],) = ax.plot(lrs, np.minimum(losses, top), color=NEUTRAL, lw=0.8, label="raw loss")
    (drawn["clipped"],) = ax.plot(
        lrs[above], np.full(above.sum(), top), "^", color=NEUTRAL, ms=5, label="raw, clipped"
    )
    (drawn["smoothed"],) = ax.plot(lrs, smoothed, color=color, label="smoothed loss")
    color = drawn["smoothed"].get_color()
    if result.lr_min is not None and result.lr_max is not None:
        drawn["range"] = ax.axvspan(
            result.lr_min, result.lr_max, color=color, alpha=0.18, lw=0, label="useful range"
        )
    if result.suggested_lr is not None:
        drawn["suggestion"] = ax.axvline(
            result.suggested_lr, color="black", ls="--", lw=1.2, label="suggestion"
        )
    if default_lr is not None:
        drawn["default"] = ax.axvline(default_lr, color="0.3", ls=":", lw=1.4, label=default_label)
    drawn["clip"] = ax.axhline(top, color=NEUTRAL, lw=0.6, ls=(0, (1, 3)))
    i = range_test_blow_up(result, blow_up_run)
    where = [] if i is None else [lrs[i]]
    # On the bottom edge (axes coordinates), where it hides neither triangles nor lines;
    # unclipped only when there is a point (an empty unclipped line would put the figure's
    # origin in the axes' layout box and collapse a constrained layout).
    (drawn["blow_up"],) = ax.plot(
        where, [0.04] * len(where), "X", color="black", ms=8, zorder=5, clip_on=not where,
        transform=ax.get_xaxis_transform(), label="blow-up",
    )  # fmt: skip
    ax.set_ylim(0.9 * losses.min(), 1.08 * top)
    ax.set_ylabel("training loss (nat)")
    label_lr_axis(ax)
    if title is not None:
        ax.set_title(title)
    return drawn
