"""The learning-rate schedules' figures: one line style per schedule, its variants
included (:func:`schedule_style`), the rates a schedule sets (:func:`trace_schedules`,
drawn by :func:`schedule_traces`),
its learning curves against a reference schedule's (:func:`schedule_curves`), and the
comparison of schedules on one metric, in a given order (:func:`schedule_ranking`); a
step schedule's curves with its drops marked (:func:`step_decay_curves`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .axes import band, label_lr_axis
from .figures import learning_curves
from .style import NEUTRAL, color_for

#: Schedules that are another schedule written differently (``lambda_step``: StepLR as a
#: LambdaLR), with one part switched off (``onecycle_flat``: OneCycleLR without its
#: momentum cycle) or at another peak (``onecycle_base``: OneCycleLR peaking at the
#: constant rate), by the schedule they vary: drawn in its colour, in the line style of
#: :data:`VARIANT_LINES`, and hollow.
VARIANTS: dict[str, str] = {
    "lambda_step": "step",
    "onecycle_flat": "onecycle",
    "onecycle_base": "onecycle",
    "onecycle_base_flat": "onecycle",
}
#: The line style of each variant (a schedule itself is solid).
VARIANT_LINES: dict[str, str] = {
    "lambda_step": "--",
    "onecycle_flat": "--",
    "onecycle_base": "-.",
    "onecycle_base_flat": ":",
}

_METRIC_LABELS = {
    "val_acc": "validation accuracy (fraction)",
    "val_loss": "validation loss (nat)",
    "test_acc": "test accuracy (fraction)",
    "test_loss": "test loss (nat)",
}


def schedule_style(key: str) -> dict[str, Any]:
    """Line keyword arguments for schedule ``key``: its colour (a variant of
    :data:`VARIANTS` takes the colour of the schedule it varies) and its line style
    (:data:`VARIANT_LINES` for a variant, solid otherwise).

    Examples
    --------
    >>> schedule_style("lambda_step") == {"color": color_for("step"), "linestyle": "--"}
    True
    >>> schedule_style("cosine")["linestyle"]
    '-'
    """
    return {
        "color": color_for(VARIANTS.get(key, key)),
        "linestyle": VARIANT_LINES.get(key, "-"),
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


def trace_schedules(
    specs: Mapping[str, Any],
    epochs: int,
    steps_per_epoch: int,
    *,
    lr: float,
    metrics: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, np.ndarray]:
    """The rate of every mini-batch that each spec's scheduler sets, without training
    (:func:`~fashion_optim.lr.trace_lr`, stepped as the trainer steps it).

    A spec names its LambdaLR factor (a key of
    :data:`~fashion_optim.experiments.LR_LAMBDAS`); torch needs the function, so the
    name is replaced by it. A spec without a scheduler traces the constant rate.

    Parameters
    ----------
    specs : mapping of str to ~fashion_optim.experiments.Spec
        Schedule key to its spec (its ``scheduler`` and ``scheduler_kwargs`` are read).
    epochs, steps_per_epoch : int
        The shape of the run.
    lr : float
        The optimizer's initial rate.
    metrics : mapping of str to sequence of float, optional
        Per-epoch validation losses fed to ReduceLROnPlateau, by key (required for a
        ``"plateau"`` spec).

    Returns
    -------
    dict of str to numpy.ndarray, shape (epochs * steps_per_epoch,)

    Examples
    --------
    >>> from fashion_optim import experiments
    >>> specs = experiments.schedule_specs(0.01, 0.1)
    >>> traces = trace_schedules({"step": specs["step"]}, 4, 2, lr=0.01)
    >>> traces["step"].shape
    (8,)
    """
    from .. import lr as lr_schedules  # plotting never trains; a trace steps no model
    from ..experiments import LR_LAMBDAS
    from ..experiments.profiles import resolve_value

    traces = {}
    for key, spec in specs.items():
        kwargs = dict(resolve_value(spec.scheduler_kwargs))
        if "lr_lambda" in kwargs:
            kwargs["lr_lambda"] = LR_LAMBDAS[kwargs["lr_lambda"]]
        if spec.scheduler == "plateau":
            kwargs["metrics"] = (metrics or {})[key]
        name = spec.scheduler or "constant"
        traces[key] = lr_schedules.trace_lr(name, epochs, steps_per_epoch, lr=lr, **kwargs)
    return traces


def schedule_traces(
    traces: Mapping[str, Any],
    labels: Mapping[str, str],
    steps_per_epoch: int,
    *,
    per_batch: Collection[str] = (
        "cosine",
        "onecycle",
        "onecycle_flat",
        "onecycle_base",
        "onecycle_base_flat",
    ),
    reference: str = "constant",
) -> Figure:
    """Each schedule's learning rate against the epoch, one point per mini-batch, on a log
    axis: left the schedules stepped once an epoch, right those of ``per_batch``, stepped
    every mini-batch. ``reference`` is drawn on both, wide and pale, under the others;
    each schedule in :func:`schedule_style`, a legend below each panel.

    Parameters
    ----------
    traces : mapping of str to array_like, shape (epochs * steps_per_epoch,)
        Schedule key to the rate of each mini-batch
        (:func:`~fashion_optim.lr.trace_lr`).
    labels : mapping of str to str
        Legend entry of each key.
    steps_per_epoch : int
    per_batch : tuple of str
        The keys drawn on the right.
    reference : str
        The key drawn on both panels.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> traces = {"constant": np.full(6, 0.1), "onecycle": np.linspace(0.1, 1, 6)}
    >>> fig = schedule_traces(traces, {"constant": "c", "onecycle": "o"}, 3)
    >>> [len(ax.lines) for ax in fig.axes]
    [1, 2]
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 5.8))
    epochs = 0
    for key, rates in traces.items():
        rates = np.asarray(rates, dtype=np.float64)
        epochs = max(epochs, rates.size // steps_per_epoch)
        x = np.arange(1, rates.size + 1) / steps_per_epoch  # epochs, one point a batch
        wide = {"lw": 5, "alpha": 0.3} if key == reference else {}  # seen under the others
        sides = axes if key == reference else [axes[1] if key in per_batch else axes[0]]
        for ax in sides:
            ax.plot(x, rates, label=labels[key], **schedule_style(key), **wide)
    titles = ("stepped once an epoch", "stepped every mini-batch")
    for ax, title in zip(axes, titles, strict=True):
        label_lr_axis(ax, "y")
        ax.set(xlabel="epoch", title=title, xticks=range(epochs + 1))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=10.5)
    return fig


