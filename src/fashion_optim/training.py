"""The Trainer: fit and evaluate a model, record what the optimizer sees, checkpoint it.

One :class:`Trainer` owns a model, a loss, an optimizer and an optional learning-rate
scheduler. :meth:`Trainer.fit` returns a :class:`History` with per-epoch and per-mini-batch
numbers; :class:`Recorder` objects capture gradients, parameter snapshots and optimizer
state for chosen tensors while it trains, without copying the whole network every step.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler
from tqdm.auto import tqdm

__all__ = [
    "PER_BATCH_SCHEDULERS",
    "AdamQuantileRecorder",
    "GradientRecorder",
    "History",
    "OptimizerStateRecorder",
    "ParameterRecorder",
    "Recorder",
    "Trainer",
    "TrainingDivergedError",
    "atomic_write",
    "check_quantile_levels",
    "resolve_device",
    "scheduler_interval",
    "step_scheduler_batch",
    "step_scheduler_epoch",
]

#: Schedulers whose natural unit is the mini-batch; every other one steps once an epoch.
PER_BATCH_SCHEDULERS: tuple[type, ...] = (
    lr_scheduler.OneCycleLR,
    lr_scheduler.CyclicLR,
    lr_scheduler.CosineAnnealingWarmRestarts,
)

Interval = Literal["batch", "epoch"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite, or exceeded the trainer's divergence limit.

    Carries ``epoch`` (1-based), ``step`` (1-based mini-batch of that epoch), ``loss``,
    ``lr`` and ``limit`` (the loss it exceeded, or ``None`` for a NaN or infinite loss).
    """

    def __init__(
        self, epoch: int, step: int, loss: float, lr: float, limit: float | None = None
    ) -> None:
        self.epoch, self.step, self.loss, self.lr, self.limit = epoch, step, loss, lr, limit
        above = "" if limit is None else f" (above the limit {limit:.4g})"
        super().__init__(
            f"training diverged: loss is {loss:.4g}{above} at epoch {epoch}, mini-batch {step} "
            f"(learning rate {lr:.3g}). Lower the learning rate or add a warm-up."
        )

    def __reduce__(self):  # pickled whole: a worker process sends it back to the caller
        return (type(self), (self.epoch, self.step, self.loss, self.lr, self.limit))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def scheduler_interval(scheduler: Any) -> Interval:
    """Whether ``scheduler`` steps once per mini-batch or once per epoch.

    :class:`~torch.optim.lr_scheduler.OneCycleLR`, :class:`~torch.optim.lr_scheduler.CyclicLR`
    and :class:`~torch.optim.lr_scheduler.CosineAnnealingWarmRestarts` step per batch; all
    others (including :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau`) per epoch.
    """
    return "batch" if isinstance(scheduler, PER_BATCH_SCHEDULERS) else "epoch"


def step_scheduler_batch(scheduler: Any, epoch: int, batch: int, num_batches: int) -> None:
    """Step a per-batch scheduler after mini-batch ``batch`` (0-based) of ``epoch`` (0-based).

    :class:`~torch.optim.lr_scheduler.CosineAnnealingWarmRestarts` receives the fractional
    epoch, so its ``T_0`` counts epochs as in torch's documentation.
    """
    if isinstance(scheduler, lr_scheduler.CosineAnnealingWarmRestarts):
        scheduler.step(epoch + (batch + 1) / num_batches)
    else:
        scheduler.step()


def step_scheduler_epoch(scheduler: Any, metric: float | None = None) -> None:
    """Step a per-epoch scheduler; :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau`
    receives ``metric`` (the validation loss)."""
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        if metric is None:
            raise ValueError("ReduceLROnPlateau needs a metric (the validation loss).")
        scheduler.step(metric)
    else:
        scheduler.step()


def atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(file_object)`` on a temporary file, then rename it onto ``path``.

    Readers see either the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- history


