r"""Momentum's convergence on a quadratic: closed forms, and the same rates measured in torch.

On the quadratic :math:`f(\theta) = \tfrac12 \sum_i \lambda_i \theta_i^2` (curvatures
:math:`\lambda_i > 0`, minimum at 0) the gradient is :math:`\lambda_i \theta_i` in each
eigen-direction, so every method of :class:`torch.optim.SGD` is a linear iteration there,
one direction at a time. With learning rate :math:`\eta`, momentum :math:`\mu`, the
buffer :math:`b` of torch and :math:`c = 1 - \eta\lambda`, each method's characteristic
polynomial in a direction of curvature :math:`\lambda` is

- ``gd``, :math:`\theta \leftarrow \theta - \eta g`: :math:`z - c`;
- ``heavy_ball``, :math:`b \leftarrow \mu b + g,\ \theta \leftarrow \theta - \eta b`:
  :math:`z^2 - (c + \mu) z + \mu`;
- ``nesterov``, :math:`b \leftarrow \mu b + g,\ \theta \leftarrow \theta - \eta(g +
  \mu b)`: :math:`z^2 - (1 + \mu) c z + \mu c`.

Torch's momentum is Polyak's heavy ball :math:`\theta_{t+1} = \theta_t - \eta \nabla
f(\theta_t) + \mu(\theta_t - \theta_{t-1})` (same polynomial), and its Nesterov variant
has the polynomial of Nesterov's method (its parameters are the look-ahead points).

The error shrinks by the *convergence rate* per step: the spectral radius of the
iteration, the largest modulus of a root over all directions (:func:`rate`, closed
forms, vectorised over grids of :math:`\eta` and :math:`\mu`). :func:`regions` says
whether the slowest mode decays monotonically, oscillates, or does not decay;
:func:`optimum` gives the best :math:`(\eta, \mu)` of each method; :func:`measured_rate`
runs :class:`torch.optim.SGD` on the same quadratic and measures the rate from its path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "METHODS",
    "REGIONS",
    "MeasuredRate",
    "Optimum",
    "condition_number",
    "eigenvalues",
    "fitted_rate",
    "iteration_matrix",
    "measured_rate",
    "optimum",
    "rate",
    "regions",
    "stability_limit",
]

#: The methods, as :class:`torch.optim.SGD` runs them: plain gradient descent
#: (``momentum=0``), heavy ball (``momentum=mu``) and Nesterov (``nesterov=True``).
METHODS: tuple[str, ...] = ("gd", "heavy_ball", "nesterov")

#: How the error of a point :math:`(\eta, \mu)` behaves in the long run: ``"monotone"``
#: (the slowest mode's eigenvalue is real and positive), ``"oscillating"`` (complex or
#: negative: the error changes sign or turns) or ``"divergent"`` (rate >= 1).
REGIONS: tuple[str, ...] = ("monotone", "oscillating", "divergent")

# A direction whose rate is within this relative distance of the largest one is among
# the slowest (at an optimum several directions tie exactly, up to rounding).
_TIE = 1e-9


# --------------------------------------------------------------------------- checks


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(
            f"unknown method {method!r}; choose one of {', '.join(map(repr, METHODS))}."
        )


def _curvatures(curvatures: ArrayLike) -> NDArray[np.float64]:
    lam = np.atleast_1d(np.asarray(curvatures, dtype=np.float64))
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(
            f"curvatures must be a non-empty sequence of numbers (the Hessian's eigenvalues), "
            f"got shape {lam.shape}."
        )
    bad = ~(np.isfinite(lam) & (lam > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"curvatures must be finite and > 0 (a strictly convex quadratic), got "
            f"{float(lam[i])!r} at index {i}; pass the Hessian's eigenvalues, all positive."
        )
    return lam


def _lr_momentum(
    method: str, lr: ArrayLike, momentum: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    _check_method(method)
    eta = np.asarray(lr, dtype=np.float64)
    mu = np.asarray(momentum, dtype=np.float64)
    if not np.all(np.isfinite(eta) & (eta > 0)):
        worst = float(eta.flat[int(np.argmax(~(np.isfinite(eta) & (eta > 0))))])
        raise ValueError(
            f"lr (the learning rate eta) must be finite and > 0, got {worst!r}; pass a "
            f"positive step size."
        )
    if not np.all((mu >= 0) & (mu < 1)):
        worst = float(mu.flat[int(np.argmax(~((mu >= 0) & (mu < 1))))])
        raise ValueError(
            f"momentum (mu) must be in [0, 1), got {worst!r}; pass a value such as 0.9 (at "
            f"mu >= 1 the buffer never forgets a gradient and no learning rate converges)."
        )
    if method == "gd" and np.any(mu != 0):
        worst = float(mu.flat[int(np.argmax(mu != 0))])
        raise ValueError(
            f"method 'gd' has no momentum, got momentum={worst!r}; pass momentum=0, or "
            f"method='heavy_ball' or 'nesterov' for momentum > 0."
        )
    return eta, mu


def _scalar_or_array(values: NDArray[Any]) -> Any:
    return values.item() if values.ndim == 0 else values


# --------------------------------------------------------------------------- closed forms


def condition_number(curvatures: ArrayLike) -> float:
    r"""The condition number :math:`\kappa = \lambda_{\max} / \lambda_{\min}`.

    Examples
    --------
    >>> condition_number([1.0, 20.0])
    20.0
    """
    lam = _curvatures(curvatures)
    return float(lam.max() / lam.min())


def iteration_matrix(method: str, curvature: float, lr: float, momentum: float = 0.0) -> np.ndarray:
    r"""The matrix of one :class:`torch.optim.SGD` step in one eigen-direction.

    The state is :math:`(\theta, b)` (parameter and momentum buffer) for ``heavy_ball``
    and ``nesterov``, :math:`\theta` alone for ``gd``; one step maps it to
    ``iteration_matrix(...) @ state``. For ``heavy_ball``

    .. math:: \begin{pmatrix} 1 - \eta\lambda & -\eta\mu \\ \lambda & \mu \end{pmatrix},

    for ``nesterov``

    .. math:: \begin{pmatrix} 1 - \eta\lambda(1+\mu) & -\eta\mu^2 \\ \lambda & \mu
        \end{pmatrix}.

    Parameters
    ----------
    method : {"gd", "heavy_ball", "nesterov"}
    curvature : float
        :math:`\lambda > 0`.
    lr : float
        :math:`\eta > 0`.
    momentum : float
        :math:`\mu \in [0, 1)`; 0 for ``gd``.

    Returns
    -------
    numpy.ndarray
        ``(1, 1)`` for ``gd``, ``(2, 2)`` otherwise.

    Examples
    --------
    >>> iteration_matrix("heavy_ball", curvature=2.0, lr=0.1, momentum=0.5)
    array([[ 0.8 , -0.05],
           [ 2.  ,  0.5 ]])
    """
    lam = float(_curvatures([curvature])[0])
    eta, mu = (float(v) for v in _lr_momentum(method, lr, momentum))
    if method == "gd":
        return np.array([[1 - eta * lam]])
    if method == "heavy_ball":
        return np.array([[1 - eta * lam, -eta * mu], [lam, mu]])
    return np.array([[1 - eta * lam * (1 + mu), -eta * mu**2], [lam, mu]])


def _trace_det(
    method: str, lam: NDArray[np.float64], eta: NDArray[np.float64], mu: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Trace and determinant of each direction's iteration, shape ``broadcast(eta, mu) + (n,)``
    (for ``gd``: the one eigenvalue and 0)."""
    eta, mu = np.broadcast_arrays(eta, mu)
    eta, mu = eta[..., None], mu[..., None]
    c = 1 - eta * lam
    if method == "gd":
        return c, np.zeros_like(c)
    if method == "heavy_ball":
        return c + mu, np.broadcast_to(mu, c.shape)
    return (1 + mu) * c, mu * c


