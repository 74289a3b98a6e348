"""Toy surfaces in two dimensions, where what an optimizer does can be drawn.

:data:`SURFACES` holds an ill-conditioned quadratic, Rosenbrock's valley and a
two-parameter linear regression; :func:`optimize_path` runs any torch optimizer on one,
:func:`surface_grid` tabulates one for a contour plot. Planes through the CNN's weights
are :mod:`fashion_optim.landscape`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "QUADRATIC_CURVATURES",
    "SURFACES",
    "Surface",
    "linear_regression",
    "optimize_path",
    "quadratic",
    "rosenbrock",
    "surface_grid",
]


@dataclass(frozen=True)
class Surface:
    """A function of two parameters with a known minimum.

    Attributes
    ----------
    name : str
    fn : callable
        Maps a tensor of shape ``[..., 2]`` to the values ``[...]``; differentiable.
    minimum : tuple of float
        Where ``fn`` is lowest.
    xlim, ylim : tuple of float
        A plotting window that holds ``minimum`` and ``start``.
    start : tuple of float
        A default starting point for :func:`optimize_path`.
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)
    minimum: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    start: tuple[float, float]

    def __call__(self, point: torch.Tensor) -> torch.Tensor:
        return self.fn(point)


#: Curvatures of :data:`quadratic`: condition number 20.
QUADRATIC_CURVATURES = (1.0, 20.0)


def _quadratic(p: torch.Tensor) -> torch.Tensor:
    a, b = QUADRATIC_CURVATURES
    return 0.5 * (a * p[..., 0] ** 2 + b * p[..., 1] ** 2)


