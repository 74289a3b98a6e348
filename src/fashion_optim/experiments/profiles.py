"""Profiles: how big the runs are (seeds, data sizes), chosen by ``FASHION_OPTIM_PROFILE``.

``full`` (default)
    The published note: the whole 50,000-image training split, 3 seeds (5 for the
    configurations the note compares at the full budget).
``quick``
    For CI and a first look: a stratified subset, fewer epochs, 2 seeds (the compared
    configurations too: the pages then show the seeds, not intervals), the same code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["PROFILES", "PerProfile", "Profile", "current_profile", "resolve_value"]

ENV_PROFILE = "FASHION_OPTIM_PROFILE"


@dataclass(frozen=True)
class Profile:
    """How big the runs are: seeds, data sizes and an epoch budget.

    Attributes
    ----------
    name : str
    seeds : tuple of int
        The seeds every configuration is trained with.
    train_subset, val_subset : int or None
        Stratified subsets of the training and validation splits (None: all of it).
    description : str
    compare_seeds : tuple of int
        The seeds of the configurations the note compares at the full budget (each
        optimizer at its chosen and its default rate, the one-cycle run): ``seeds`` and
        more, so paired intervals over seeds have enough degrees of freedom. Empty:
        ``seeds``.
    """

    name: str
    seeds: tuple[int, ...]
    train_subset: int | None
    val_subset: int | None
    description: str = ""
    compare_seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.compare_seeds:
            object.__setattr__(self, "compare_seeds", tuple(self.seeds))
        missing = [s for s in self.seeds if s not in self.compare_seeds]
        if missing:
            raise ValueError(
                f"compare_seeds {self.compare_seeds} must hold every seed of seeds "
                f"{self.seeds} (missing {missing}): the compared runs extend the others."
            )


#: The profiles by name (see the module documentation).
PROFILES: dict[str, Profile] = {
    "full": Profile(
        "full",
        (0, 1, 2),
        None,
        None,
        "the published note: 50,000 training images, 3 seeds (5 where compared)",
        compare_seeds=(0, 1, 2, 3, 4),
    ),
    "quick": Profile(
        "quick",
        (0, 1),
        10000,
        2000,
        "CI and a first look: 10,000 training images, 2 seeds",
        compare_seeds=(0, 1),
    ),
}


def current_profile(name: Profile | str | None = None) -> Profile:
    """The profile given, or named, or by ``FASHION_OPTIM_PROFILE`` (default ``full``).

    Examples
    --------
    >>> current_profile("quick").seeds
    (0, 1)
    """
    if isinstance(name, Profile):
        return name
    source = "the argument" if name else ENV_PROFILE
    name = name or os.environ.get(ENV_PROFILE) or "full"
    try:
        return PROFILES[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r} (from {source}); valid choices: {sorted(PROFILES)}. "
            f"Set {ENV_PROFILE} to one of them, or unset it for 'full'."
        ) from None


@dataclass(frozen=True)
class PerProfile:
    """A value that differs per profile, e.g. ``PerProfile(full=15, quick=2)``.

    Examples
    --------
    >>> PerProfile(full=15, quick=2)(current_profile("quick"))
    2
    """

    full: Any
    quick: Any

    def __call__(self, profile: Profile | str | None = None) -> Any:
        return getattr(self, current_profile(profile).name)


def resolve_value(value: Any, profile: Profile | str | None = None) -> Any:
    """``value`` under ``profile``: a :class:`PerProfile` picks its entry, anything else
    is returned as it is."""
    return value(profile) if isinstance(value, PerProfile) else value