def _direction_rates(trace: NDArray[np.float64], det: NDArray[np.float64]) -> NDArray[np.float64]:
    """Largest root modulus of z^2 - trace z + det, closed form."""
    disc = trace**2 - 4 * det
    real = (np.abs(trace) + np.sqrt(np.maximum(disc, 0))) / 2
    return np.where(disc >= 0, real, np.sqrt(np.abs(det)))


def eigenvalues(
    method: str, curvatures: ArrayLike, lr: ArrayLike, momentum: ArrayLike = 0.0
) -> NDArray[np.complex128]:
    r"""The eigenvalues of each direction's iteration: the roots of its characteristic
    polynomial :math:`z^2 - T z + D` (see the module's summary), in closed form.

    Parameters
    ----------
    method : {"gd", "heavy_ball", "nesterov"}
    curvatures : array_like
        The :math:`\lambda_i > 0`.
    lr, momentum : array_like
        Broadcast against each other (e.g. a column of rates and a row of momenta).

    Returns
    -------
    numpy.ndarray of complex
        Shape ``broadcast(lr, momentum) + (len(curvatures), k)``, ``k = 1`` for ``gd`` and
        2 otherwise; the root of larger modulus first.

    Examples
    --------
    >>> np.abs(eigenvalues("heavy_ball", [1.0], lr=1.0, momentum=0.25))  # complex: sqrt(mu)
    array([[0.5, 0.5]])
    """
    lam = _curvatures(curvatures)
    eta, mu = _lr_momentum(method, lr, momentum)
    trace, det = _trace_det(method, lam, eta, mu)
    if method == "gd":
        return trace[..., None].astype(np.complex128)
    root = np.sqrt((trace**2 - 4 * det).astype(np.complex128))
    big = np.where(trace.real >= 0, trace + root, trace - root) / 2  # no cancellation
    safe = np.where(big == 0, 1, big)
    small = np.where(big == 0, 0, det / safe)  # product of the roots is det
    small = np.where(big.imag != 0, np.conj(big), small)  # a complex pair: exact conjugates
    return np.stack([big, small], axis=-1)