def _rosenbrock(p: torch.Tensor) -> torch.Tensor:
    x, y = p[..., 0], p[..., 1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _linear_regression_data() -> tuple[np.ndarray, np.ndarray]:
    # The synthetic data of Godoy's "Deep Learning with PyTorch Step-by-Step", chapter 0.
    rng = np.random.RandomState(42)  # the legacy generator reproduces the book's data
    x = rng.rand(100)
    y = 1.0 + 2.0 * x + 0.1 * rng.randn(100)
    return x, y


_LR_X, _LR_Y = (torch.from_numpy(a) for a in _linear_regression_data())


def _linear_regression(p: torch.Tensor) -> torch.Tensor:
    b, w = p[..., 0:1], p[..., 1:2]
    x, y = _LR_X.to(p.device), _LR_Y.to(p.device)
    return ((b + w * x - y) ** 2).mean(-1)


def _lstsq_minimum() -> tuple[float, float]:
    x, y = _linear_regression_data()
    design = np.stack([np.ones_like(x), x], axis=1)
    b, w = np.linalg.lstsq(design, y, rcond=None)[0]
    return float(b), float(w)


def _book_start() -> tuple[float, float]:
    # The book's initialisation: np.random.seed(42); b = randn(1); w = randn(1).
    b, w = np.random.RandomState(42).randn(2)
    return float(b), float(w)


#: Ill-conditioned quadratic bowl.
#:
#: .. math:: f(x, y) = \tfrac12 (x^2 + 20\,y^2),
#:
#: Hessian :math:`\operatorname{diag}(1, 20)`, condition number 20, minimum 0 at the origin.
#: Gradient descent converges for learning rates below :math:`2/20 = 0.1` and zig-zags
#: across the narrow :math:`y` direction well before that.
quadratic = Surface(
    name="quadratic",
    fn=_quadratic,
    minimum=(0.0, 0.0),
    xlim=(-10.0, 10.0),
    ylim=(-4.0, 4.0),
    start=(-8.0, 2.0),
)

#: Rosenbrock's banana valley.
#:
#: .. math:: f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2,
#:
#: minimum 0 at :math:`(1, 1)` at the end of a long, flat, curved valley; the classic start
#: is :math:`(-1.2, 1)`.
rosenbrock = Surface(
    name="rosenbrock",
    fn=_rosenbrock,
    minimum=(1.0, 1.0),
    xlim=(-2.0, 2.0),
    ylim=(-1.0, 3.0),
    start=(-1.2, 1.0),
)

#: Mean squared error of a two-parameter linear regression.
#:
#: The data of Godoy's *Deep Learning with PyTorch Step-by-Step*: 100 points
#: :math:`y = 1 + 2x + \varepsilon`, :math:`x \sim U(0, 1)`, :math:`\varepsilon \sim
#: \mathcal N(0, 0.1^2)`, drawn with ``np.random.seed(42)``. The parameters are
#: :math:`(b, w)`:
#:
#: .. math:: L(b, w) = \frac1{100} \sum_{i=1}^{100} (b + w x_i - y_i)^2,
#:
#: minimum at the least-squares solution (close to :math:`(1, 2)`); the window is the
#: book's :math:`[1 - 3, 1 + 3] \times [2 - 3, 2 + 3]` around the true :math:`(b, w)`, and
#: the start is the book's random initialisation.
linear_regression = Surface(
    name="linear_regression",
    fn=_linear_regression,
    minimum=_lstsq_minimum(),
    xlim=(-2.0, 4.0),
    ylim=(-1.0, 5.0),
    start=_book_start(),
)

#: The toy surfaces by name.
SURFACES: dict[str, Surface] = {s.name: s for s in (quadratic, rosenbrock, linear_regression)}


def _get_surface(surface: Surface | str) -> Surface:
    if isinstance(surface, Surface):
        return surface
    if surface in SURFACES:
        return SURFACES[surface]
    raise ValueError(f"unknown surface {surface!r}; valid names: {', '.join(SURFACES)}.")


def optimize_path(
    surface: Surface | str,
    optimizer_factory: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    steps: int,
    start: Sequence[float] | None = None,
) -> np.ndarray:
    """Run an optimizer on a toy surface and return the points it visits.

    Parameters
    ----------
    surface : Surface or str
        A :class:`Surface` or a name in :data:`SURFACES`.
    optimizer_factory : callable
        ``optimizer_factory(params)`` returns a torch optimizer over ``params`` (a list of
        one tensor of shape ``[2]``), e.g.
        ``lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9)``.
    steps : int
        Optimizer steps, at least 0. Each step calls ``optimizer.step(closure)``, so
        :class:`torch.optim.LBFGS` works too (one step may then evaluate the surface
        several times).
    start : tuple of float, optional
        The starting point; ``surface.start`` by default.

    Returns
    -------
    numpy.ndarray
        ``[steps + 1, 2]`` float64 points, the start first. A divergent run shows up as
        infinite or NaN points; the path is not cut short.

    Examples
    --------
    >>> path = optimize_path("quadratic", lambda p: torch.optim.SGD(p, lr=0.05), steps=100)
    >>> path.shape
    (101, 2)
    """
    surface = _get_surface(surface)
    if not (isinstance(steps, int) and steps >= 0):
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}.")
    start = surface.start if start is None else start
    point = torch.tensor(start, dtype=torch.float64)
    if point.shape != (2,):
        raise ValueError(f"start must be a pair (x, y), got {start!r}.")
    point.requires_grad_(True)
    optimizer = optimizer_factory([point])
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer_factory must return a torch.optim.Optimizer, got {type(optimizer)}."
        )

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        value = surface.fn(point)
        value.backward()
        return value

    path = np.empty((steps + 1, 2))
    path[0] = point.detach().numpy()
    for i in range(1, steps + 1):
        optimizer.step(closure)
        path[i] = point.detach().numpy()
    return path


def surface_grid(surface: Surface | str, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tabulate a surface over its window for :func:`matplotlib.pyplot.contour`.

    Returns
    -------
    X, Y, Z : numpy.ndarray
        ``[n, n]`` each, from :func:`numpy.meshgrid` (``"xy"`` indexing): ``Z[i, j]`` is
        the value at ``(X[i, j], Y[i, j])``.

    Examples
    --------
    >>> X, Y, Z = surface_grid("rosenbrock", n=50)
    >>> Z.shape
    (50, 50)
    """
    surface = _get_surface(surface)
    if not (isinstance(n, int) and n >= 2):
        raise ValueError(f"n must be an integer >= 2, got {n!r}.")
    X, Y = np.meshgrid(np.linspace(*surface.xlim, n), np.linspace(*surface.ylim, n))
    with torch.no_grad():
        Z = surface.fn(torch.from_numpy(np.stack([X, Y], axis=-1))).numpy()
    return X, Y, Z
