"""What a plane through the weights shows and what it leaves out: the loss measured at
each snapshot beside the contour value under it and the snapshot's distance from the
plane, and the loss on a random plane through the final weights."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes

from .axes import label_step_axis, plain_log_ticks
from .figures import _log_contours
from .style import color_for


def random_plane_contours(ax: Axes, result: Any, *, levels: int = 16) -> Any:
    """Draw the loss on a random plane through a run's final weights.

    Filled grey contours at log-spaced levels (as :func:`plane_paths` draws the PCA
    plane), the final weights (the plane's origin) as a hollow black circle labelled for a
    legend. The axes are in weight units: the grid's coordinates times each direction's
    length (``surface["direction_norms"]``), to scale.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    result : fashion_optim.experiments.RandomPlaneSurface
        From :func:`fashion_optim.experiments.random_plane_surface`.
    levels : int
        Number of contour levels.

    Returns
    -------
    matplotlib.contour.QuadContourSet
        The filled contours, for a colour bar.

    Examples
    --------
    >>> surface = random_plane_surface(momentum_run, seed=0)  # doctest: +SKIP
    >>> filled = random_plane_contours(ax, surface)  # doctest: +SKIP
    >>> fig.colorbar(filled, ax=ax, label="training loss (nat)")  # doctest: +SKIP
    """
    grid = result.surface
    norms = np.asarray(grid["direction_norms"], dtype=float)
    if norms.shape != (2,) or not np.all(norms > 0):
        raise ValueError(
            f"the surface's direction_norms must be two positive lengths, got {norms!r}."
        )
    x, y = grid["alphas"] * norms[0], grid["betas"] * norms[1]
    filled = _log_contours(ax, x, y, grid["loss"], levels)
    ax.plot(0, 0, "o", ms=9, mfc="white", mec="black", mew=2, ls="", label="final weights")
    ax.set(
        xlabel="random direction 1 (weight units)",
        ylabel="random direction 2 (weight units)",
        aspect="equal",
    )
    return filled


def plane_gap_panels(
    ax_loss: Axes,
    ax_distance: Axes,
    steps: Any,
    paths: Any,
    keys: Any,
    *,
    labels: Any = None,
    steps_per_epoch: int | None = None,
) -> None:
    """Draw what a plane leaves out of runs' snapshots, against the optimizer step.

    On ``ax_loss``, per run in its key's colour, the loss measured at each snapshot
    (solid line, dots) and the loss at its projection on the plane, the contour value
    under its dot (dashed); log scale. On ``ax_distance``, each snapshot's distance from
    the plane.

    Parameters
    ----------
    ax_loss, ax_distance : matplotlib.axes.Axes
    steps : array-like
        ``[T]`` the optimizer step of each snapshot (the runs' ``"param_steps"``).
    paths : sequence of dict
        :attr:`fashion_optim.experiments.TrajectorySurface.paths`: per run,
        ``"loss"``, ``"projected_loss"`` and ``"distance"``, ``[T]`` each.
    keys : sequence of str
        A :data:`COLORS` name per run, in the order of ``paths``.
    labels : mapping of str to str, optional
        Legend labels of the runs; default: the keys.
    steps_per_epoch : int, optional
        Passed to :func:`label_step_axis` for ``ax_loss`` (epochs on its top axis).

    Examples
    --------
    >>> fig, (top, bottom) = plt.subplots(2, 1, sharex=True)  # doctest: +SKIP
    >>> plane_gap_panels(top, bottom, steps, surf.paths, ["sgd", "momentum"])  # doctest: +SKIP
    """
    keys, steps = list(keys), np.asarray(steps)
    if len(keys) != len(paths):
        raise ValueError(
            f"keys must name each of the {len(paths)} runs, got {len(keys)}: {keys!r}."
        )
    for path, key in zip(paths, keys, strict=True):
        if len(path["loss"]) != len(steps):
            raise ValueError(
                f"run {key!r} has {len(path['loss'])} snapshots but steps has {len(steps)}."
            )
        color, label = color_for(key), (labels or {}).get(key, key)
        ax_loss.plot(steps, path["loss"], "-o", ms=2.5, color=color, label=label)
        ax_loss.plot(steps, path["projected_loss"], "--", color=color)
        ax_distance.plot(steps, path["distance"], "-o", ms=2.5, color=color, label=label)
    ax_loss.plot([], [], "k-", label="at the snapshot")
    ax_loss.plot([], [], "k--", label="at its projection (contour)")
    ax_loss.set(yscale="log", ylabel="training loss on the sample (nat)")
    plain_log_ticks(ax_loss)
    ax_distance.set(ylabel="distance from the plane (weight units)")
    label_step_axis(ax_loss, steps_per_epoch)  # epochs on top of the upper panel only
    label_step_axis(ax_distance)