def rate(method: str, curvatures: ArrayLike, lr: ArrayLike, momentum: ArrayLike = 0.0) -> Any:
    r"""The convergence rate: the spectral radius of the iteration, max over the curvatures.

    The error :math:`\lVert \theta_t - \theta^* \rVert` shrinks like :math:`\rho^t`. In each
    direction the closed form is :math:`(|T| + \sqrt{T^2 - 4D})/2` when the roots are real,
    :math:`\sqrt{D}` when they are complex (:math:`\sqrt{\mu}` for heavy ball, whatever
    :math:`\eta`).

    Parameters
    ----------
    method : {"gd", "heavy_ball", "nesterov"}
    curvatures : array_like
        The :math:`\lambda_i > 0`.
    lr : array_like
        :math:`\eta > 0`.
    momentum : array_like
        :math:`\mu \in [0, 1)`, broadcast against ``lr``; 0 for ``gd``.

    Returns
    -------
    float or numpy.ndarray
        :math:`\rho`, of shape ``broadcast(lr, momentum)`` (a float for scalars); 1 or more
        where the method does not converge.

    Raises
    ------
    ValueError
        For an unknown method, :math:`\eta \le 0`, :math:`\mu \notin [0, 1)`, a momentum
        with ``gd``, or a curvature :math:`\le 0`.

    Examples
    --------
    >>> round(rate("gd", [1.0, 20.0], lr=2 / 21), 4)  # (kappa - 1) / (kappa + 1)
    0.9048
    >>> rate("heavy_ball", [1.0, 20.0], lr=[0.001, 0.01, 0.1], momentum=0.81).round(4)
    array([0.9946, 0.9   , 0.9   ])
    """
    lam = _curvatures(curvatures)
    eta, mu = _lr_momentum(method, lr, momentum)
    trace, det = _trace_det(method, lam, eta, mu)
    return _scalar_or_array(_direction_rates(trace, det).max(axis=-1))


