r"""SGD (with momentum and Nesterov) and Adam, written out to be read.

Both classes reproduce :class:`torch.optim.SGD` and :class:`torch.optim.Adam` (their
default single-tensor path) step for step, with one loop over parameters and the
update written as in the equations. They keep the same state entries as torch
(``momentum_buffer`` for SGD; ``step``, ``exp_avg``, ``exp_avg_sq`` and
``max_exp_avg_sq`` for Adam), so code that reads an optimizer's state works on both,
and the state dicts are interchangeable.

They trade torch's speed options (``foreach``, ``fused``, ``capturable``,
``differentiable``) and sparse gradients for code that fits on a page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import Optimizer, ParamsT

__all__ = ["SGD", "Adam", "check_at_least", "check_unit_interval"]


def check_at_least(name: str, value: float, low: float = 0.0) -> None:
    """:class:`ValueError` naming ``name`` unless ``value`` is at least ``low`` (and not
    NaN): the ranges of these optimizers' hyper-parameters, which
    :mod:`fashion_optim.experiments` also checks torch's optimizers against."""
    # ``not low <= value`` also rejects NaN.
    if not low <= value:
        raise ValueError(f"{name} must be in [{low:g}, inf), got {value!r}.")


def check_unit_interval(name: str, value: float, *, closed: bool) -> None:
    """:class:`ValueError` naming ``name`` unless ``value`` lies in [0, 1] (``closed``)
    or [0, 1)."""
    inside = 0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0
    if not inside:
        bracket = "]" if closed else ")"
        raise ValueError(f"{name} must be in [0, 1{bracket}, got {value!r}.")


def _check_dense(grad: torch.Tensor, optimizer: str, alternative: str) -> None:
    if grad.is_sparse:
        raise RuntimeError(
            f"{optimizer} here does not support sparse gradients, got one of shape "
            f"{tuple(grad.shape)}; use {alternative} for sparse embeddings."
        )


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum.

    For each parameter :math:`\theta` with gradient :math:`g_t` at step
    :math:`t = 1, 2, \dots`, with learning rate :math:`\eta`, momentum :math:`\mu`,
    dampening :math:`\tau` and weight decay :math:`\lambda`:

    .. math::

        g_t &\leftarrow \pm g_t + \lambda\, \theta_{t-1}
            \quad (- \text{ when } \texttt{maximize}) \\
        b_t &= \begin{cases} g_t & t = 1 \\
                \mu\, b_{t-1} + (1 - \tau)\, g_t & t > 1 \end{cases} \\
        d_t &= \begin{cases} g_t + \mu\, b_t & \text{Nesterov} \\
                b_t & \text{otherwise} \end{cases} \\
        \theta_t &= \theta_{t-1} - \eta\, d_t

    With :math:`\mu = 0` there is no buffer and :math:`d_t = g_t`. As in torch, the
    first buffer is the gradient itself, not :math:`(1 - \tau)\,g_1`, and the buffer is
    not divided by :math:`1 - \mu`: with constant gradients the steps grow towards
    :math:`\eta\, g / (1 - \mu)`, an effective learning rate :math:`\eta / (1 - \mu)`.

    Parameters
    ----------
    params : iterable
        Parameters, or dicts of parameter groups with their own hyperparameters.
    lr : float
        Learning rate :math:`\eta \ge 0`.
    momentum : float
        Momentum :math:`\mu \ge 0`; 0 gives plain SGD.
    dampening : float
        Dampening :math:`\tau \in [0, 1]` of the gradient added to the buffer.
    weight_decay : float
        L2 penalty :math:`\lambda \ge 0`, added to the gradient (coupled).
    nesterov : bool
        Nesterov momentum; needs ``momentum > 0`` and ``dampening = 0``.
    maximize : bool
        Ascend the objective instead of descending it.

    Raises
    ------
    ValueError
        If a hyperparameter is outside its range, or Nesterov momentum is asked for
        without momentum or with dampening.

    Examples
    --------
    >>> w = torch.nn.Parameter(torch.tensor([1.0]))
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w**2).sum().backward()  # gradient 2 w
    ...     _ = opt.step()
    >>> opt.state[w]["momentum_buffer"]
    tensor([3.4000])
    >>> w.detach()
    tensor([0.4600])
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_at_least("lr", lr)
        check_at_least("momentum", momentum)
        check_unit_interval("dampening", dampening, closed=True)
        check_at_least("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={momentum!r} and dampening={dampening!r}. "
                "Set them so, or use nesterov=False."
            )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update the parameters once from their ``.grad``.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss; run with gradients enabled.

        Returns
        -------
        float or None
            The closure's loss, or None without a closure.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            lr = group["lr"]
            momentum = group["momentum"]
            dampening = group["dampening"]
            weight_decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                _check_dense(p.grad, "SGD", "torch.optim.SGD")
                grad = -p.grad if group["maximize"] else p.grad
                if weight_decay != 0:
                    grad = grad.add(p, alpha=weight_decay)

                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = grad.detach().clone()
                        state["momentum_buffer"] = buf
                    else:
                        buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                    grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf

                p.add_(grad, alpha=-lr)
        return loss