@dataclass
class History:
    """What one training run did.

    Per epoch: ``train_loss``, ``train_acc`` (running over the epoch), ``val_loss``,
    ``val_acc`` (after the epoch), ``lr`` (the learning rate of the epoch's first step) and
    ``epoch_time`` (seconds). Per mini-batch: ``batch_loss`` and ``batch_lr``.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    batch_lr: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict[str, list[float]]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> History:
        return cls(**{f.name: [float(v) for v in data.get(f.name, [])] for f in fields(cls)})

    def same_as(self, other: History) -> bool:
        """Bitwise equality of everything but the wall times."""
        mine, theirs = self.to_dict(), other.to_dict()
        mine.pop("epoch_time")
        theirs.pop("epoch_time")
        return mine == theirs


# --------------------------------------------------------------------------- recorders


class Recorder:
    """Base class: hooks called by :meth:`Trainer.fit`. Override what you need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def after_backward(self, trainer: Trainer) -> None:
        """Gradients of this step are in ``.grad``; the parameters are not yet updated."""

    def after_step(self, trainer: Trainer) -> None:
        """The optimizer has updated the parameters and its state."""

    def result(self) -> dict[str, np.ndarray]:
        """The recorded arrays, by name."""
        return {}


def _named_parameters(model: nn.Module, names: Iterable[str]) -> dict[str, nn.Parameter]:
    params = dict(model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise KeyError(f"no parameter named {missing} in the model; valid names: {sorted(params)}.")
    return {n: params[n] for n in names}


def _as_index(indices: Sequence[int] | None) -> torch.Tensor | None:
    return None if indices is None else torch.as_tensor(list(indices), dtype=torch.long)


class GradientRecorder(Recorder):
    """Record, every mini-batch, chosen elements of chosen parameters' gradients.

    Parameters
    ----------
    probes : mapping of str to sequence of int or None
        Parameter name (as in ``model.named_parameters()``) to flat indices of the elements
        to record; ``None`` records the whole tensor (use on small layers only).
    norms : bool
        Also record each probed parameter's whole-gradient L2 norm.

    Notes
    -----
    The result has ``"grad/<name>"`` (``[steps, k]``) and ``"grad_norm/<name>"``
    (``[steps]``).
    """

    def __init__(self, probes: Mapping[str, Sequence[int] | None], norms: bool = True) -> None:
        self.probes = {name: _as_index(ix) for name, ix in probes.items()}
        self.norms = norms
        self._values: dict[str, list[torch.Tensor]] = {}
        self._norms: dict[str, list[float]] = {}

    def on_fit_start(self, trainer: Trainer) -> None:
        self._params = _named_parameters(trainer.model, self.probes)
        for name in self.probes:
            self._values.setdefault(name, [])
            self._norms.setdefault(name, [])

    def after_backward(self, trainer: Trainer) -> None:
        for name, param in self._params.items():
            grad = param.grad
            flat = (
                torch.zeros(param.numel(), device=param.device)
                if grad is None
                else grad.detach().reshape(-1)
            )
            ix = self.probes[name]
            self._values[name].append((flat if ix is None else flat[ix]).to("cpu", copy=True))
            if self.norms:
                self._norms[name].append(float(flat.norm()))

    def result(self) -> dict[str, np.ndarray]:
        out = {}
        for name, values in self._values.items():
            out[f"grad/{name}"] = torch.stack(values).numpy() if values else np.empty((0, 0))
            if self.norms:
                out[f"grad_norm/{name}"] = np.asarray(self._norms[name])
        return out


class ParameterRecorder(Recorder):
    """Snapshots of the parameters (flattened and concatenated) every ``every`` steps.

    The first snapshot is the initial point (before any step); the last is the final
    point. Used for trajectories. ``names`` restricts the snapshot to some parameters.

    The result has ``"params"`` (``[snapshots, P]``, float32) and ``"param_steps"``
    (the optimizer step of each snapshot).
    """

    def __init__(self, every: int = 1, names: Sequence[str] | None = None) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}.")
        self.every = every
        self.names = names
        self._snapshots: list[torch.Tensor] = []
        self._steps: list[int] = []

    def _snap(self, trainer: Trainer) -> None:
        if self._steps and self._steps[-1] == trainer.step:
            return
        vec = torch.cat([p.detach().reshape(-1) for p in self._params.values()])
        self._snapshots.append(vec.to("cpu", torch.float32, copy=True))
        self._steps.append(trainer.step)

    def on_fit_start(self, trainer: Trainer) -> None:
        names = self.names or [n for n, _ in trainer.model.named_parameters()]
        self._params = _named_parameters(trainer.model, names)
        self._snap(trainer)

    def after_step(self, trainer: Trainer) -> None:
        if trainer.step % self.every == 0 or trainer.is_last_step:
            self._snap(trainer)

    def result(self) -> dict[str, np.ndarray]:
        return {
            "params": torch.stack(self._snapshots).numpy(),
            "param_steps": np.asarray(self._steps),
        }


