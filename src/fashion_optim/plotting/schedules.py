"""The learning-rate schedules' figures: one line style per schedule, its variants
included, and the comparison of schedules on one metric, in a given order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes

from .style import color_for

#: Schedules that are another schedule written differently (``lambda_step``: StepLR as a
#: LambdaLR) or with one part switched off (``onecycle_flat``: OneCycleLR without its
#: momentum cycle), by the schedule they vary: drawn in its colour, dashed or hollow.
VARIANTS: dict[str, str] = {"lambda_step": "step", "onecycle_flat": "onecycle"}

_METRIC_LABELS = {
    "val_acc": "validation accuracy (fraction)",
    "val_loss": "validation loss (nat)",
    "test_acc": "test accuracy (fraction)",
    "test_loss": "test loss (nat)",
}


def schedule_style(key: str) -> dict[str, Any]:
    """Line keyword arguments for schedule ``key``: its colour (a variant of
    :data:`VARIANTS` takes the colour of the schedule it varies) and a dashed line for a
    variant, a solid one otherwise.

    Examples
    --------
    >>> schedule_style("lambda_step") == {"color": color_for("step"), "linestyle": "--"}
    True
    >>> schedule_style("cosine")["linestyle"]
    '-'
    """
    return {
        "color": color_for(VARIANTS.get(key, key)),
        "linestyle": "--" if key in VARIANTS else "-",
    }


def schedule_ranking(
    ax: Axes,
    runs: Mapping[str, Any],
    order: Sequence[str],
    metric: str = "val_acc",
    *,
    reference: str | None = "constant",
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Each schedule's final ``metric``, mean ± one standard deviation over seeds, as a
    dot with a horizontal bar, one row per key of ``order`` (the first at the top), with a
    dotted vertical line at the mean of ``reference``.

    The order is the caller's: choose it on validation
    (:func:`~fashion_optim.experiments.rank_on_validation`); this function only draws.
    Variants (:data:`VARIANTS`) are drawn hollow in the colour of the schedule they vary.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    runs : mapping of str to ~fashion_optim.experiments.SeedResults
        Schedule key (e.g. ``"step"``) to its results.
    order : sequence of str
        The keys to draw, top row first; each must be in ``runs``.
    metric : str
        ``"val_acc"``, ``"val_loss"`` (a history field's last value, per seed) or
        ``"test_acc"``, ``"test_loss"`` (to report the configurations chosen).
    reference : str or None
        A key of ``runs`` whose mean is drawn as a dotted line (None: no line).
    labels : mapping of str to str, optional
        Tick labels; default: each spec's name.

    Returns
    -------
    dict
        ``{key: ErrorbarContainer}``, and ``"reference"``: the line, when drawn.
    """
    missing = [k for k in [*order, *([reference] if reference else [])] if k not in runs]
    if missing:
        raise ValueError(f"order and reference name keys that runs lacks: {missing}.")
    drawn: dict[str, Any] = {}
    rows = list(order)[::-1]  # matplotlib counts rows from the bottom
    for y, key in enumerate(rows):
        res = runs[key]
        mean, std = getattr(res, metric) if metric.startswith("test_") else res.final(metric)
        color = schedule_style(key)["color"]
        drawn[key] = ax.errorbar(
            mean,
            y,
            xerr=std,
            fmt="o",
            ms=6,
            capsize=3,
            lw=1.5,
            color=color,
            markerfacecolor="white" if key in VARIANTS else color,
        )
    if reference is not None:
        res = runs[reference]
        mean = getattr(res, metric)[0] if metric.startswith("test_") else res.final(metric)[0]
        drawn["reference"] = ax.axvline(mean, color=color_for(reference), ls=":", lw=1.2)
    names = [(labels or {}).get(key, runs[key].spec.name) for key in rows]
    ax.set_yticks(range(len(rows)), names)
    ax.set_xlabel(f"{_METRIC_LABELS.get(metric, metric)}, mean ± std")
    ax.grid(axis="y", visible=False)
    ax.margins(y=0.08)
    return drawn