def regions(method: str, curvatures: ArrayLike, lr: ArrayLike, momentum: ArrayLike = 0.0) -> Any:
    r"""Classify each :math:`(\eta, \mu)` by how the error behaves in the long run.

    ``"divergent"`` where :func:`rate` :math:`\ge 1`. Otherwise the slowest mode decides
    (the directions whose rate is the largest, within a relative :math:`10^{-9}`):
    ``"monotone"`` when the root of largest modulus is real and positive in each of them
    (the error decays without changing sign), ``"oscillating"`` when it is complex (the
    error rotates between parameter and buffer) or negative (it flips sign every step).

    Parameters
    ----------
    method, curvatures, lr, momentum
        As for :func:`rate`.

    Returns
    -------
    str or numpy.ndarray of str
        Values in :data:`REGIONS`, shape ``broadcast(lr, momentum)``.

    Examples
    --------
    >>> regions("gd", [1.0, 20.0], lr=[0.05, 0.099, 0.1])  # 2 / (1 + 20) = 0.095
    array(['monotone', 'oscillating', 'divergent'], dtype='<U11')
    """
    lam = _curvatures(curvatures)
    eta, mu = _lr_momentum(method, lr, momentum)
    trace, det = _trace_det(method, lam, eta, mu)
    each = _direction_rates(trace, det)
    rho = each.max(axis=-1)
    slowest = each >= rho[..., None] * (1 - _TIE)
    positive = (trace**2 - 4 * det >= 0) & (trace > 0)
    monotone = np.all(positive | ~slowest, axis=-1)
    out = np.where(rho >= 1, REGIONS[2], np.where(monotone, REGIONS[0], REGIONS[1]))
    return _scalar_or_array(out)


def stability_limit(method: str, curvatures: ArrayLike, momentum: float = 0.0) -> float:
    r"""The learning rate above which the method stops converging (:func:`rate` :math:`\ge 1`).

    Gradient descent converges for :math:`\eta < 2/\lambda_{\max}`, heavy ball for
    :math:`\eta < 2(1+\mu)/\lambda_{\max}`, Nesterov for
    :math:`\eta < 2(1+\mu) / ((1+2\mu)\lambda_{\max})` (the Jury conditions on the
    characteristic polynomial at :math:`z = -1`; every :math:`\eta > 0` passes the one at
    :math:`z = 1`).

    Examples
    --------
    >>> stability_limit("heavy_ball", [1.0, 20.0], momentum=0.9)
    0.19
    """
    lam_max = float(_curvatures(curvatures).max())
    mu = float(_lr_momentum(method, 1.0, momentum)[1])
    if method == "gd":
        return 2 / lam_max
    if method == "heavy_ball":
        return 2 * (1 + mu) / lam_max
    return 2 * (1 + mu) / ((1 + 2 * mu) * lam_max)


@dataclass(frozen=True)
class Optimum:
    """The learning rate and momentum with the lowest :func:`rate`, and that rate.

    Attributes
    ----------
    method : str
    lr : float
    momentum : float
        0 for ``gd``.
    rate : float
    """

    method: str
    lr: float
    momentum: float
    rate: float


def optimum(method: str, curvatures: ArrayLike) -> Optimum:
    r"""The best :math:`(\eta, \mu)` of a method on the quadratic, in closed form.

    Only :math:`\lambda_{\min}` and :math:`\lambda_{\max}` matter (each direction's rate is
    quasi-convex in :math:`\lambda`), through :math:`\kappa = \lambda_{\max}/\lambda_{\min}`:

    - ``gd``: :math:`\eta^* = 2/(\lambda_{\min} + \lambda_{\max})`, rate
      :math:`(\kappa - 1)/(\kappa + 1)`;
    - ``heavy_ball`` (Polyak, 1964): :math:`\eta^* = 4/(\sqrt{\lambda_{\max}} +
      \sqrt{\lambda_{\min}})^2`, :math:`\mu^* = \left(\frac{\sqrt\kappa - 1}{\sqrt\kappa +
      1}\right)^2`, rate :math:`\sqrt{\mu^*} = (\sqrt\kappa - 1)/(\sqrt\kappa + 1)`: the
      number of steps per decade of error falls from about :math:`\kappa` to about
      :math:`\sqrt\kappa` times a constant;
    - ``nesterov`` (Lessard, Recht and Packard, 2016): :math:`\eta^* = 4/(3\lambda_{\max}
      + \lambda_{\min})`, :math:`\mu^* = (\sqrt{3\kappa+1} - 2)/(\sqrt{3\kappa+1} + 2)`,
      rate :math:`1 - 2/\sqrt{3\kappa + 1}`. There the slowest direction sits on the edge
      of the complex region (a double root) and the fastest one has a negative root of
      the same modulus; the tests check it against a fine grid search.

    Examples
    --------
    >>> best = optimum("heavy_ball", [1.0, 20.0])
    >>> round(best.lr, 4), round(best.momentum, 4), round(best.rate, 4)
    (0.1336, 0.4026, 0.6345)
    """
    _check_method(method)
    lam = _curvatures(curvatures)
    low, high = float(lam.min()), float(lam.max())
    kappa = high / low
    if method == "gd":
        return Optimum(method, 2 / (low + high), 0.0, (kappa - 1) / (kappa + 1))
    if method == "heavy_ball":
        root = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
        lr = 4 / (math.sqrt(high) + math.sqrt(low)) ** 2
        return Optimum(method, lr, root**2, root)
    s = math.sqrt(3 * kappa + 1)
    return Optimum(method, 4 / (3 * high + low), (s - 2) / (s + 2), 1 - 2 / s)


