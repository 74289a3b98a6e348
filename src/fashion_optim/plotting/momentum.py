"""Momentum as a larger step: where plain SGD at :math:`\\eta/(1-\\mu)` reaches what heavy-ball
momentum reaches, and where it does not, in sentences computed from the runs
(:func:`larger_step_sentences`), so that every page that makes the claim makes it alike."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["larger_step_sentences"]


def _equal_effective_rates(rung: Any, key: str) -> list[tuple[float, float]]:
    """``(rate of key, rate of SGD)`` pairs of ``rung`` at equal effective rate."""
    from ..experiments import effective_lr  # plotting never trains; this only reads

    sgd_rates = [float(lr) for lr in rung.rates("sgd")]
    pairs = []
    for lr, point in sorted(rung.points[key].items()):
        target = effective_lr(point.spec)
        match = [s for s in sgd_rates if math.isclose(s, target, rel_tol=1e-3)]
        if match:
            pairs.append((float(lr), match[0]))
    return pairs


def larger_step_sentences(
    default: Mapping[str, Any],
    rung: Any = None,
    tuned: Mapping[str, Any] | None = None,
    *,
    names: Mapping[str, str] | None = None,
    keys: Sequence[str] = ("momentum", "nesterov"),
    alpha: float = 0.05,
) -> tuple[dict[str, Any], list[str]]:
    """Whether momentum's gain over plain SGD is its larger step, at three places.

    1. *At the default rate*: ``default["momentum"]`` against ``default["sgd"]`` and plain
       SGD at :math:`\\eta/(1-\\mu)` (``default["sgd_effective"]``): the share of the test
       accuracy gap the larger step closes, and momentum − SGD at the larger step, paired
       by seed (over the seeds both have).
    2. *Across the rates* (when ``rung`` is given): on ``rung`` (one rung of the tuning,
       a :class:`~fashion_optim.experiments.Sweep`), each of ``keys`` against SGD at the
       same effective rate, on final validation accuracy, paired by seed, at every rate
       where no seed of either failed; Holm's correction over all those comparisons.
    3. *Tuned* (when ``tuned`` is given): each of ``keys`` at its chosen rate against SGD
       at its own, on test accuracy, paired by seed, Holm-corrected.

    A difference is called resolved only where the corrected test resolves it.

    Parameters
    ----------
    default : mapping of str to ~fashion_optim.experiments.SeedResults
        ``"sgd"``, ``"momentum"``, ``"sgd_effective"`` at the default rate.
    rung : ~fashion_optim.experiments.Sweep, optional
        With the points of ``"sgd"`` and of ``keys``.
    tuned : mapping of str to ~fashion_optim.experiments.SeedResults or None, optional
        ``"sgd"`` and ``keys`` at their chosen rates (None where every seed failed).
    names : mapping of str to str, optional
        Display names by key.
    keys : sequence of str
        The momentum variants set against SGD.
    alpha : float

    Returns
    -------
    numbers : dict
        ``"closed"`` (share of the gap), ``"at_default"`` (the paired difference),
        ``"range"`` (key to the paired tests by effective rate), ``"tuned"`` (key to the
        paired test, when ``tuned`` is given), ``"holds"`` (by place: whether the larger
        step accounts for momentum's gain there).
    sentences : list of str
        One per place, and a last one that says where the claim holds.
    """
    from .. import stats
    from ..experiments import effective_lr

    missing = [k for k in ("sgd", "momentum", "sgd_effective") if k not in default]
    if missing:
        raise ValueError(f"default has no {missing}: give SGD, momentum and SGD at η/(1-μ).")
    names = {"sgd": "SGD", "momentum": "momentum", "nesterov": "Nesterov", **(names or {})}
    spec = default["momentum"].spec
    lr, mu, eff = spec.lr, spec.optimizer_kwargs.get("momentum", 0.0), effective_lr(spec)
    acc = {k: float(default[k].test_acc[0]) for k in ("sgd", "momentum", "sgd_effective")}
    gap = acc["momentum"] - acc["sgd"]
    closed = (acc["sgd_effective"] - acc["sgd"]) / gap if gap else math.nan
    at_default = stats.paired_by_seed(default["momentum"], default["sgd_effective"])
    ahead = {"default": ["momentum"] if at_default.excludes_zero and at_default.mean > 0 else []}
    sentences = [
        f"At η = {lr:g} (μ = {mu:g}), momentum reaches a test accuracy of "
        f"{acc['momentum']:.4f} against {acc['sgd']:.4f} for SGD; SGD at η/(1−μ) = "
        f"{eff:g} reaches {acc['sgd_effective']:.4f}, {closed:.0%} of the gap. Momentum "
        f"− SGD at η/(1−μ): {at_default} over {at_default.n} seeds, "
        + (
            "which the seeds resolve."
            if at_default.excludes_zero
            else "which the seeds do not tell from zero."
        )
    ]
    # across the rates: every effective rate both trained without a failed seed
    pairs, where = {}, {}
    for key in keys if rung is not None else ():
        if key not in rung.points:
            continue
        for lr_k, lr_sgd in _equal_effective_rates(rung, key):
            a, b = rung.points[key][lr_k], rung.points["sgd"][lr_sgd]
            if a.complete and b.complete:
                name = f"{key} at {lr_sgd:g}"
                pairs[name] = stats.paired_by_seed_values(a.results, b.results, "val_acc")
                where[name] = (key, lr_sgd)
    tests = stats.paired_tests(pairs, alpha) if pairs else {}
    by_key: dict[str, dict[float, Any]] = {}
    for name, test in tests.items():
        key, rate = where[name]
        by_key.setdefault(key, {})[rate] = test
    if rung is not None:
        ahead["range"] = [
            k
            for k in keys
            if any(t.resolved and t.difference.mean > 0 for t in by_key.get(k, {}).values())
        ]
    for key, found in by_key.items():
        means = np.array([t.difference.mean for t in found.values()])
        up = [r for r, t in found.items() if t.resolved and t.difference.mean > 0]
        down = [r for r, t in found.items() if t.resolved and t.difference.mean < 0]
        n = min(t.difference.n for t in found.values())
        tested = (
            f"after Holm's correction over {len(tests)} comparisons, {names[key]} is ahead "
            f"at {len(up)} of them"
            + (f" ({', '.join(f'{r:g}' for r in up)})" if up else "")
            + f" and behind at {len(down)}"
            if n >= stats.MIN_PAIRS
            else f"with {n} seeds no test is made, so none of them is resolved"
        )
        sentences.append(
            f"On the tuning's first rung, at the {len(found)} effective rates η/(1−μ) "
            f"where no seed of either failed, {names[key]} − SGD at the same effective "
            f"rate is {means.mean():+.4f} on validation on average ({means.min():+.4f} "
            f"to {means.max():+.4f}); {tested}."
        )
    numbers: dict[str, Any] = {"closed": closed, "at_default": at_default, "range": by_key}

    if tuned is not None:
        present = {k: tuned.get(k) for k in ("sgd", *keys) if tuned.get(k) is not None}
        if "sgd" in present:
            vs = {
                k: stats.paired_by_seed_values(present[k], present["sgd"])
                for k in keys
                if k in present
            }
            tuned_tests = stats.paired_tests(vs, alpha)
            numbers["tuned"] = tuned_tests
            ahead["tuned"] = [
                k for k, t in tuned_tests.items() if t.resolved and t.difference.mean > 0
            ]
            parts = [
                f"{names[k]} − SGD {t} ({'resolved' if t.resolved else 'not resolved'})"
                for k, t in tuned_tests.items()
            ]
            sentences.append(
                "Each at its rate chosen at the full budget, on test accuracy paired by "
                f"seed, Holm-corrected: {'; '.join(parts)}."
            )
    numbers["holds"] = {place: not keys_ahead for place, keys_ahead in ahead.items()}
    places = {
        "default": f"at η = {lr:g}",
        "range": "across the first rung's grid of rates",
        "tuned": "when each is tuned (SGD free to take any step on its grid)",
    }
    yes = [places[p] for p, keys_ahead in ahead.items() if not keys_ahead]
    verdict = []
    if yes:
        verdict.append(
            "Momentum keeps no resolved advantage over SGD with its larger step "
            + _and(yes)
            + ": there the larger step is what the seeds can see of momentum's gain"
        )
    for place, keys_ahead in ahead.items():
        if keys_ahead:
            who = _and([names[k] for k in keys_ahead])
            verdict.append(
                f"{who} {'keeps' if len(keys_ahead) == 1 else 'keep'} a resolved advantage "
                f"over SGD {places[place]}"
            )
    if any(ahead.values()):
        verdict[-1] += ": where one does, the averaged direction adds to the larger step"
    verdict = "; ".join(verdict) + "."
    verdict = verdict[0].upper() + verdict[1:]  # a name may start a sentence
    sentences.append(verdict)
    return numbers, sentences


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
