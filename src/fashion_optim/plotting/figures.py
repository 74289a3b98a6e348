"""The figures that several pages draw: learning curves over seeds, optimizers' paths
on a toy surface or on the PCA plane of a network's trajectories, and the range-test
panel."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from .axes import band, label_lr_axis
from .style import NEUTRAL, color_for


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
    surface : fashion_optim.toys.Surface or str
        A surface or a name in :data:`fashion_optim.toys.SURFACES`.
    paths : mapping of str to array_like, shape (points, 2)
        Key (a :data:`COLORS` name) to the points visited, e.g. from
        :func:`fashion_optim.toys.optimize_path`; all from the surface's start.
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
    >>> from fashion_optim import toys
    >>> path = toys.optimize_path("quadratic", lambda p: torch.optim.SGD(p, lr=0.05), 50)
    >>> fig, ax = plt.subplots()
    >>> lines = toy_paths(ax, "quadratic", {"sgd": path})
    >>> lines["sgd"].get_color()
    '#0072B2'
    """
    from .. import toys  # torch: imported only by the pages that draw surfaces

    surf = toys.SURFACES[surface] if isinstance(surface, str) else surface
    X, Y, Z = toys.surface_grid(surf, n=300)
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
    plane = trajectory.plane
    keys = _plane_keys(trajectory, keys)
    filled = _plane_background(ax, trajectory, levels)
    for coords, key in zip(plane.coords, keys, strict=True):
        label = (labels or {}).get(key, key)
        ax.plot(*coords.T, "-o", ms=2.5, lw=1.5, color=color_for(key), label=label)
        ax.plot(*coords[-1], "o", ms=8, mfc="white", mec=color_for(key), mew=2)
    ax.plot(0, 0, "s", ms=7, color="black", zorder=5, ls="", label="start")
    ax.plot([], [], "o", ms=8, mfc="white", mec="black", mew=2, ls="", label="end")
    return filled


def _plane_keys(trajectory: Any, keys: Any) -> list[str]:
    keys, runs = list(keys), len(trajectory.plane.coords)
    if len(keys) != runs:
        raise ValueError(
            f"keys must name each of the {runs} runs of the plane, got {len(keys)}: {keys!r}."
        )
    return keys


def _log_contours(ax: Axes, x: np.ndarray, y: np.ndarray, loss: np.ndarray, levels: int) -> Any:
    """A loss over a plane as grey filled contours at ``levels`` log-spaced heights, with
    thin lines: the style of every plane the site draws."""
    from matplotlib.colors import LogNorm

    heights = np.geomspace(loss.min(), loss.max(), levels)
    filled = ax.contourf(x, y, loss, levels=heights, cmap="Greys_r", alpha=0.7, norm=LogNorm())
    ax.contour(filled, colors="0.35", linewidths=0.4)
    return filled


def _plane_background(ax: Axes, trajectory: Any, levels: int) -> Any:
    """The loss on the plane as filled log-spaced grey contours, and the plane's axes
    (labelled with their share of the variance, to scale); :func:`plane_paths` and the
    plane's animation draw the paths over it."""
    grid, evr = trajectory.surface, trajectory.plane.explained_variance_ratio
    filled = _log_contours(ax, grid["alphas"], grid["betas"], grid["loss"], levels)
    ax.set(
        xlabel=f"direction 1, {evr[0]:.0%} of variance (weight units)",
        ylabel=f"direction 2, {evr[1]:.0%} (weight units)",
        aspect="equal",
    )
    return filled


def range_test_blow_up(result: Any, run: int = 5) -> int | None:
    """Where a range test's raw loss blows up: the first mini-batch, after the lowest
    raw loss, from which the raw loss stays above its first value for ``run``
    mini-batches in a row (or to the end of the test), so that a lone spike does not
    count. ``None`` when it never does.

    Parameters
    ----------
    result : fashion_optim.lr_finder.RangeTestResult
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
    result : fashion_optim.lr_finder.RangeTestResult
        What :func:`fashion_optim.lr_finder.range_test` or
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
    >>> from fashion_optim.lr_finder import RangeTestResult
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


def buffer_and_ewma(
    grad: np.ndarray,
    scaled: np.ndarray,
    ewma: np.ndarray,
    steps_per_epoch: int | None = None,
    zoom: int = 150,
) -> Any:
    r"""One weight's gradient, its momentum buffer times :math:`1-\mu`, and the EWMA
    of the gradient with :math:`\beta = \mu`, against the step: over the whole run
    (top, the y axis cut to the gradient's 0.5-99.5 % quantiles) and over the first
    ``zoom`` steps (bottom).

    Examples
    --------
    >>> g = np.sin(np.arange(300) / 9.0)
    >>> len(buffer_and_ewma(g, g, g, steps_per_epoch=100).axes)  # the run, the zoom
    2
    """
    import matplotlib.pyplot as plt

    from .axes import label_step_axis, legend_below

    steps = np.arange(1, len(grad) + 1)
    fig, (ax_all, ax_zoom) = plt.subplots(2, 1, figsize=(7.5, 6.0), layout="constrained")
    for ax, t, per_epoch in ((ax_all, steps, steps_per_epoch), (ax_zoom, steps[:zoom], None)):
        ax.plot(t, grad[: len(t)], color=NEUTRAL, lw=0.7, label="raw gradient $g_t$")
        ax.plot(t, scaled[: len(t)], color=color_for("momentum"), label=r"$(1-\mu)\,b_t$")
        ax.plot(t, ewma[: len(t)], ":", color="black", lw=1.4, label=r"EWMA $m_t$, $\beta = \mu$")
        ax.set(ylabel=r"$\partial L / \partial w$ (nat per unit $w$)", title=f"{len(t)} steps")
        label_step_axis(ax, per_epoch)
    ax_all.set_ylim(np.quantile(grad, [0.005, 0.995]))
    legend_below(ax_zoom, ncols=3)
    return fig