# --------------------------------------------------------------------------- measured


@dataclass(frozen=True, eq=False)  # arrays have no single truth value
class MeasuredRate:
    """The rate measured from a :class:`torch.optim.SGD` path, and the path's errors.

    Attributes
    ----------
    rate : float
        The geometric rate per step over the window (above 1 when the error grows).
    errors : numpy.ndarray
        :math:`\\lVert \\theta_t - \\theta^* \\rVert` for ``t = 0 ... steps``.
    window : tuple of int
        The steps ``(first, last)`` the rate was fitted on.
    diverged : bool
        Whether the run stopped because the error grew past :math:`10^{150}` times its
        start (or stopped being finite).
    """

    rate: float
    errors: np.ndarray
    window: tuple[int, int]
    diverged: bool

    @property
    def steps(self) -> int:
        """Steps run (fewer than asked when the error left the range the fit can use)."""
        return len(self.errors) - 1


# The run stops once the error has shrunk or grown by this factor: far from float64's
# limits (1e-308 .. 1e308), and enough to fit any rate between 0.1 and 10.
_RANGE = 1e150


def _window_start(n_points: int, window: float) -> int:
    last = n_points - 1
    return max(1, min(last - 2, round(last * (1 - window))))


def fitted_rate(errors: ArrayLike, window: float = 0.5) -> float:
    r"""The geometric rate per step of a sequence of errors, over its last ``window``.

    :math:`\exp` of the least-squares slope of :math:`\log s_t` against :math:`t`, with
    :math:`s_t = \sqrt{e_t^2 + e_{t-1}^2}`, over the last ``window`` of the steps (see
    :func:`measured_rate` for why the pairs). For any path whose error shrinks or grows
    geometrically, e.g. the distance to the minimum of a path of
    :func:`fashion_optim.toys.optimize_path`.

    Parameters
    ----------
    errors : array_like
        :math:`e_0, e_1, \dots \ge 0`, finite, at least 4 of them.
    window : float
        The fraction of the steps the fit uses, in (0, 1).

    Returns
    -------
    float
        0 when two consecutive errors in the window are exactly 0 (converged exactly).

    Examples
    --------
    >>> t = np.arange(200)  # an error that shrinks by 0.9 per step while it turns
    >>> round(fitted_rate(0.9**t * np.hypot(np.cos(0.7 * t), 0.5 * np.sin(0.7 * t))), 3)
    0.9
    """
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 1 or e.size < 4 or not np.all(np.isfinite(e) & (e >= 0)):
        raise ValueError(
            f"errors must be a 1-d sequence of at least 4 finite numbers >= 0, got shape "
            f"{e.shape}; cut a divergent path before it overflows."
        )
    if not 0 < window < 1:
        raise ValueError(f"window must be a fraction in (0, 1), got {window!r}.")
    first = _window_start(e.size, window)
    pair = np.hypot(e[first:], e[first - 1 : -1])
    if np.any(pair == 0):
        return 0.0
    t = np.arange(first, e.size, dtype=np.float64)
    return float(np.exp(np.polyfit(t, np.log(pair), 1)[0]))


