"""Choosing among configurations, on validation metrics only.

Every "best", "better variant", target or threshold on the site goes through
:func:`best_on_validation` or :func:`rank_on_validation`. Both refuse a test metric: the
test set reports the configurations chosen, once each; it never chooses. A candidate
given as ``None`` (for instance a learning rate at which a seed diverged) is not eligible.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

from .runner import SeedResults

__all__ = ["VALIDATION_METRICS", "best_on_validation", "rank_on_validation", "validation_score"]


#: The metrics a choice may be made on, and which way is better.
VALIDATION_METRICS: dict[str, str] = {"val_acc": "max", "val_loss": "min"}


def _check_metric(metric: str) -> None:
    if metric not in VALIDATION_METRICS:
        hint = (
            " Choices are made on validation data only; the test set reports the chosen "
            "configurations and never chooses."
            if "test" in str(metric)
            else ""
        )
        raise ValueError(
            f"cannot choose on {metric!r}: valid metrics are {sorted(VALIDATION_METRICS)}." + hint
        )


def validation_score(results: SeedResults, metric: str = "val_acc") -> float:
    """The mean over seeds of ``metric`` after the last epoch (the quantity chosen on)."""
    _check_metric(metric)
    return results.final(metric)[0]


def rank_on_validation(
    candidates: Mapping[Hashable, SeedResults | None], metric: str = "val_acc"
) -> list[Hashable]:
    """The keys of ``candidates``, best first by the mean final ``metric``; candidates that
    are ``None`` or whose score is NaN are left out.

    Examples
    --------
    >>> rank_on_validation({}, "val_acc")
    []
    >>> rank_on_validation({}, "test_acc")
    Traceback (most recent call last):
    ...
    ValueError: cannot choose on 'test_acc': valid metrics are ['val_acc', 'val_loss']. ...
    """
    _check_metric(metric)
    scores = {k: validation_score(v, metric) for k, v in candidates.items() if v is not None}
    scores = {k: s for k, s in scores.items() if not math.isnan(s)}
    sign = -1.0 if VALIDATION_METRICS[metric] == "max" else 1.0
    return sorted(scores, key=lambda k: sign * scores[k])  # stable: ties keep their order


def best_on_validation(
    candidates: Mapping[Hashable, SeedResults | None], metric: str = "val_acc"
) -> Hashable:
    """The key of the candidate with the best mean final ``metric`` over seeds (the first
    one given, on a tie). Raises :class:`ValueError` when no candidate is eligible."""
    ranked = rank_on_validation(candidates, metric)
    if not ranked:
        raise ValueError(
            f"no eligible candidate among {len(candidates)} (each is None or has no "
            f"finite {metric}); train at least one configuration without divergence."
        )
    return ranked[0]
