"""The learning-rate sweep's figures: a validation metric against the learning rate, one
band per optimizer (:func:`sweep_curves`) or one curve per rung of the successive halving
(:func:`rung_curves`), failed seeds marked (diverged apart from collapsed), each chosen
rate ringed; and one rung's curve as a table (:func:`rung_table`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from .axes import label_lr_axis
from .style import color_for
from .tables import mean_std

_YLABELS = {
    "val_acc": "validation accuracy after the last epoch (fraction)",
    "val_loss": "validation loss after the last epoch (nat)",
    "train_loss": "training loss in the last epoch (nat)",
}


def sweep_curves(
    ax: Axes,
    sweep: Any,
    keys: Sequence[str],
    metric: str = "val_acc",
    *,
    effective: bool = False,
    labels: dict[str, str] | None = None,
) -> dict[str, float]:
    """Draw ``metric`` against the learning rate for each of ``keys`` of ``sweep`` (a
    :class:`~fashion_optim.experiments.Sweep`): the mean over finished seeds with a
    ±1 std band, an ``x`` on the top edge above each rate at which a seed diverged and a
    ``v`` on the bottom edge where one collapsed (each with its count), and a ring on the
    rate the sweep chooses on validation accuracy (none when every rate failed).

    With ``effective=True`` the horizontal axis is the effective rate
    :math:`\\eta/(1-\\mu)` (:func:`~fashion_optim.experiments.effective_lr`). Returns the
    chosen rate of each key (on the drawn axis's scale).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from fashion_optim import experiments
    >>> fig, ax = plt.subplots()
    >>> sweep = experiments.run_sweep(["sgd"])  # doctest: +SKIP
    >>> sweep_curves(ax, sweep, ["sgd"])  # doctest: +SKIP
    {'sgd': 0.1}
    """
    from ..experiments import effective_lr  # plotting never trains; this only reads

    chosen: dict[str, float] = {}
    top = 1.0 if metric == "val_acc" else None
    for key in keys:
        curve = sweep.curve(key, metric)
        spec = next(iter(sweep.points[key].values())).spec
        scale = effective_lr(spec) / spec.lr if effective else 1.0
        x = curve["lr"] * scale
        mean, std = curve["mean"], curve["std"]
        color = color_for(key)
        label = (labels or {}).get(key, key)
        ax.plot(x, mean, marker="o", ms=4, color=color, label=label)
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, lw=0)
        _mark_failures(ax, x, curve, color, top)
        try:
            best = sweep.best_rate(key) * scale
        except ValueError:  # every rate failed for some seed: nothing to ring
            continue
        i = int(np.argmin(np.abs(x - best)))
        ax.plot(best, mean[i], marker="o", ms=11, mfc="none", mew=2, color=color)
        chosen[key] = float(best)
    label_lr_axis(ax)
    if effective:
        ax.set_xlabel("effective learning rate η / (1 − μ)")
    ax.set_ylabel(_YLABELS.get(metric, metric))
    if metric == "val_loss":
        ax.set_yscale("log")
    return chosen


def _mark_failures(ax: Axes, x, curve: dict, color, top: float | None) -> None:
    """``x`` on the top edge for diverged seeds, ``v`` on the bottom edge for collapsed
    ones, each with its count (the edges in axes coordinates, so limits set later hold)."""
    edges = (("diverged", "x", 1.0, (4, 2)), ("collapsed", "v", 0.0, (4, 2)))
    for what, marker, y, offset in edges:
        counts = curve.get(what, np.zeros(len(x), int))
        for i in np.flatnonzero(counts):
            trans = ax.get_xaxis_transform()  # x in data, y in axes fraction
            ax.plot(
                x[i], y, marker=marker, ms=7, mew=2, color=color, clip_on=False, transform=trans
            )
            ax.annotate(
                str(counts[i]),
                (x[i], y),
                xytext=offset,
                xycoords=trans,
                textcoords="offset points",
                color=color,
                fontsize="small",
            )


#: Line styles of the rungs, first to last (the last, the full budget, solid).
RUNG_STYLES = (":", "--", "-")


def rung_curves(ax: Axes, tuning: Any, key: str, *, label: str | None = None) -> list[float]:
    """Validation accuracy against the learning rate after each rung of ``tuning`` (a
    :class:`~fashion_optim.experiments.Tuning`) for ``key``: one line per rung (dotted,
    dashed, solid: the last is the full budget), the mean over the seeds that finished
    with a ±1 std band, failed seeds marked as in :func:`sweep_curves`, and each rung's
    own choice ringed. Returns the rate each rung chose (NaN where every rate failed).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from fashion_optim import experiments
    >>> fig, ax = plt.subplots()
    >>> tuning = experiments.run_tuning(["adam"])  # doctest: +SKIP
    >>> rung_curves(ax, tuning, "adam")  # doctest: +SKIP
    [0.003162, 0.001, 0.001]
    """
    color = color_for(key)
    styles = RUNG_STYLES[-len(tuning.rungs) :] if len(tuning.rungs) <= 3 else None
    chosen = []
    for i, (rung, epochs) in enumerate(zip(tuning.rungs, tuning.epochs, strict=True)):
        curve = rung.curve(key, "val_acc")
        x, mean, std = curve["lr"], curve["mean"], curve["std"]
        style = styles[i] if styles else "-"
        alpha = 0.35 + 0.65 * (i + 1) / len(tuning.rungs)
        name = f"{epochs} epoch{'s' * (epochs > 1)}"
        ax.plot(
            x,
            mean,
            style,
            marker="o",
            ms=4,
            color=color,
            alpha=alpha,
            label=f"{label}, {name}" if label else name,
        )
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.12, lw=0)
        _mark_failures(ax, x, curve, color, 1.0)
        try:
            best = rung.best_rate(key)
        except ValueError:
            chosen.append(float("nan"))
            continue
        j = int(np.flatnonzero(x == best)[0])
        ax.plot(best, mean[j], marker="o", ms=11, mfc="none", mew=2, color=color, alpha=alpha)
        chosen.append(float(best))
    label_lr_axis(ax)
    ax.set_ylabel(_YLABELS["val_acc"])
    return chosen


def rung_table(curve: Mapping[str, Any], roles: Mapping[float, str] | None = None) -> Any:
    """A ``pandas.DataFrame``, one row per learning rate of a rung's curve: the validation
    accuracy (mean ± std over the seeds that finished), the seeds that diverged and
    collapsed, and the role a caller gave the rate (``roles``, e.g. ``"base"``).

    Parameters
    ----------
    curve : mapping
        What :meth:`Sweep.curve <fashion_optim.experiments.Sweep.curve>` returns for
        ``"val_acc"``: ``lr``, ``mean``, ``std``, ``diverged``, ``collapsed``.
    roles : mapping of float to str, optional
        The ``"chosen as"`` column, by rate (empty elsewhere).

    Examples
    --------
    >>> curve = {"lr": np.array([0.01, 0.1]), "mean": np.array([0.8, 0.85]),
    ...          "std": np.array([0.01, 0.02]), "diverged": np.array([0, 1]),
    ...          "collapsed": np.array([0, 0])}
    >>> rung_table(curve, {0.01: "base"}).iloc[:, [0, 3]].values.tolist()
    [['0.8000 ± 0.0100', 'base'], ['0.8500 ± 0.0200', '']]
    """
    import pandas as pd

    accs = zip(curve["mean"], curve["std"], strict=True)
    return pd.DataFrame(
        {
            "validation accuracy": [mean_std(pair) for pair in accs],
            "diverged seeds": curve["diverged"],
            "collapsed seeds": curve["collapsed"],
            "chosen as": [(roles or {}).get(rate, "") for rate in curve["lr"]],
        },
        index=pd.Index([f"{rate:g}" for rate in curve["lr"]], name="learning rate"),
    )