def measured_rate(
    method: str,
    curvatures: ArrayLike,
    lr: float,
    momentum: float = 0.0,
    *,
    start: Sequence[float] | None = None,
    steps: int = 2000,
    window: float = 0.5,
) -> MeasuredRate:
    r"""Run :class:`torch.optim.SGD` on the quadratic and measure its convergence rate.

    The parameters start at ``start`` (all ones by default, so every direction is
    excited) and take up to ``steps`` steps of ``torch.optim.SGD(lr=lr,
    momentum=momentum, nesterov=method == "nesterov")``, in float64, with the gradient
    :math:`\lambda_i \theta_i` set as each step's ``.grad``. The run stops early once the
    error :math:`e_t = \lVert \theta_t \rVert` (the minimum is 0) has fallen below
    :math:`10^{-150}` or grown above :math:`10^{150}` times :math:`e_0`, or is no longer
    finite.

    The rate is measured on the last ``window`` of the steps run, where the slowest mode
    dominates: :math:`\exp` of the least-squares slope of :math:`\log s_t` against
    :math:`t`, with :math:`s_t = \sqrt{e_t^2 + e_{t-1}^2}`. Pairing two consecutive
    errors keeps the fit off the zeros of an oscillating error (a rotating mode passes
    near :math:`\theta = 0` without having converged), and :math:`s_t` shrinks at the
    same geometric rate as :math:`e_t`. What remains: an oscillation of :math:`\log s_t`
    of bounded size (its effect on the slope falls like one over the window's length),
    the transients of faster modes (a factor :math:`(\rho_2/\rho)^t`), and at a double
    root a factor :math:`t` (a bias of about :math:`1/t` in the log-rate): rates on the
    edge of the complex region are measured less exactly. A rate near 1 only needs the
    window to hold enough steps; a divergent run gives a rate above 1, measured before
    the error overflows.

    Parameters
    ----------
    method : {"gd", "heavy_ball", "nesterov"}
    curvatures : array_like
        The :math:`\lambda_i > 0`, one per parameter.
    lr : float
        :math:`\eta > 0`.
    momentum : float
        :math:`\mu \in [0, 1)`: 0 for ``gd``, above 0 for ``nesterov`` (torch requires it).
    start : sequence of float, optional
        :math:`\theta_0`, one value per curvature, not all zero.
    steps : int
        At most this many steps, at least 20.
    window : float
        The fraction of the steps run that the fit uses, in (0, 1).

    Returns
    -------
    MeasuredRate

    Examples
    --------
    >>> measured = measured_rate("heavy_ball", [1.0, 20.0], lr=0.05, momentum=0.5)
    >>> round(measured.rate, 4), round(rate("heavy_ball", [1.0, 20.0], 0.05, 0.5), 4)
    (0.8851, 0.8851)
    """
    import torch  # only the measured paths need it

    lam = _curvatures(curvatures)
    eta, mu = (float(v) for v in _lr_momentum(method, lr, momentum))
    if method == "nesterov" and mu == 0:
        raise ValueError(
            "torch.optim.SGD(nesterov=True) needs momentum > 0, got momentum=0; pass a "
            "positive momentum, or method='gd' (Nesterov with mu = 0 is gradient descent)."
        )
    if not (isinstance(steps, int) and steps >= 20):
        raise ValueError(f"steps must be an integer >= 20, got {steps!r}.")
    if not 0 < window < 1:
        raise ValueError(f"window must be a fraction in (0, 1), got {window!r}.")
    theta0 = np.ones_like(lam) if start is None else np.asarray(start, dtype=np.float64)
    if theta0.shape != lam.shape or not np.all(np.isfinite(theta0)) or not theta0.any():
        raise ValueError(
            f"start must hold {lam.size} finite numbers (one per curvature), not all zero, "
            f"got {start!r}."
        )
    curv = torch.from_numpy(lam)
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([theta], lr=eta, momentum=mu, nesterov=method == "nesterov")
    now = theta.detach().numpy()  # shares theta's memory: the optimizer steps in place
    e0 = float(np.linalg.norm(theta0))
    errors, diverged = [e0], False
    for _ in range(steps):
        theta.grad = curv * theta.detach()  # the gradient of f, as autograd would give it
        opt.step()
        e = math.sqrt(float(now @ now))
        errors.append(e)
        if not math.isfinite(e) or e > e0 * _RANGE:
            diverged = True
            break
        if e < e0 / _RANGE:
            break
    e = np.asarray(errors)
    if not np.isfinite(e[-1]):
        e = e[:-1]
    window_steps = (_window_start(e.size, window), e.size - 1)
    return MeasuredRate(fitted_rate(e, window), e, window_steps, diverged)
