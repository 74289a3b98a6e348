"""The note's headline: each optimizer at its default learning rate and at the rate chosen
on full-budget validation, side by side (:func:`tuning_table`), and the sentences that
name a leader only where the paired, corrected tests resolve it (:func:`leader_verdict`,
:func:`tuning_losses`, :func:`paired_test_lines`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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
    c = len(getattr(outcomes, "collapsed", ()))
    notes = [f"{k} of {n} seeds diverged"] * bool(k) + [f"{c} of {n} collapsed"] * bool(c)
    return f"{text} ({', '.join(notes)})" if notes else text


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


def join_names(names: Any) -> str:
    """``"A"``, ``"A and B"``, ``"A, B and C"``.

    Examples
    --------
    >>> join_names(["SGD", "Adam", "SGD + momentum"])
    'SGD, Adam and SGD + momentum'
    """
    names = list(names)
    if not names:
        return ""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def leader_verdict(
    results: Mapping[str, Any],
    names: Mapping[str, str],
    alpha: float = 0.05,
    among: str | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """Which configuration leads, in words, only where the numbers resolve it.

    The candidate is the best on validation (mean final accuracy over seeds, through
    :func:`~fashion_optim.experiments.rank_on_validation`); it is set against every other
    on the test set, paired by seed, with Holm's correction over those comparisons
    (:func:`~fashion_optim.stats.paired_tests`). The sentence names a leader only when
    every comparison is resolved in its favour; otherwise it names the configurations the
    seeds do not tell apart from it.

    Parameters
    ----------
    results : mapping of str to ~fashion_optim.experiments.SeedResults
        By key, the configurations compared (each over the same seeds).
    names : mapping of str to str
        Display names by key.
    alpha : float
    among : str, optional
        What the configurations are, when a page shows others beside them (e.g. "the
        four optimizers at their tuned constant rates"): the sentence then starts
        "Among ...", so that "the best validation accuracy" is not read as the page's.

    Returns
    -------
    key : str
        The candidate (best on validation).
    sentence : str
    tests : dict of str to ~fashion_optim.stats.PairedTest
        ``candidate - other`` on test accuracy, by the other's key.
    """
    from .. import stats
    from ..experiments import rank_on_validation

    ranked = rank_on_validation(results)
    if not ranked:
        raise ValueError("no configuration to compare: every one failed on every seed.")
    best = ranked[0]
    pairs = {k: stats.paired_by_seed_values(results[best], results[k]) for k in ranked[1:]}
    tests = stats.paired_tests(pairs, alpha) if pairs else {}
    n = min((t.difference.n for t in tests.values()), default=len(results[best].results))
    ahead = [k for k, t in tests.items() if t.resolved and t.difference.mean > 0]
    others = [k for k in tests if k not in ahead]
    lead = f"Among {among}, {names[best]}" if among else names[best]
    if not tests:
        return best, f"{lead} is the only configuration left to compare.", tests
    if n < stats.MIN_PAIRS:
        return (
            best,
            (
                f"{lead} has the best validation accuracy; with {n} seeds no interval "
                f"is drawn, so no leader is named (the seeds are shown instead)."
            ),
            tests,
        )
    m = len(tests)
    if not others:
        return (
            best,
            (
                f"{lead} leads: on the test set it is ahead of every other, each "
                f"difference resolved by a paired test over {n} seeds with Holm's correction "
                f"for {m} comparison{'s' * (m > 1)}."
            ),
            tests,
        )
    return (
        best,
        (
            f"{lead} has the best validation accuracy, but {n} seeds do not tell it "
            f"apart on the test set from {join_names(names[k] for k in others)} (paired by "
            f"seed, Holm's correction for {m} comparison{'s' * (m > 1)}): no leader is named."
        ),
        tests,
    )


def tuning_losses(
    default: Mapping[str, Any],
    tuned: Mapping[str, Any],
    names: Mapping[str, str],
    alpha: float = 0.05,
) -> str:
    """Sentences on what tuning did against each optimizer's default rate, paired by
    seed over the seeds both ran: on validation, the optimizers whose chosen rate did
    *worse* (or that none did); on the test set, the tuned minus default difference of
    each, with Holm's correction over them, naming a change only where it is resolved.
    A tuned rate equal to the default is left out.

    ``default`` and ``tuned`` map keys to
    :class:`~fashion_optim.experiments.SeedResults` (None where every seed failed).
    """
    from .. import stats

    val, pairs = {}, {}
    for k, res in tuned.items():
        base = default.get(k)
        if res is None or base is None or res.config == base.config:
            continue
        a, b = stats.paired_by_seed_values(res, base, "val_acc")
        val[k] = float(np.mean(a - b))
        pairs[k] = stats.paired_by_seed_values(res, base, "test_acc")
    worse = [f"{names[k]} ({gap:+.4f})" for k, gap in val.items() if gap < 0]
    if not worse:
        head = (
            "Tuning made no optimizer worse on validation than its default rate, paired "
            "over the seeds both ran (the default rate is among the candidates the choice "
            "is made from)."
        )
    else:
        head = (
            f"Tuning made {join_names(worse)} worse on validation than the default rate "
            "(mean difference over the seeds both ran)."
        )
    if not pairs:
        return head
    tests = stats.paired_tests(pairs, alpha)
    m, n = len(tests), min(t.difference.n for t in tests.values())
    each = "; ".join(f"{names[k]} {t}" for k, t in tests.items())
    down = [names[k] for k, t in tests.items() if t.resolved and t.difference.mean < 0]
    up = [names[k] for k, t in tests.items() if t.resolved and t.difference.mean > 0]
    if n < stats.MIN_PAIRS:
        verdict = f"with {n} seeds no interval is drawn"
    else:
        verdict = (f"resolved gains for {join_names(up)}" if up else "no resolved gain") + (
            f", resolved losses for {join_names(down)}" if down else ", no resolved loss"
        )
    return (
        f"{head} On the test set, tuned minus default rate over {n} paired seeds (Holm "
        f"over {m}): {each}; {verdict}."
    )


def paired_test_lines(
    outcomes: Mapping[str, Any], pairs: Sequence[tuple[str, str]], labels: Any
) -> list[str]:
    """Printed lines for configurations compared on the test set: for each pair ``(a,
    b)`` of keys whose configurations both have a finished seed, the test accuracy of
    ``a`` minus ``b`` paired by seed, with Holm's correction over those pairs
    (:func:`~fashion_optim.stats.paired_tests`) and whether it is resolved, then each
    shared seed's McNemar p-value over the test images
    (:func:`~fashion_optim.stats.mcnemar`).

    Parameters
    ----------
    outcomes : mapping of str to ~fashion_optim.experiments.SeedOutcomes
        By key; each finished run carries its ``test_predictions``.
    pairs : sequence of (str, str)
        The comparisons ``a - b``; a pair with a configuration that never finished is
        left out (and not counted in the correction).
    labels : array_like
        The test images' true classes.

    Returns
    -------
    list of str
        Two lines per pair: ``"test acc., a minus b: <interval>, resolved"`` and
        ``"  McNemar, seeds with p < 0.05: ..."`` (:func:`mcnemar_summary`).
    """
    from .. import stats

    ok = [(a, b) for a, b in pairs if outcomes[a].finished and outcomes[b].finished]
    tests = stats.paired_tests(
        {
            f"{a} minus {b}": stats.paired_by_seed_values(outcomes[a].results, outcomes[b].results)
            for a, b in ok
        }
    )
    lines = []
    for (a, b), (name, t) in zip(ok, tests.items(), strict=True):
        other = {r.seed: r.test_predictions for r in outcomes[b].finished}
        mc = [
            stats.mcnemar(r.test_predictions, other[r.seed], labels)
            for r in outcomes[a].finished
            if r.seed in other
        ]
        lines.append(f"test acc., {name}: {t}, {'resolved' if t.resolved else 'not resolved'}")
        lines.append(f"  McNemar, seeds with p < 0.05: {mcnemar_summary(mc)}")
    return lines


def mcnemar_summary(tests: Any, alpha: float = 0.05) -> str:
    """One short table cell for per-seed McNemar tests (:func:`fashion_optim.stats.mcnemar`):
    how many seeds' tests fall below ``alpha`` (uncorrected; the column's header names
    ``alpha``) and the largest p-value, so a table stays within the page's column however
    many seeds it has.

    Examples
    --------
    >>> from fashion_optim.stats import McNemar
    >>> mcnemar_summary([McNemar(30, 10, 10000, 0.002), McNemar(12, 10, 10000, 0.83)])
    '1/2, max p 0.83'
    """
    tests = list(tests)
    if not tests:
        return "—"
    below = sum(t.pvalue < alpha for t in tests)
    return f"{below}/{len(tests)}, max p {max(t.pvalue for t in tests):.2g}"


def drift_summary(tuning: Any, names: Mapping[str, str]) -> str:
    """A sentence on how each optimizer's choice moved from the tuning's first rung to
    the full budget: which kept their rate, and, for the others, whether the first rung
    chose a larger or a smaller rate (the direction of the short horizon's bias here).

    ``tuning`` is a :class:`~fashion_optim.experiments.Tuning`; ``names`` maps its keys
    to display names.
    """
    same, larger, smaller = [], [], []
    for key in tuning.keys:
        early, chosen = tuning.first_rung_choice(key), tuning.best_rate(key)
        if early == chosen:
            same.append(names[key])
        else:
            (larger if early > chosen else smaller).append(
                f"{names[key]} ({early:g} against {chosen:g})"
            )
    parts = []
    if same:
        parts.append(f"the first rung alone chose the full budget's rate for {join_names(same)}")
    if larger:
        parts.append(f"it chose a larger rate for {join_names(larger)}")
    if smaller:
        parts.append(f"a smaller one for {join_names(smaller)}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