class OptimizerStateRecorder(Recorder):
    """Record, every mini-batch, chosen elements of the optimizer's per-parameter state.

    Parameters
    ----------
    probes : mapping of str to sequence of int or None
        Parameter name to flat indices, as in :class:`GradientRecorder`.
    keys : sequence of str, optional
        State entries to record, e.g. ``("exp_avg", "exp_avg_sq")`` for
        :class:`torch.optim.Adam` or ``("momentum_buffer",)`` for SGD with momentum.
        By default every tensor entry with the parameter's shape.

    Notes
    -----
    The result has ``"state/<key>/<name>"`` (``[steps, k]``).
    """

    def __init__(
        self, probes: Mapping[str, Sequence[int] | None], keys: Sequence[str] | None = None
    ) -> None:
        self.probes = {name: _as_index(ix) for name, ix in probes.items()}
        self.keys = tuple(keys) if keys is not None else None
        self._values: dict[str, list[torch.Tensor]] = {}

    def on_fit_start(self, trainer: Trainer) -> None:
        self._params = _named_parameters(trainer.model, self.probes)

    def after_step(self, trainer: Trainer) -> None:
        for name, param in self._params.items():
            state = trainer.optimizer.state.get(param, {})
            keys = self.keys or [
                k for k, v in state.items() if torch.is_tensor(v) and v.shape == param.shape
            ]
            for key in keys:
                if key not in state:
                    raise KeyError(
                        f"optimizer state of {name!r} has no entry {key!r}; it has {sorted(state)}."
                    )
                flat = state[key].detach().reshape(-1)
                ix = self.probes[name]
                self._values.setdefault(f"state/{key}/{name}", []).append(
                    (flat if ix is None else flat[ix]).to("cpu", copy=True)
                )

    def result(self) -> dict[str, np.ndarray]:
        return {k: torch.stack(v).numpy() for k, v in self._values.items()}


def check_quantile_levels(levels: Any) -> tuple[float, ...]:
    """``levels`` as a tuple of floats, or :class:`ValueError` saying what is wrong:
    at least one, each a number in [0, 1], strictly increasing."""
    try:
        values = [] if isinstance(levels, str | bytes) else list(levels)
    except TypeError:
        values = []
    if not values:
        raise ValueError(
            f"quantile levels must be a non-empty sequence of numbers in [0, 1], got {levels!r}."
        )
    bad = [q for q in values if isinstance(q, bool) or not isinstance(q, numbers.Real)]
    if bad:
        raise ValueError(f"quantile levels must be numbers, got {bad!r} in {levels!r}.")
    outside = [q for q in values if not 0 <= q <= 1]
    if outside:
        raise ValueError(
            f"quantile levels must lie in [0, 1] (0.5 is the median, not 50), got "
            f"{outside!r} in {levels!r}."
        )
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"quantile levels must be strictly increasing, got {levels!r}.")
    return tuple(float(q) for q in values)


#: Integer types of the floating-point types' widths (for :func:`_sorted_nonnegative`).
_BITS = {
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.float32: torch.int32,
    torch.float64: torch.int64,
}


def _sorted_nonnegative(x: torch.Tensor) -> torch.Tensor:
    """``x`` (1-d, no negative values) in increasing order.

    For non-negative IEEE floats, the order of the bit patterns read as integers is the
    order of the values (NaN last, as in a float sort), and torch sorts integers on the
    CPU by radix sort: 8x faster than its float sort on 48,000 float32 values, one thread.
    """
    bits = _BITS.get(x.dtype)
    if bits is None:
        return x.sort().values
    return x.contiguous().view(bits).sort().values.view(x.dtype)