class Adam(Optimizer):
    r"""Adam: momentum on the gradient, scaled per coordinate by its running RMS.

    For each parameter :math:`\theta` with gradient :math:`g_t` at step
    :math:`t = 1, 2, \dots`, with :math:`m_0 = v_0 = 0`:

    .. math::

        g_t &\leftarrow g_t + \lambda\, \theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        \theta_t &= \theta_{t-1} - \frac{\eta}{1 - \beta_1^t}\,
            \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    This is torch's arrangement: the bias corrections :math:`1 - \beta^t` divide the
    step size and :math:`\sqrt{v_t}`, and :math:`\epsilon` is added after the
    correction. It equals :math:`\hat m_t / (\sqrt{\hat v_t} + \epsilon)` with
    :math:`\hat m_t = m_t / (1 - \beta_1^t)` and :math:`\hat v_t = v_t / (1 - \beta_2^t)`,
    as in Kingma and Ba (2015). With ``amsgrad``, :math:`v_t` in the denominator is
    replaced by its running maximum :math:`\max_{s \le t} v_s`.

    With ``bias_correction=False`` the update is
    :math:`\theta_t = \theta_{t-1} - \eta\, m_t / (\sqrt{v_t} + \epsilon)`. This is not
    what torch does; it is here to show what the correction is for: step :math:`t` is
    scaled by :math:`(1 - \beta_1^t)/\sqrt{1 - \beta_2^t}` relative to the corrected one
    (about 0.1/0.032 = 3.2 at :math:`t = 1` for the defaults, and still growing: it
    peaks near 6.6 around :math:`t = 12` before it decays towards 1).

    Parameters
    ----------
    params : iterable
        Parameters, or dicts of parameter groups with their own hyperparameters.
    lr : float
        Learning rate :math:`\eta \ge 0`.
    betas : tuple of float
        :math:`(\beta_1, \beta_2)`, each in [0, 1): decay rates of :math:`m` and
        :math:`v`.
    eps : float
        :math:`\epsilon \ge 0`, added to the denominator.
    weight_decay : float
        L2 penalty :math:`\lambda \ge 0`, added to the gradient (coupled, as in
        :class:`torch.optim.Adam`; not AdamW).
    amsgrad : bool
        Use the running maximum of :math:`v_t` (Reddi et al., 2018).
    bias_correction : bool
        Divide out the zero start of :math:`m` and :math:`v` (keyword only). False is
        for illustration and differs from torch.

    Raises
    ------
    ValueError
        If a hyperparameter is outside its range.

    Examples
    --------
    The first step has size ``lr`` in every coordinate, whatever the gradient's scale:

    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    >>> opt = Adam([w], lr=0.1)
    >>> (100 * w).sum().backward()
    >>> _ = opt.step()
    >>> w.detach()
    tensor([ 0.9000, -2.1000])
    >>> sorted(opt.state[w])
    ['exp_avg', 'exp_avg_sq', 'step']
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        bias_correction: bool = True,
    ) -> None:
        check_at_least("lr", lr)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}.")
        check_unit_interval("betas[0]", betas[0], closed=False)
        check_unit_interval("betas[1]", betas[1], closed=False)
        check_at_least("eps", eps)
        check_at_least("weight_decay", weight_decay)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "bias_correction": bias_correction,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        # A state dict saved by torch.optim.Adam has no "bias_correction" entry.
        for group in self.param_groups:
            group.setdefault("bias_correction", True)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update the parameters once from their ``.grad``.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss; run with gradients enabled.

        Returns
        -------
        float or None
            The closure's loss, or None without a closure.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            lr = group["lr"]
            beta1, beta2 = group["betas"]
            eps = group["eps"]
            weight_decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                _check_dense(p.grad, "Adam", "torch.optim.SparseAdam")
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    # torch keeps the step count as a float32 CPU tensor; so do we, so
                    # that state dicts load into either class.
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(p)

                state["step"] += 1
                t = state["step"].item()
                if weight_decay != 0:
                    grad = grad.add(p, alpha=weight_decay)

                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - beta1)  # beta1 m + (1 - beta1) g, computed as torch does
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                if group["amsgrad"]:
                    torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    second_moment = state["max_exp_avg_sq"]
                else:
                    second_moment = exp_avg_sq

                if group["bias_correction"]:
                    step_size = lr / (1 - beta1**t)
                    denom = second_moment.sqrt() / (1 - beta2**t) ** 0.5 + eps
                else:
                    step_size = lr
                    denom = second_moment.sqrt() + eps
                p.addcdiv_(exp_avg, denom, value=-step_size)
        return loss
