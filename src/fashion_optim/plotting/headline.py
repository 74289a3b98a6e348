"""The note's headline table: each optimizer at its default learning rate and at the rate
the sweep chose on validation, side by side (the home page and the results page)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .tables import mean_std

#: Shown in a cell that has no value (a row without a default-rate run).
MISSING = "—"


def rate_label(spec: Any) -> str:
    """The learning rate a spec trains at, as text: ``"0.01"``, or ``"peak 0.1"`` for
    OneCycleLR, whose rate is set by its ``max_lr`` rather than the spec's ``lr``.

    Examples
    --------
    >>> from fashion_optim.experiments import NAMED, full_budget_onecycle
    >>> rate_label(NAMED["adam"]), rate_label(full_budget_onecycle(0.3))
    ('0.001', 'peak 0.3')
    """
    if spec.scheduler == "onecycle":
        return f"peak {spec.scheduler_kwargs['max_lr']:g}"
    return f"{spec.lr:g}"


def _test_cell(outcomes: Any, digits: int) -> str:
    n = len(outcomes.finished) + len(outcomes.diverged)
    k = len(outcomes.diverged)
    if outcomes.results is None:
        return f"diverged ({k} of {n} seeds)"
    text = mean_std(outcomes.results.test_acc, digits)
    return f"{text} ({k} of {n} seeds diverged)" if k else text


def tuning_table(
    tuned: Mapping[str, Any],
    default: Mapping[str, Any] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    digits: int = 4,
) -> Any:
    """A ``pandas.DataFrame``, one row per key of ``tuned`` in its order: the default
    rate and its test accuracy, then the tuned rate, its final validation accuracy and
    its test accuracy (mean ± std over the seeds that finished).

    A tuned configuration may diverge for some seeds: its test cell says how many (and
    only "diverged" when every seed did). A key without a default-rate run shows a dash
    in the default columns.

    Parameters
    ----------
    tuned, default : mapping of str to ~fashion_optim.experiments.SeedOutcomes
        By key, as :func:`~fashion_optim.experiments.run_outcomes` returns them. The
        caller orders ``tuned`` (for instance by
        :func:`~fashion_optim.experiments.rank_on_validation`).
    labels : mapping of str to str, optional
        Row labels by key; otherwise the default run's spec name, or the tuned one's.
    digits : int

    Examples
    --------
    >>> table = tuning_table({})  # doctest: +SKIP
    """
    import pandas as pd

    default = default or {}
    labels = labels or {}
    columns = pd.MultiIndex.from_tuples(
        [
            ("default rate", "lr"),
            ("default rate", "test accuracy"),
            ("tuned on validation", "lr"),
            ("tuned on validation", "validation accuracy"),
            ("tuned on validation", "test accuracy"),
        ]
    )
    rows, index = [], []
    for key, out in tuned.items():
        base = default.get(key)
        index.append(labels.get(key, (base or out).spec.name))
        val = MISSING if out.results is None else mean_std(out.results.final("val_acc"), digits)
        rows.append(
            [
                MISSING if base is None else rate_label(base.spec),
                MISSING if base is None else _test_cell(base, digits),
                rate_label(out.spec),
                val,
                _test_cell(out, digits),
            ]
        )
    return pd.DataFrame(rows, index=pd.Index(index, name=None), columns=columns)
