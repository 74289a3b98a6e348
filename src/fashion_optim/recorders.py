"""Recorders: what the optimizer sees at each step, for chosen tensors, as arrays.

Each is a :class:`~fashion_optim.training.Recorder` that :meth:`Trainer.fit
<fashion_optim.training.Trainer.fit>` calls after each backward pass and optimizer step:
:class:`GradientRecorder` (chosen gradient elements), :class:`ParameterRecorder`
(snapshots of every weight), :class:`OptimizerStateRecorder` (chosen elements of the
optimizer's state) and :class:`AdamQuantileRecorder` (quantiles over each layer of Adam's
adapted step), without copying the whole network every step.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .training import Recorder, Trainer

__all__ = [
    "AdamQuantileRecorder",
    "GradientRecorder",
    "OptimizerStateRecorder",
    "ParameterRecorder",
    "check_quantile_levels",
]


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

    # its first and last snapshots are where a fit starts and ends
    continues = False

    def continued(self, before: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError(
            "snapshots keep where a run starts and ends: a run that records them trains "
            "from the start (it never continues a shorter run)."
        )


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

    def continued(self, before: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The whole run's result after continuing a shorter run: the shorter run's rows
        at multiples of ``every`` (it also recorded its own last step, which is not the
        longer run's last step), then this fit's."""
        steps = np.asarray(before.get("adam_q/steps", np.empty(0, np.int64)))
        keep = steps % self.every == 0
        rows = {
            k: np.asarray(v)[keep]
            for k, v in before.items()
            if k.startswith("adam_q/") and k != "adam_q/levels"
        }
        out = super().continued({**before, **rows})
        out["adam_q/levels"] = np.asarray(self.levels, dtype=np.float64)
        return out

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