def schedule_curves(
    runs: Mapping[str, Any],
    metric: str = "val_acc",
    *,
    reference: str = "constant",
    reference_label: str = "the constant rate",
) -> Figure:
    """Left: each schedule's ``metric`` per epoch, mean over seeds. Right: each schedule
    minus ``reference``, seed by seed, mean ± one standard deviation
    (:func:`~fashion_optim.plotting.band`), for the schedules run on the reference's
    seeds; a line at zero in the reference's colour. One legend below the figure.

    Parameters
    ----------
    runs : mapping of str to ~fashion_optim.experiments.SeedResults
        Schedule key to its results; each spec's name is its legend entry.
    metric : str
        A per-epoch :class:`~fashion_optim.training.History` field.
    reference : str
        The key the right panel subtracts.
    reference_label : str
        How the right panel's axis names it.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = schedule_curves({"constant": constant, "step": step})  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    ref = runs[reference].stack(metric)
    x = np.arange(1, ref.shape[1] + 1)
    fig, (ax_mean, ax_diff) = plt.subplots(1, 2, figsize=(9.5, 4.4))
    for key, res in runs.items():
        style = {**schedule_style(key), "marker": "o", "ms": 3.5, "label": res.spec.name}
        ax_mean.plot(x, res.stack(metric).mean(axis=0), **style)
        if key != reference and res.seeds == runs[reference].seeds:
            band(ax_diff, x, res.stack(metric) - ref, alpha=0.1, **style)
    ax_diff.axhline(0.0, color=color_for(reference), lw=1.2)
    label = _METRIC_LABELS.get(metric, metric)
    unit = label[label.rfind("(") :] if "(" in label else ""
    ax_mean.set(xlabel="epoch", ylabel=label, xticks=x)
    ax_diff.set(xlabel="epoch", ylabel=f"minus {reference_label}'s {unit}".strip(), xticks=x)
    handles, names = ax_mean.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=3)
    return fig


def step_decay_curves(
    ax: Axes,
    runs: Mapping[str, Any],
    metric: str = "val_acc",
    *,
    step_size: int,
    labels: Mapping[str, str] | None = None,
) -> list[Any]:
    """A history field per epoch for each run, mean ± std over seeds
    (:func:`~fashion_optim.plotting.learning_curves`, with markers), a dotted line
    between the epochs where a step schedule of ``step_size`` drops the rate, a tick
    every ``step_size`` epochs, and the legend at the lower right.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    runs : mapping of str to ~fashion_optim.experiments.SeedResults
        Schedule key (sets the colour) to its results, all with the same epochs.
    metric : str
        A per-epoch :class:`~fashion_optim.training.History` field.
    step_size : int
        Epochs between drops.
    labels : mapping of str to str, optional
        Legend labels (default: each spec's name).

    Returns
    -------
    list of matplotlib.lines.Line2D
        The dotted lines, one per drop.

    Examples
    --------
    >>> drops = step_decay_curves(ax, {"step": step}, step_size=3)  # doctest: +SKIP
    """
    if step_size < 1:
        raise ValueError(f"step_size must be a whole number of epochs >= 1, got {step_size}.")
    learning_curves(ax, runs, metric, labels=labels, marker="o", ms=3)
    epochs = max(res.stack(metric).shape[1] for res in runs.values())
    drops = [
        ax.axvline(e + 0.5, color=NEUTRAL, lw=0.7, ls=":")
        for e in range(step_size, epochs, step_size)
    ]
    ax.set_xticks(range(0, epochs + 1, step_size))
    ax.legend(loc="lower right")
    return drops
