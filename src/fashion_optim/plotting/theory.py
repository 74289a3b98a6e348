"""The figures of momentum's convergence theory on a quadratic: the rate against the
learning rate for each method, and the map of the rate over learning rate and momentum
with its monotone, oscillating and divergent regions (:mod:`fashion_optim.theory`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.lines import Line2D
from numpy.typing import ArrayLike

from .. import theory
from .style import NEUTRAL, color_for

#: The colour name (a :data:`COLORS` key) of each method of :mod:`fashion_optim.theory`:
#: the colours of plain SGD, momentum and Nesterov on every other page.
METHOD_KEYS: dict[str, str] = {"gd": "sgd", "heavy_ball": "momentum", "nesterov": "nesterov"}

#: Legend labels of the methods.
METHOD_LABELS: dict[str, str] = {
    "gd": "gradient descent",
    "heavy_ball": "heavy ball",
    "nesterov": "Nesterov",
}

RATE_LABEL = "convergence rate ρ (error factor per step)"
LR_LABEL = "learning rate η (log scale)"
# Hatches of the regions of rate_map: none where the error decays monotonically.
REGION_HATCHES: dict[str, str] = {"monotone": "", "oscillating": "///", "divergent": "xx"}


def rate_curves(
    ax: Axes,
    curvatures: ArrayLike,
    lrs: ArrayLike,
    momentum: float | Mapping[str, float],
    *,
    methods: Sequence[str] = theory.METHODS,
    labels: Mapping[str, str] | None = None,
    ylim: tuple[float, float] = (0.0, 1.2),
) -> dict[str, Line2D]:
    """Draw each method's convergence rate against the learning rate (log axis).

    Gradient descent has no momentum; the other methods use ``momentum``. Each curve's
    lowest point on the grid is a hollow circle in its colour; a dotted line at
    :math:`\\rho = 1` marks where the methods stop converging.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    curvatures : array_like
        The quadratic's curvatures, as for :func:`fashion_optim.theory.rate`.
    lrs : array_like
        The learning rates of the curve, increasing.
    momentum : float or mapping of str to float
        :math:`\\mu` of ``heavy_ball`` and ``nesterov``, or each method's own (e.g. its
        optimum's); ``gd`` has none.
    methods : sequence of str
        Names in :data:`fashion_optim.theory.METHODS`.
    labels : mapping of str to str, optional
        Legend labels; default :data:`METHOD_LABELS`.
    ylim : tuple of float
        The rate axis' window (divergent rates leave it).

    Returns
    -------
    dict of str to matplotlib.lines.Line2D
        The curve of each method.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> lines = rate_curves(ax, [1.0, 20.0], np.geomspace(1e-3, 0.3, 50), momentum=0.9)
    >>> lines["heavy_ball"].get_color(), ax.get_xscale()
    ('#E69F00', 'log')
    """
    eta = np.asarray(lrs, dtype=np.float64)
    lines = {}
    for method in methods:
        mu = momentum.get(method, 0.0) if isinstance(momentum, Mapping) else momentum
        rho = theory.rate(method, curvatures, eta, 0.0 if method == "gd" else mu)
        color = color_for(METHOD_KEYS[method])
        label = (labels or METHOD_LABELS).get(method, method)
        (lines[method],) = ax.plot(eta, rho, color=color, label=label)
        best = int(np.argmin(rho))
        ax.plot(eta[best], rho[best], "o", ms=7, mfc="white", mec=color, mew=1.8, zorder=5)
    ax.axhline(1.0, color="black", lw=0.9, ls=":", label="ρ = 1: no convergence")
    ax.set_xscale("log")
    ax.set(xlabel=LR_LABEL, ylabel=RATE_LABEL, ylim=ylim, xlim=(eta.min(), eta.max()))
    return lines


def rate_map(
    ax: Axes,
    method: str,
    curvatures: ArrayLike,
    lrs: ArrayLike,
    momenta: ArrayLike,
    *,
    cmap: str = "viridis",
    vmin: float | None = None,
) -> QuadMesh:
    """Draw the convergence rate over a grid of learning rates and momenta, by region.

    The rate is a colour where the method converges; the divergent region is grey and
    cross-hatched, the oscillating one hatched with slanted lines, the monotone one plain
    (:func:`fashion_optim.theory.regions`), and black lines outline the regions. A star
    marks the method's optimum (:func:`fashion_optim.theory.optimum`) when it lies in the
    window. Each region and the star are labelled for a legend.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    method : {"heavy_ball", "nesterov"}
    curvatures : array_like
    lrs : array_like
        Learning rates (the x axis, log scale), increasing.
    momenta : array_like
        Momenta in [0, 1) (the y axis), increasing.
    cmap : str
        A matplotlib colour map for the rate.
    vmin : float, optional
        The rate at the bottom of the colour map; default: the lowest on the grid.
        The top is 1.

    Returns
    -------
    matplotlib.collections.QuadMesh
        The coloured rates (divergent cells masked), for a colour bar.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> mesh = rate_map(ax, "heavy_ball", [1.0, 20.0], np.geomspace(1e-3, 0.5, 60),
    ...                 np.linspace(0, 0.99, 50))
    >>> fig.colorbar(mesh, ax=ax, label="rate")  # doctest: +ELLIPSIS
    <matplotlib.colorbar.Colorbar object at ...>
    """
    if method == "gd":
        raise ValueError("rate_map maps momentum; for 'gd' (no momentum) use rate_curves.")
    eta = np.asarray(lrs, dtype=np.float64)
    mu = np.asarray(momenta, dtype=np.float64)
    grid_eta, grid_mu = np.meshgrid(eta, mu)
    rho = theory.rate(method, curvatures, grid_eta, grid_mu)
    kind = theory.regions(method, curvatures, grid_eta, grid_mu)
    code = np.select([kind == name for name in theory.REGIONS], [0, 1, 2])
    shown = np.ma.masked_where(code == 2, rho)
    low = float(shown.min()) if vmin is None else vmin
    mesh = ax.pcolormesh(eta, mu, shown, cmap=cmap, vmin=low, vmax=1.0, shading="nearest")
    mesh.set_rasterized(True)
    ax.contourf(grid_eta, grid_mu, code, levels=[1.5, 2.5], colors=[NEUTRAL], hatches=["xx"])
    ax.contourf(grid_eta, grid_mu, code, levels=[0.5, 1.5], colors="none", hatches=["///"])
    ax.contour(grid_eta, grid_mu, code, levels=[0.5, 1.5], colors="black", linewidths=1.0)
    for name in theory.REGIONS:
        face = NEUTRAL if name == "divergent" else "white"
        ax.fill([], [], fc=face, ec="black", hatch=REGION_HATCHES[name], label=name)
    best = theory.optimum(method, curvatures)
    if eta.min() <= best.lr <= eta.max() and mu.min() <= best.momentum <= mu.max():
        ax.plot(best.lr, best.momentum, "*", ms=15, mfc="white", mec="black", label="optimum")
    ax.set_xscale("log")
    ax.set(xlabel=LR_LABEL, ylabel="momentum μ (no unit)", xlim=(eta.min(), eta.max()))
    ax.set_ylim(mu.min(), mu.max())
    return mesh


def stability_table(
    sharpness: Mapping[str, Any],
    sweep: Any,
    methods: Mapping[str, str],
    momentum: float,
    *,
    columns: Sequence[str],
) -> tuple[Any, dict[str, list[float]]]:
    r"""The quadratic's stability limits at measured curvatures beside a sweep's failures.

    For each optimizer key of ``methods`` (its method in
    :data:`fashion_optim.theory.METHODS`): :math:`\lambda_{max}` at each snapshot of
    ``sharpness[key]`` (a :class:`~fashion_optim.experiments.Sharpness`), the tightest
    of the limits they set (:func:`fashion_optim.theory.stability_limit`, with
    ``momentum`` for heavy ball and Nesterov; infinite where :math:`\lambda_{max} \le 0`),
    and from ``sweep`` (a :class:`~fashion_optim.experiments.Sweep`) the largest rate at
    which no seed failed and the next larger rate of the grid, at which one did
    (infinite when none did).

    Returns
    -------
    pandas.DataFrame
        One row per key: ``columns`` (the :math:`\lambda_{max}` of each snapshot),
        ``"limit"``, ``"no failure up to"``, ``"next, failed"``.
    dict of str to list of float
        Each key's limit at each snapshot (for :func:`stability_strips`).
    """
    import pandas as pd

    rows, limits = {}, {}
    for key, method in methods.items():
        values = np.asarray(sharpness[key].values, dtype=float)
        mu = 0.0 if method == "gd" else momentum
        limits[key] = [
            theory.stability_limit(method, [lam], mu) if lam > 0 else np.inf for lam in values
        ]
        curve = sweep.curve(key)
        failed = curve["diverged"] + curve["collapsed"] > 0
        safe = sweep.largest_stable_rate(key)
        above = curve["lr"][failed & (curve["lr"] > safe)]
        rows[key] = dict(zip(columns, values, strict=True))
        rows[key] |= {"limit": min(limits[key]), "no failure up to": safe}
        rows[key]["next, failed"] = float(above.min()) if above.size else np.inf
    return pd.DataFrame(rows).T, limits


def stability_strips(
    ax: Axes,
    sweep: Any,
    limits: Mapping[str, ArrayLike],
    *,
    labels: Mapping[str, str] | None = None,
    limit_labels: Sequence[str] = (),
) -> list[Line2D]:
    """One row per optimizer on a log learning-rate axis: the rates a sweep trained
    (a dot where no seed failed, a black cross where one diverged, a grey one where one
    collapsed to chance and none diverged) beside the learning rates
    at which the quadratic's theory stops converging (vertical bars in the optimizer's
    colour, :func:`fashion_optim.theory.stability_limit` at measured curvatures).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    sweep : ~fashion_optim.experiments.Sweep
        Its ``curve(key)`` gives the rates and the failed seeds of each row.
    limits : mapping of str to array_like
        By optimizer key (a :data:`~fashion_optim.plotting.COLORS` name such as
        ``"sgd"``), top row first: the predicted limits (infinite ones left out).
    labels : mapping of str to str, optional
        Row labels; default the keys.
    limit_labels : sequence of str
        A short label by each limit bar, in the order of ``limits``' values (e.g. the
        epoch of the curvature it comes from).

    Returns
    -------
    list of matplotlib.lines.Line2D
        Legend handles for the markers (for :func:`legend_below`).
    """
    keys = list(limits)
    for row, key in enumerate(keys):
        y = len(keys) - 1 - row
        curve = sweep.curve(key)
        lr = np.asarray(curve["lr"], dtype=float)
        diverged, collapsed = curve["diverged"] > 0, curve["collapsed"] > 0
        ok = ~(diverged | collapsed)
        color = color_for(key)
        ax.axhline(y, color=NEUTRAL, lw=0.6, zorder=0)
        ax.plot(lr[ok], np.full(ok.sum(), y), "o", color=color, ms=7, ls="none")
        only = collapsed & ~diverged
        ax.plot(lr[only], np.full(only.sum(), y), "x", color=NEUTRAL, ms=8, mew=2, ls="none")
        ax.plot(lr[diverged], np.full(diverged.sum(), y), "x", c="black", ms=8, mew=2, ls="none")
        for i, value in enumerate(np.asarray(limits[key], dtype=float)):
            if not np.isfinite(value):
                continue
            ax.plot(value, y, "|", color=color, ms=22, mew=2.5)
            if i < len(limit_labels):
                ax.annotate(
                    limit_labels[i],
                    (value, y),
                    xytext=(0, 13 + 7 * i if i % 2 == 0 else -22),
                    textcoords="offset points",
                    ha="center",
                    fontsize="x-small",
                    color=color,
                )
    ax.set_xscale("log")
    ax.set_yticks(range(len(keys)), [(labels or {}).get(k, k) for k in reversed(keys)])
    ax.set_ylim(-0.6, len(keys) - 0.3)
    ax.set_xlabel(LR_LABEL)
    return [
        Line2D([], [], marker="o", color=NEUTRAL, ls="none", label="no seed failed"),
        Line2D([], [], marker="x", color="black", mew=2, ls="none", label="a seed diverged"),
        Line2D([], [], marker="x", color=NEUTRAL, mew=2, ls="none", label="a seed stuck at chance"),
        Line2D(
            [],
            [],
            marker="|",
            color=NEUTRAL,
            ms=14,
            mew=2.5,
            ls="none",
            label="the quadratic's limit at the measured λ_max",
        ),
    ]
