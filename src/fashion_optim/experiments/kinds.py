"""The registry of cached kinds: each kind of cached computation is one class, in its
own module, that states its key's configuration, the parts a worker computes and how the
stored arrays become its typed result. :func:`~fashion_optim.experiments.run_many`
computes any mix of them in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from .curvature import SharpnessTask
from .rangetest import RangeTestTask
from .surface import RandomPlaneTask, TrajectorySurfaceTask
from .train import RunTask

__all__ = ["KINDS", "Part", "Task"]

Entry = tuple[dict[str, np.ndarray], dict[str, Any]]


class Part(Protocol):
    """What a worker computes: picklable, with a cost (the order of the batch: the
    longest first) and a label (for messages)."""

    label: str

    @property
    def cost(self) -> int: ...

    def compute(self, **kwargs: Any) -> Entry:
        """The arrays and metadata; ``kwargs`` may hold ``progress`` and
        ``extra_recorders`` (a training part reports its steps through them)."""


class Task(Protocol):
    """One cached computation of a kind (a class of :data:`KINDS`)."""

    kind: str
    label: str

    def key_config(self) -> dict[str, Any]:
        """The configuration its cache key covers (with the kind's code, torch's version,
        the data's checksum and the device type)."""

    def plan(self, lookup: Callable[[str, Mapping[str, Any]], Entry | None]) -> list[Any] | Entry:
        """The parts to compute (in any process), or the entry itself when the cache
        already implies it; ``lookup(kind, config)`` reads other entries."""

    def merge(self, parts: Sequence[Entry]) -> Entry:
        """The entry, from the parts' results in the order :meth:`plan` gave them."""

    def load(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Any:
        """The typed result of an entry (the array names are the kind's alone)."""


#: Each kind of cached computation by name (its cache folder) and its task class; the
#: module that defines the class is the code its key covers.
KINDS: dict[str, type] = {
    cls.kind: cls
    for cls in (RunTask, RangeTestTask, TrajectorySurfaceTask, RandomPlaneTask, SharpnessTask)
}
