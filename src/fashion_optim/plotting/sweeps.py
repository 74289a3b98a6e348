"""The learning-rate sweep's figure: a validation metric against the learning rate, one
band per optimizer, diverged seeds marked, each optimizer's chosen rate ringed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from .axes import label_lr_axis
from .style import color_for

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
    ±1 std band, an ``x`` above each rate at which a seed diverged (with their count),
    and a ring on the rate the sweep chooses on validation accuracy.

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
        y = top if top is not None else float(np.nanmax(mean))
        for i in np.flatnonzero(curve["diverged"]):
            ax.plot(x[i], y, marker="x", ms=7, mew=2, color=color, clip_on=False)
            ax.annotate(
                str(curve["diverged"][i]),
                (x[i], y),
                xytext=(4, 2),
                textcoords="offset points",
                color=color,
                fontsize="small",
            )
        best = sweep.best_rate(key) * scale
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