def _quantile_plan(n: int, levels: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """For the ``levels`` quantiles of ``n`` sorted values, interpolated linearly between
    order statistics as :func:`numpy.quantile`'s default: the indices of the lower order
    statistics then of the upper ones, and the interpolation weights."""
    h = torch.as_tensor(levels, dtype=torch.float64) * (n - 1)
    lo = h.floor().long()
    return torch.cat([lo, torch.clamp(lo + 1, max=n - 1)]), (h - lo).float()


class AdamQuantileRecorder(Recorder):
    r"""Per parameter tensor (layer), quantiles over all its weights of Adam's adapted
    step :math:`|\hat m_t/(\sqrt{\hat v_t}+\epsilon)|` and effective learning rate
    :math:`\eta/(\sqrt{\hat v_t}+\epsilon)`, every ``every`` optimizer steps.

    A summary, not every weight: a few numbers per tensor and recorded step.

    Parameters
    ----------
    levels : sequence of float
        Quantile levels, increasing, in [0, 1], e.g. ``(0.05, 0.25, 0.5, 0.75, 0.95)``.
    every : int
        Record after every this many optimizer steps, and after the last step.
    names : sequence of str, optional
        Parameters to summarise (as in ``model.named_parameters()``); by default every
        parameter the optimizer holds.

    Notes
    -----
    After each recorded step it reads the optimizer's own state, as the step applied it:
    ``step`` (:math:`t`), ``exp_avg`` (:math:`m_t`) and ``exp_avg_sq`` (:math:`v_t`;
    ``max_exp_avg_sq`` with ``amsgrad``) of each parameter, and ``lr``, ``betas``,
    ``eps`` of its group, with the bias corrections :math:`\hat m_t = m_t/(1-\beta_1^t)`
    and :math:`\sqrt{\hat v_t} = \sqrt{v_t}/\sqrt{1-\beta_2^t}` unless the group says
    ``bias_correction=False`` (:class:`fashion_optim.optimizers.Adam`). Works with
    :class:`torch.optim.Adam`, :class:`torch.optim.AdamW` and
    :class:`fashion_optim.optimizers.Adam`. The step is the adapted step times
    :math:`\eta`, and the effective rate is what multiplies :math:`\hat m_t` (the
    learning rate of an SGD step on the smoothed gradient).

    Quantiles interpolate linearly between order statistics, as :func:`numpy.quantile`
    does by default. Each recorded step sorts two arrays per tensor (the adapted step,
    and the denominator, whose order statistics give the effective rate's, in reverse),
    which costs a few milliseconds for the whole network on one CPU thread: record
    every few steps (``every``) to keep it a small part of training
    (``benchmarks/adam_quantiles.py`` measures it). A parameter the optimizer has not
    stepped yet (no gradient so far) gets NaN.

    The result has ``"adam_q/adapted/<name>"`` and ``"adam_q/rate/<name>"``
    (``[records, levels]``, float32), ``"adam_q/steps"`` (the optimizer step of each
    record) and ``"adam_q/levels"``.
    """

    def __init__(
        self,
        levels: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
        every: int = 1,
        names: Sequence[str] | None = None,
    ) -> None:
        self.levels = check_quantile_levels(levels)
        if not (isinstance(every, int) and not isinstance(every, bool) and every >= 1):
            raise ValueError(f"every must be an integer >= 1, got {every!r}.")
        self.every = every
        self.names = None if names is None else list(names)
        self._adapted: dict[str, list[torch.Tensor]] = {}
        self._rate: dict[str, list[torch.Tensor]] = {}
        self._steps: list[int] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        groups = trainer.optimizer.param_groups
        missing = [k for k in ("lr", "betas", "eps") if any(k not in g for g in groups)]
        if missing:
            raise TypeError(
                f"AdamQuantileRecorder summarises Adam's step, and "
                f"{type(trainer.optimizer).__name__}'s parameter groups have no {missing}; "
                "use torch.optim.Adam, torch.optim.AdamW or fashion_optim.optimizers.Adam."
            )
        group_of = {id(p): g for g in groups for p in g["params"]}
        held = [n for n, p in trainer.model.named_parameters() if id(p) in group_of]
        self._params = _named_parameters(trainer.model, self.names or held)
        absent = [n for n, p in self._params.items() if id(p) not in group_of]
        if absent:
            raise ValueError(f"the optimizer does not update {absent}; leave them out of names.")
        self._groups = {n: group_of[id(p)] for n, p in self._params.items()}
        self._plans: dict[str, tuple[torch.Tensor, ...]] = {}
        for name, param in self._params.items():
            index, frac = _quantile_plan(param.numel(), self.levels)
            # the effective rate falls as the denominator grows: its order statistics are
            # the denominator's, counted from the top
            self._plans[name] = tuple(
                t.to(param.device) for t in (index, param.numel() - 1 - index, frac)
            )
            self._adapted.setdefault(name, [])
            self._rate.setdefault(name, [])

    @torch.no_grad()
    def after_step(self, trainer: Trainer) -> None:
        if not (trainer.step % self.every == 0 or trainer.is_last_step):
            return
        for name, param in self._params.items():
            state = trainer.optimizer.state.get(param, {})
            adapted, rate = self._summarise(param, self._groups[name], self._plans[name], state)
            self._adapted[name].append(adapted)
            self._rate[name].append(rate)
        self._steps.append(trainer.step)

    def _summarise(self, param, group, plan, state) -> tuple[torch.Tensor, torch.Tensor]:
        index, reverse, frac = plan
        k = len(self.levels)
        if "exp_avg" not in state:
            nan = torch.full((k,), math.nan, device=param.device)
            return nan, nan
        beta1, beta2 = group["betas"]
        t = float(state["step"])
        correct = group.get("bias_correction", True)
        bc1 = 1 - beta1**t if correct else 1.0
        bc2_sqrt = math.sqrt(1 - beta2**t) if correct else 1.0
        v = state["max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq"].reshape(-1)
        # As torch.optim.Adam computes them: denom = sqrt(v) / sqrt(1 - beta2^t) + eps and
        # the step lr / (1 - beta1^t) * m / denom (adapted step: the step over lr).
        denom = v.sqrt().div_(bc2_sqrt).add_(group["eps"])
        # abs after the division: a 0 / 0 (eps = 0) is a NaN with its sign bit cleared
        adapted = _sorted_nonnegative(state["exp_avg"].reshape(-1).div(denom).abs_().div_(bc1))
        a = adapted[index]
        r = group["lr"] / _sorted_nonnegative(denom)[reverse]
        return torch.lerp(a[:k], a[k:], frac), torch.lerp(r[:k], r[k:], frac)

    def result(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {
            "adam_q/steps": np.asarray(self._steps, dtype=np.int64),
            "adam_q/levels": np.asarray(self.levels, dtype=np.float64),
        }
        k = len(self.levels)
        for kind, values in (("adapted", self._adapted), ("rate", self._rate)):
            for name, rows in values.items():
                out[f"adam_q/{kind}/{name}"] = (
                    torch.stack(rows).to("cpu", torch.float32).numpy()
                    if rows
                    else np.empty((0, k), np.float32)
                )
        return out


# --------------------------------------------------------------------------- trainer


class Trainer:
    """Fit and evaluate a model with one optimizer and an optional scheduler.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable
        ``loss_fn(logits, targets)`` returning the mean loss of the batch.
    optimizer : torch.optim.Optimizer
    scheduler : torch.optim.lr_scheduler.LRScheduler, optional
        Stepped per mini-batch or per epoch according to its kind (see
        :func:`scheduler_interval`);
        :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` receives the validation loss.
    device : str or torch.device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``...
    seed : int
        Seeds torch's global generator when training starts (dropout and anything
        else random in the model). On the CPU the same seed gives a bitwise-identical
        :class:`History`.
    recorders : sequence of Recorder
    progress : bool, optional
        Show a progress bar on standard error. ``None`` (default): only on a terminal.
    diverge_threshold : float, optional
        Also stop, with :class:`TrainingDivergedError`, when a mini-batch loss exceeds this
        multiple of the run's first mini-batch loss (a loss can explode to 1e28 and stay
        finite). ``None`` (default): stop only on a NaN or infinite loss.

    Examples
    --------
    >>> from fashion_optim.models import LeNet
    >>> model = LeNet()
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> trainer = Trainer(model, nn.CrossEntropyLoss(), opt, seed=0)
    >>> history = trainer.fit(train_loader, val_loader, epochs=3)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Any,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        *,
        device: str | torch.device = "auto",
        seed: int = 0,
        recorders: Sequence[Recorder] = (),
        progress: bool | None = None,
        diverge_threshold: float | None = None,
    ) -> None:
        if diverge_threshold is not None and not diverge_threshold > 1:
            raise ValueError(f"diverge_threshold must be > 1 or None, got {diverge_threshold!r}.")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer)}.")
        model_params = {id(p) for p in model.parameters()}
        opt_params = {id(p) for g in optimizer.param_groups for p in g["params"]}
        if not opt_params <= model_params:
            raise ValueError(
                "the optimizer holds parameters that are not the model's; build it from "
                "model.parameters()."
            )
        if scheduler is not None and getattr(scheduler, "optimizer", None) is not optimizer:
            raise ValueError(
                f"the scheduler {type(scheduler).__name__} is bound to another optimizer; "
                "create it from this trainer's optimizer."
            )
        self.device = resolve_device(device)
        # channels_last: the convolution and max-pool kernels run 1.2-1.3x faster on
        # this model than in NCHW (benchmarks/README.md); non-4-d parameters are left as
        # they are, and flattening a parameter still walks it in logical order.
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.seed = seed
        self.recorders = list(recorders)
        self.progress = progress
        self.diverge_threshold = diverge_threshold
        self.history = History()
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.is_last_step = False
        self._seeded = False

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # ---------------------------------------------------------------- evaluation

    def evaluate(self, loader: Iterable) -> tuple[float, float]:
        """Mean loss and accuracy over ``loader``, in eval mode, without gradients."""
        loss, acc, _ = self.evaluate_predictions(loader)
        return loss, acc

    def evaluate_predictions(self, loader: Iterable) -> tuple[float, float, np.ndarray]:
        """Like :meth:`evaluate`, and the predicted class of every example, in the
        loader's order (``uint8``: ten classes), for per-example paired comparisons."""
        was_training = self.model.training
        self.model.eval()
        total_loss, correct, count = 0.0, 0, 0
        predictions = []
        with torch.inference_mode():
            for x, y in loader:
                x, y = self._to_device(x), y.to(self.device)
                logits = self.model(x)
                total_loss += float(self.loss_fn(logits, y)) * len(y)
                predicted = logits.argmax(1)
                correct += int((predicted == y).sum())
                count += len(y)
                predictions.append(predicted.to(torch.uint8).cpu().numpy())
        self.model.train(was_training)
        if count == 0:
            raise ValueError("the evaluation loader yielded no data.")
        return total_loss / count, correct / count, np.concatenate(predictions)

    # ---------------------------------------------------------------- training

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            return x.to(self.device, memory_format=torch.channels_last)
        return x.to(self.device)

    @staticmethod
    def _check_batch(x: Any, y: Any) -> None:
        if not (torch.is_tensor(x) and torch.is_tensor(y)):
            raise TypeError(f"the loader must yield (inputs, targets) tensors, got {type(x)}.")
        if not x.is_floating_point() or x.ndim != 4:
            raise TypeError(
                f"inputs must be float [B, C, H, W], got {x.dtype} of shape {tuple(x.shape)}; "
                "use fashion_optim.data.ArrayLoader, which normalises uint8 images."
            )
        if y.dtype != torch.int64 or y.ndim != 1 or len(y) != len(x):
            raise TypeError(f"targets must be int64 [B], got {y.dtype} of shape {tuple(y.shape)}.")

    def fit(self, train_loader: Iterable, val_loader: Iterable | None = None, epochs: int = 1):
        """Train for ``epochs`` more epochs and return the :class:`History` so far.

        After each epoch the model is evaluated on ``val_loader`` (when given). Calling
        ``fit`` again, or after :meth:`load_checkpoint`, continues where it stopped.

        Raises
        ------
        TrainingDivergedError
            When the loss becomes NaN or infinite, or exceeds ``diverge_threshold`` times
            the first mini-batch loss.
        """
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}.")
        if self.step == 0 and not self._seeded:
            torch.manual_seed(self.seed)
            self._seeded = True
        num_batches = len(train_loader)  # type: ignore[arg-type]
        if num_batches == 0:
            raise ValueError("the training loader yields no batches.")
        interval = scheduler_interval(self.scheduler) if self.scheduler is not None else None
        for rec in self.recorders:
            rec.on_fit_start(self)
        last_epoch = self.epoch + epochs
        bar = tqdm(
            total=epochs * num_batches,
            disable=(None if self.progress is None else not self.progress),
            file=sys.stderr,
            unit="batch",
            leave=False,
            dynamic_ncols=True,
        )
        try:
            while self.epoch < last_epoch:
                self._train_epoch(train_loader, val_loader, interval, num_batches, bar, last_epoch)
        finally:
            bar.close()
        return self.history

    def _loss_limit(self, value: float) -> float:
        # Relative to the first loss of the whole run (kept in the history, so a resumed
        # run has the same limit); never the best loss, which a healthy run drives to 0.
        first = self.history.batch_loss[0] if self.history.batch_loss else value
        if self.diverge_threshold is None or not first > 0:
            return math.inf
        return self.diverge_threshold * first

    def _train_epoch(self, train_loader, val_loader, interval, num_batches, bar, last_epoch):
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(self.epoch)
        self.model.train()
        start = time.perf_counter()
        epoch_lr = self.lr
        total_loss, correct, count = 0.0, 0, 0
        for i, (x, y) in enumerate(train_loader):
            if i == 0:
                self._check_batch(x, y)
            x, y = self._to_device(x), y.to(self.device)
            lr = self.lr
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(x)
            loss = self.loss_fn(logits, y)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDivergedError(self.epoch + 1, i + 1, value, lr)
            limit = self._loss_limit(value)
            if value > limit:
                raise TrainingDivergedError(self.epoch + 1, i + 1, value, lr, limit)
            loss.backward()
            for rec in self.recorders:
                rec.after_backward(self)
            self.optimizer.step()
            self.step += 1
            self.is_last_step = self.epoch + 1 == last_epoch and i + 1 == num_batches
            for rec in self.recorders:
                rec.after_step(self)
            if interval == "batch":
                step_scheduler_batch(self.scheduler, self.epoch, i, num_batches)
            self.history.batch_loss.append(value)
            self.history.batch_lr.append(lr)
            total_loss += value * len(y)
            correct += int((logits.detach().argmax(1) == y).sum())
            count += len(y)
            bar.update(1)
            if i % 20 == 0:
                bar.set_postfix(epoch=self.epoch + 1, loss=f"{value:.3f}", refresh=False)
        train_loss, train_acc = total_loss / count, correct / count
        if val_loader is not None:
            val_loss, val_acc = self.evaluate(val_loader)
        else:
            val_loss, val_acc = math.nan, math.nan
        if interval == "epoch":
            metric = val_loss if val_loader is not None else train_loss
            step_scheduler_epoch(self.scheduler, metric)
        h = self.history
        h.train_loss.append(train_loss)
        h.train_acc.append(train_acc)
        h.val_loss.append(val_loss)
        h.val_acc.append(val_acc)
        h.lr.append(epoch_lr)
        h.epoch_time.append(time.perf_counter() - start)
        self.epoch += 1

    # ---------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to continue this run exactly."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "history": self.history.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "seed": self.seed,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Save model, optimizer, scheduler, history and RNG state, atomically."""
        state = self.state_dict()
        atomic_write(path, lambda fh: torch.save(state, fh))

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore what :meth:`save_checkpoint` saved; the next :meth:`fit` resumes exactly."""
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` captured (model, optimizer, scheduler, history,
        counters and random generators); the next :meth:`fit` continues bit for bit as
        the run would have gone on. Build the trainer as it was built for that run."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if (state["scheduler"] is None) != (self.scheduler is None):
            raise ValueError(
                "the checkpoint and this trainer disagree on having a scheduler; build the "
                "trainer as it was when the checkpoint was saved."
            )
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.history = History.from_dict(state["history"])
        self.epoch, self.step, self.seed = state["epoch"], state["step"], state["seed"]
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self._seeded = True
