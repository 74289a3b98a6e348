"""Numbers for the reader: \"mean ± std\" text, results tables (HTML in the gallery and
the note), and how often a recorded learning rate went down."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import record


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


def log_median(values: ArrayLike) -> float:
    """The median on a log scale: of two values, their geometric mean.

    The middle of rates that span decades, e.g. one learning rate per seed.

    Examples
    --------
    >>> round(log_median([1e-3, 1e-1]), 12)
    0.01
    >>> round(log_median([1e-4, 1e-2, 1.0]), 12)
    0.01
    """
    return float(np.exp(np.median(np.log(np.asarray(values, dtype=np.float64)))))


def per_seed_table(runs: Any, metric: str = "val_acc", *, digits: int = 4) -> Any:
    """A ``pandas.DataFrame``, one row per seed and one column per configuration: each
    seed's final ``metric`` (a history field's last value, or ``"test_acc"``), as text.

    Parameters
    ----------
    runs : mapping of str to ~fashion_optim.experiments.SeedResults
        Column label to its results; a seed missing from one is ``"nan"`` there.
    metric : str
    digits : int

    Examples
    --------
    >>> table = per_seed_table({"constant": results})  # doctest: +SKIP
    """
    import pandas as pd

    columns = {label: pd.Series(res.per_seed(metric), res.seeds) for label, res in runs.items()}
    return pd.DataFrame(columns).rename_axis("seed").map(f"{{:.{digits}f}}".format)


def largest_change(results: Any, since: Any, fields: Any) -> list[float]:
    """Per history field, the largest change on any seed from epoch ``since[seed]`` to
    the end: ``max |field[-1] - field[since[seed]]|`` over the runs (0-based epochs).

    Parameters
    ----------
    results : sequence of fashion_optim.experiments.Result
        Runs with a ``seed`` and a ``history``.
    since : mapping of int to int
        The starting epoch (an index into the history) of each seed.
    fields : sequence of str
        :class:`~fashion_optim.training.History` fields.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> runs = [NS(seed=0, history=NS(val_acc=[0.5, 0.7, 0.8])),
    ...         NS(seed=1, history=NS(val_acc=[0.5, 0.6, 0.55]))]
    >>> [round(x, 6) for x in largest_change(runs, {0: 1, 1: 1}, ["val_acc"])]
    [0.1]
    """
    return [
        max(
            abs(float(getattr(r.history, f)[-1]) - float(getattr(r.history, f)[since[r.seed]]))
            for r in results
        )
        for f in fields
    ]


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


def say(text: str, width: int = 79) -> None:
    """Print ``text`` wrapped to ``width`` columns: a page's computed sentence, which
    fits the code box's output at the site's width.

    Examples
    --------
    >>> say("SGD + momentum reaches 0.9012 on validation, Adam 0.8998.")
    SGD + momentum reaches 0.9012 on validation, Adam 0.8998.
    """
    print(textwrap.fill(text, width))
    record.note_text(text)  # the build's record of what the pages print


def seed_table(outcomes: Any, *, digits: int = 4) -> Any:
    """A ``pandas.DataFrame``, one row per configuration and one column per seed: the final
    validation and test accuracy of each seed (``"0.9012 / 0.8975"``), ``"diverged"``
    for a seed that diverged and ``(collapsed)`` after one that collapsed. The whole
    record of a build, to compare with another machine's.

    Parameters
    ----------
    outcomes : mapping of str to ~fashion_optim.experiments.SeedOutcomes
        Row label to the configuration's outcomes.
    digits : int

    Examples
    --------
    >>> table = seed_table({})  # doctest: +SKIP
    """
    import pandas as pd

    rows = {}
    for label, out in outcomes.items():
        collapsed = {seed for seed, _ in getattr(out, "collapsed", ())}
        row = {}
        for r in out.finished:
            text = f"{float(r.history.val_acc[-1]):.{digits}f} / {r.test_acc:.{digits}f}"
            row[f"seed {r.seed}"] = text + (" (collapsed)" if r.seed in collapsed else "")
        for seed, _ in out.diverged:
            row[f"seed {seed}"] = "diverged"
        rows[label] = dict(sorted(row.items(), key=lambda kv: int(kv[0].split()[1])))
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("")
    return table.rename_axis(index=None, columns="validation / test accuracy")
