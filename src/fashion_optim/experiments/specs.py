"""What to train: :class:`Spec` (a configuration, fields may differ per profile), its
resolved and validated form :class:`RunConfig`, and the optimizer and scheduler it builds.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import lr as lr_module
from .. import optimizers as scratch
from ..models import make_model
from ..recorders import (
    AdamQuantileRecorder,
    GradientRecorder,
    OptimizerStateRecorder,
    ParameterRecorder,
    check_quantile_levels,
)
from ..training import Recorder
from .profiles import Profile, current_profile, resolve_value

__all__ = [
    "ADAM_LIKE",
    "LR_LAMBDAS",
    "OPTIMIZERS",
    "Record",
    "RunConfig",
    "Spec",
    "build_optimizer",
    "build_scheduler",
    "check_seed",
]

#: Torch's optimizers by name, and the package's from-scratch teaching versions
#: (``scratch_sgd``, ``scratch_adam``).
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "scratch_sgd": scratch.SGD,
    "scratch_adam": scratch.Adam,
}


#: The optimizers whose state has Adam's moments (``exp_avg``, ``exp_avg_sq``): those a
#: :class:`Record` with ``layer_quantiles`` can summarise.
ADAM_LIKE: tuple[str, ...] = ("adam", "adamw", "scratch_adam")


def _linear_decay(epoch: int) -> float:
    return max(0.0, 1.0 - epoch / 20.0)


def _warmup_then_inverse_sqrt(epoch: int) -> float:
    return min(1.0, (epoch + 1) / 2.0) / max(1.0, (epoch + 1) / 2.0) ** 0.5


def _exp_095(epoch: int) -> float:
    return 0.95**epoch


def _tenfold_drop(epoch: int, every: int) -> float:
    return 0.1 ** (epoch // every)


#: Named multiplicative factors for ``LambdaLR`` (a spec must stay serialisable).
#: ``"x0.1_every_k"`` is ``0.1 ** (epoch // k)``, the factor of ``StepLR(k, gamma=0.1)``.
LR_LAMBDAS: dict[str, Callable[[int], float]] = {
    "linear_decay_20": _linear_decay,
    "warmup_inverse_sqrt": _warmup_then_inverse_sqrt,
    "exp_0.95": _exp_095,
    **{f"x0.1_every_{k}": functools.partial(_tenfold_drop, every=k) for k in range(1, 6)},
}


@dataclass(frozen=True)
class Record:
    """What to record while training.

    Attributes
    ----------
    gradients : mapping
        Parameter name to flat indices (or None for the whole tensor): per-step gradients
        (and the layer's gradient norm).
    state : mapping
        Parameter name to flat indices: per-step optimizer state (``state_keys``).
    state_keys : tuple of str, optional
        e.g. ``("exp_avg", "exp_avg_sq")``; default: every tensor entry.
    snapshot_every : int or None
        Snapshot all parameters every this many steps (for trajectories).
    layer_quantiles : tuple of float, optional
        Quantile levels in [0, 1]: per parameter tensor, these quantiles over all its
        weights of Adam's adapted step and effective rate
        (:class:`~fashion_optim.recorders.AdamQuantileRecorder`; optimizers of
        :data:`ADAM_LIKE` only).
    layer_quantiles_every : int
        Record the layer quantiles every this many steps (and after the last).
    """

    gradients: Mapping[str, Sequence[int] | None] = field(default_factory=dict)
    state: Mapping[str, Sequence[int] | None] = field(default_factory=dict)
    state_keys: tuple[str, ...] | None = None
    snapshot_every: int | None = None
    layer_quantiles: tuple[float, ...] | None = None
    layer_quantiles_every: int = 1

    def __post_init__(self) -> None:
        if self.layer_quantiles is not None:
            levels = check_quantile_levels(self.layer_quantiles)
            object.__setattr__(self, "layer_quantiles", levels)  # a tuple of floats
        every = self.layer_quantiles_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"layer_quantiles_every must be an integer >= 1, got {every!r}.")

    def recorders(self) -> list[Recorder]:
        """Fresh recorders for one run."""
        out: list[Recorder] = []
        if self.gradients:
            out.append(GradientRecorder(self.gradients))
        if self.state:
            out.append(OptimizerStateRecorder(self.state, self.state_keys))
        if self.snapshot_every:
            out.append(ParameterRecorder(self.snapshot_every))
        if self.layer_quantiles:
            out.append(AdamQuantileRecorder(self.layer_quantiles, self.layer_quantiles_every))
        return out

    def to_dict(self) -> dict[str, Any]:
        """As plain JSON-able data (part of a run's cache key)."""

        def flat(v: Sequence[int] | None) -> list[int] | None:
            return None if v is None else [int(i) for i in v]

        return {
            "gradients": {k: flat(v) for k, v in self.gradients.items()},
            "state": {k: flat(v) for k, v in self.state.items()},
            "state_keys": list(self.state_keys) if self.state_keys else None,
            "snapshot_every": self.snapshot_every,
            "layer_quantiles": list(self.layer_quantiles) if self.layer_quantiles else None,
            "layer_quantiles_every": self.layer_quantiles_every,
        }


@dataclass(frozen=True)
class RunConfig:
    """A :class:`Spec` resolved under one profile and validated: what a run trains.

    Attributes
    ----------
    optimizer : str
    lr : float
    optimizer_kwargs, scheduler_kwargs : dict
    scheduler : str or None
    epochs, batch_size : int
    dropout : float
    train_subset, val_subset : int or None
    record : Record
    """

    optimizer: str
    lr: float
    optimizer_kwargs: dict[str, Any]
    scheduler: str | None
    scheduler_kwargs: dict[str, Any]
    epochs: int
    batch_size: int
    dropout: float
    train_subset: int | None
    val_subset: int | None
    record: Record

    def to_dict(self) -> dict[str, Any]:
        """As plain JSON-able data (a run's cache key is built from it)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["optimizer_kwargs"] = dict(self.optimizer_kwargs)
        out["scheduler_kwargs"] = dict(self.scheduler_kwargs)
        out["record"] = self.record.to_dict()
        return out


@dataclass(frozen=True)
class Spec:
    """One training configuration. Any field may be a
    :class:`~fashion_optim.experiments.PerProfile`.

    Attributes
    ----------
    name : str
        A label (not part of the cache key: two names for one configuration share it).
    optimizer : str
        A key of :data:`OPTIMIZERS`.
    lr : float
    optimizer_kwargs : mapping
        e.g. ``{"momentum": 0.9, "nesterov": True}``.
    scheduler : str or None
        A name understood by :func:`fashion_optim.lr.make_scheduler`.
    scheduler_kwargs : mapping
        For ``"lambda"``, ``lr_lambda`` names an entry of :data:`LR_LAMBDAS`.
    epochs, batch_size : int
    dropout : float
    record : Record
    train_subset, val_subset : int or None, optional
        Override the profile's subsets.

    Examples
    --------
    >>> spec = Spec("momentum", lr=0.01, optimizer_kwargs={"momentum": 0.9}, epochs=2)
    >>> spec.resolve("quick").train_subset
    10000
    """

    name: str
    optimizer: str = "sgd"
    lr: Any = 0.01
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    scheduler: str | None = None
    scheduler_kwargs: Mapping[str, Any] = field(default_factory=dict)
    epochs: Any = 10
    batch_size: int = 128
    dropout: float = 0.0
    record: Record = field(default_factory=Record)
    train_subset: Any = "profile"
    val_subset: Any = "profile"

    def replace(self, **changes: Any) -> Spec:
        """A copy with ``changes`` (as ``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def resolve(self, profile: Profile | str | None = None) -> RunConfig:
        """The concrete, validated configuration under ``profile``.

        Raises :class:`ValueError` naming the field, its value and what is allowed, before
        any data is loaded.
        """
        profile = current_profile(profile)
        values = {
            f.name: resolve_value(getattr(self, f.name), profile)
            for f in dataclasses.fields(self)
            if f.name != "name"
        }
        for part in ("train_subset", "val_subset"):
            if values[part] == "profile":
                values[part] = getattr(profile, part)
        values["optimizer_kwargs"] = dict(values["optimizer_kwargs"])
        values["scheduler_kwargs"] = dict(values["scheduler_kwargs"])
        cfg = RunConfig(**values)
        _validate(cfg)
        return cfg


#: Seeds are integers in [0, SEED_LIMIT): every generator seeded from them (torch's, and
#: the data order's, which multiplies the seed) takes any of them.
SEED_LIMIT = 2**32
#: The largest learning rate a spec may ask for: beyond it a step only overflows.
MAX_LR = 1e3
#: The sizes of the training and validation splits (see
#: :func:`fashion_optim.data.make_splits`): a subset can be at most these.
SPLIT_SIZES = {"train_subset": 50_000, "val_subset": 10_000}
#: Scheduler settings that count steps or epochs: integers >= 1.
_COUNTS = ("step_size", "T_0", "T_max", "T_mult", "step_size_up", "step_size_down", "total_steps")


def check_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` if it is an integer in [0, 2**32), else :class:`ValueError` (or
    :class:`TypeError` for a non-integer) naming ``what`` and the valid range."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"{what} must be an int, got {seed!r}.")
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{what} must be an integer in [0, 2**32 - 1], got {seed}.")
    return seed


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


@functools.cache
def _parameter_sizes() -> dict[str, int]:
    """Each parameter of the model a run trains: its name and element count."""
    return {name: p.numel() for name, p in make_model("lenet").named_parameters()}


def _check_record(record: Record) -> None:
    """Every parameter a :class:`Record` names exists, and its indices are in range."""
    sizes = _parameter_sizes()
    for part in ("gradients", "state"):
        for name, indices in getattr(record, part).items():
            if name not in sizes:
                raise ValueError(
                    f"record.{part} names no parameter of the model: {name!r}; valid names: "
                    f"{sorted(sizes)}."
                )
            for i in indices if indices is not None else ():
                if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < sizes[name]:
                    raise ValueError(
                        f"record.{part}[{name!r}] holds index {i!r}; valid flat indices of "
                        f"{name!r} are integers in [0, {sizes[name] - 1}]."
                    )
    every = record.snapshot_every
    if every is not None and not _is_count(every):
        raise ValueError(f"record.snapshot_every must be None or an integer >= 1, got {every!r}.")


def _validate(cfg: RunConfig) -> None:
    if not isinstance(cfg.optimizer, str) or cfg.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {cfg.optimizer!r}; valid choices: {sorted(OPTIMIZERS)}."
        )
    if not (_is_number(cfg.lr) and math.isfinite(cfg.lr) and 0 < cfg.lr <= MAX_LR):
        raise ValueError(f"lr must be a finite number in (0, {MAX_LR:g}], got {cfg.lr!r}.")
    if not _is_count(cfg.epochs):
        raise ValueError(f"epochs must be an integer >= 1, got {cfg.epochs!r}.")
    if not _is_count(cfg.batch_size):
        raise ValueError(f"batch_size must be an integer >= 1, got {cfg.batch_size!r}.")
    if not (_is_number(cfg.dropout) and 0 <= cfg.dropout < 1):
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout!r}.")
    for part, most in SPLIT_SIZES.items():
        size = getattr(cfg, part)
        if size is not None and not (_is_count(size) and size <= most):
            raise ValueError(
                f"{part} must be None (the whole split) or an integer in [1, {most}], got {size!r}."
            )
    if cfg.scheduler is not None and (
        not isinstance(cfg.scheduler, str) or cfg.scheduler.lower() not in lr_module.SCHEDULERS
    ):
        raise ValueError(
            f"unknown scheduler {cfg.scheduler!r}; valid choices: {sorted(lr_module.SCHEDULERS)}."
        )
    for name in _COUNTS:
        value = cfg.scheduler_kwargs.get(name)
        if name in cfg.scheduler_kwargs and not _is_count(value):
            raise ValueError(f"scheduler_kwargs[{name!r}] must be an integer >= 1, got {value!r}.")
    _check_record(cfg.record)
    if cfg.record.layer_quantiles and cfg.optimizer not in ADAM_LIKE:
        raise ValueError(
            f"record.layer_quantiles summarises Adam's step, and optimizer {cfg.optimizer!r} "
            f"keeps no Adam moments; use one of {list(ADAM_LIKE)} or leave layer_quantiles "
            "None."
        )
    lam = cfg.scheduler_kwargs.get("lr_lambda")
    if lam is not None and lam not in LR_LAMBDAS:
        raise ValueError(f"unknown lr_lambda {lam!r}; valid choices: {sorted(LR_LAMBDAS)}.")
    # Build the optimizer and the scheduler on a stand-in parameter: a bad setting fails
    # here, before any data is loaded, rather than minutes into a build.
    optimizer = _check_optimizer(cfg)
    if cfg.scheduler is not None:
        try:
            scheduler = build_scheduler(cfg, optimizer, steps_per_epoch=1)
            # a few steps too: some settings fail only there (a division by zero...)
            if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                for _ in range(min(cfg.epochs, 3)):
                    optimizer.step()
                    scheduler.step()
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(f"invalid scheduler_kwargs for {cfg.scheduler!r}: {exc}") from None


def _check_optimizer(cfg: RunConfig) -> torch.optim.Optimizer:
    factory, kwargs = OPTIMIZERS[cfg.optimizer], cfg.optimizer_kwargs
    accepted = [p for p in inspect.signature(factory).parameters if p not in ("params", "lr")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown optimizer_kwargs {unknown} for {cfg.optimizer!r}; valid choices: {accepted}."
        )
    try:
        # The same ranges as the from-scratch optimizers, for torch's too (their own
        # messages do not say what is allowed).
        for key in ("momentum", "weight_decay", "eps", "alpha"):
            if key in kwargs:
                scratch.check_at_least(key, kwargs[key])
        if "dampening" in kwargs:
            scratch.check_unit_interval("dampening", kwargs["dampening"], closed=True)
        if "betas" in kwargs:
            betas = kwargs["betas"]
            if not (isinstance(betas, Sequence) and len(betas) == 2):
                raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}.")
            for i, beta in enumerate(betas):
                scratch.check_unit_interval(f"betas[{i}]", beta, closed=False)
        return factory([torch.zeros(1, requires_grad=True)], lr=cfg.lr, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid optimizer_kwargs for {cfg.optimizer!r}: {exc}") from None


def build_optimizer(cfg: RunConfig, params: Any, lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` names, over ``params`` (at ``lr`` instead of ``cfg.lr`` if
    given)."""
    return OPTIMIZERS[cfg.optimizer](
        params, lr=cfg.lr if lr is None else lr, **cfg.optimizer_kwargs
    )


def build_scheduler(cfg: RunConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """The scheduler ``cfg`` names (None for a constant rate), for ``cfg.epochs`` epochs of
    ``steps_per_epoch`` mini-batches; see :func:`fashion_optim.lr.make_scheduler`."""
    if cfg.scheduler is None:
        return None
    kwargs = dict(cfg.scheduler_kwargs)
    if "lr_lambda" in kwargs:
        kwargs["lr_lambda"] = LR_LAMBDAS[kwargs["lr_lambda"]]
    return lr_module.make_scheduler(
        cfg.scheduler, optimizer, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, **kwargs
    )
