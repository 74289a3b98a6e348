"""The loss's sharpness: the Hessian's largest eigenvalue, by power iteration or the
Lanczos method on Hessian-vector products (never the Hessian itself: LeNet has about
60,000 weights).

Gradient descent on a quadratic is stable for :math:`\\eta < 2/\\lambda_{max}`; heavy
ball and Nesterov have their own limits (:mod:`fashion_optim.theory`). Measuring
:math:`\\lambda_{max}` of the network's loss at a few checkpoints sets those limits beside
the rates at which training actually failed.

Examples
--------
>>> import torch
>>> a = torch.diag(torch.tensor([3.0, 1.0, 0.5]))
>>> est = power_iteration(lambda v: a @ v, torch.ones(3), tol=1e-10, max_iter=500)
>>> round(est.value, 6), est.converged
(3.0, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = [
    "EigenEstimate",
    "hessian_vector_product",
    "largest_eigenvalue",
    "power_iteration",
    "top_hessian_eigenvalue",
]


@dataclass(frozen=True)
class EigenEstimate:
    """The outcome of :func:`power_iteration`.

    Attributes
    ----------
    value : float
        The eigenvalue of largest magnitude (its sign kept), as the Rayleigh quotient
        :math:`v^\\top H v` of the last unit vector.
    iterations : int
        Hessian-vector products used.
    converged : bool
        Whether two successive estimates agreed to ``tol`` (relative).
    history : tuple of float
        The estimate after each iteration.
    """

    value: float
    iterations: int
    converged: bool
    history: tuple[float, ...]


def power_iteration(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    *,
    max_iter: int = 100,
    tol: float = 1e-3,
) -> EigenEstimate:
    """The eigenvalue of largest magnitude of the symmetric operator ``matvec``.

    Parameters
    ----------
    matvec : callable
        ``v -> H v`` for a flat vector ``v`` (a Hessian-vector product).
    start : torch.Tensor
        A flat, non-zero start vector (random: a start orthogonal to the top
        eigenvector never finds it).
    max_iter : int
        At most this many products.
    tol : float
        Stop when the relative change of the estimate is at most ``tol``.
    """
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}.")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}.")
    norm = float(start.norm())
    if not norm > 0:
        raise ValueError("the start vector must be non-zero; draw it at random.")
    v = start / norm
    history: list[float] = []
    converged = False
    for _ in range(max_iter):
        hv = matvec(v)
        value = float(torch.dot(v, hv))
        history.append(value)
        if len(history) > 1 and abs(value - history[-2]) <= tol * max(abs(value), 1e-12):
            converged = True
            break
        hv_norm = float(hv.norm())
        if hv_norm == 0:
            converged = True  # v is in the null space: every eigenvalue it meets is 0
            break
        v = hv / hv_norm
    return EigenEstimate(history[-1], len(history), converged, tuple(history))


def largest_eigenvalue(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    *,
    max_iter: int = 100,
    tol: float = 1e-3,
) -> EigenEstimate:
    r"""The largest (most positive) eigenvalue of the symmetric operator ``matvec``, by
    the Lanczos method with full reorthogonalisation.

    :func:`power_iteration` finds the eigenvalue of largest *magnitude*, which near a
    saddle or on a plateau of a network's loss is a negative one, and converges slowly
    when the top eigenvalues are close. Lanczos builds an orthonormal basis of the
    Krylov space :math:`\{v, Hv, H^2v, \dots\}` one product at a time and takes the
    largest eigenvalue of :math:`H` restricted to it (the largest Ritz value of a
    tridiagonal matrix): it converges to :math:`\lambda_{max}` whatever the negative
    eigenvalues, and much faster than power iteration. It stops when the Ritz pair's
    residual :math:`\lVert Hy - \theta y\rVert` is at most ``tol`` times
    :math:`|\theta|`, or after ``max_iter`` products. The basis is kept in float64
    whatever the dtype of ``start`` (the products are taken in that dtype).

    Examples
    --------
    >>> import torch
    >>> a = torch.diag(torch.tensor([-4.0, 1.0, 0.5], dtype=torch.float64))
    >>> start = torch.ones(3, dtype=torch.float64)
    >>> est = largest_eigenvalue(lambda v: a @ v, start, tol=1e-12)
    >>> round(est.value, 6), est.converged, est.iterations
    (1.0, True, 3)
    """
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}.")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}.")
    norm = float(start.norm())
    if not norm > 0:
        raise ValueError("the start vector must be non-zero; draw it at random.")
    dtype = start.dtype
    basis = [start.to(torch.float64) / norm]
    alphas: list[float] = []
    betas: list[float] = []
    history: list[float] = []
    converged = False
    for _ in range(max_iter):
        q = basis[-1]
        w = matvec(q.to(dtype)).to(torch.float64)
        alphas.append(float(torch.dot(q, w)))
        stacked = torch.stack(basis)
        for _ in range(2):  # twice is enough (Kahan, Parlett)
            w = w - stacked.T @ (stacked @ w)
        beta = float(w.norm())
        tri = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        values, vectors = np.linalg.eigh(tri)
        theta = float(values[-1])
        history.append(theta)
        residual = beta * abs(float(vectors[-1, -1]))
        if residual <= tol * max(abs(theta), 1e-12) or beta == 0:
            converged = True
            break
        betas.append(beta)
        basis.append(w / beta)
    return EigenEstimate(history[-1], len(history), converged, tuple(history))


def hessian_vector_product(
    loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> H v`` for the Hessian of ``loss_fn()`` with respect to ``params``, by
    differentiating the gradient's dot product with ``v`` (Pearlmutter's trick), for a
    flat ``v`` of the parameters' total size."""
    params = list(params)
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])

    def matvec(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(torch.dot(flat_grad, v), params, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]).detach()

    return matvec


def top_hessian_eigenvalue(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    max_iter: int = 100,
    tol: float = 1e-3,
    seed: int = 0,
    which: str = "magnitude",
) -> EigenEstimate:
    """The largest-magnitude eigenvalue of the Hessian of ``model``'s loss on one batch
    (``which="magnitude"``, :func:`power_iteration`), or its largest eigenvalue
    (``which="largest"``, :func:`largest_eigenvalue`: the :math:`\\lambda_{max}` that
    sets gradient descent's stability limit).

    The model is evaluated in eval mode (no dropout: the loss must be one fixed
    function of the weights) and left as it was; ``loss`` defaults to cross-entropy.
    The start vector is drawn from a normal with ``seed``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Linear(3, 2)
    >>> x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    >>> top_hessian_eigenvalue(model, x, y, tol=1e-8, max_iter=500).value > 0
    True
    """
    if which not in ("magnitude", "largest"):
        raise ValueError(f"which must be 'magnitude' or 'largest', got {which!r}.")
    loss = loss or nn.functional.cross_entropy
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter that requires a gradient.")
    was_training = model.training
    model.eval()
    try:
        matvec = hessian_vector_product(lambda: loss(model(inputs), targets), params)
        size = sum(p.numel() for p in params)
        gen = torch.Generator().manual_seed(seed)
        start = torch.randn(size, generator=gen, dtype=params[0].dtype)
        method = power_iteration if which == "magnitude" else largest_eigenvalue
        return method(matvec, start, max_iter=max_iter, tol=tol)
    finally:
        model.train(was_training)
