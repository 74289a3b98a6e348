"""Tests for fashion_optim.toys: the two-dimensional toy surfaces and optimizers' paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fashion_optim.toys import (
    QUADRATIC_CURVATURES as CURV,
)
from fashion_optim.toys import (
    SURFACES,
    linear_regression,
    optimize_path,
    quadratic,
    rosenbrock,
    surface_grid,
)


def value_and_grad(surface, point):
    p = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    value = surface.fn(p)
    value.backward()
    return float(value.detach()), p.grad.numpy()


def test_surfaces_registry():
    assert set(SURFACES) == {"quadratic", "rosenbrock", "linear_regression"}
    for name, s in SURFACES.items():
        assert s.name == name
        for point in (s.minimum, s.start):
            assert s.xlim[0] < point[0] < s.xlim[1]
            assert s.ylim[0] < point[1] < s.ylim[1]


def test_quadratic_closed_form():
    a, b = CURV
    assert b / a == 20  # the documented condition number
    assert value_and_grad(quadratic, (3.0, -2.0))[0] == 0.5 * (a * 9 + b * 4)
    value, grad = value_and_grad(quadratic, quadratic.minimum)
    assert value == 0 and np.all(grad == 0)


def test_rosenbrock_minimum():
    value, grad = value_and_grad(rosenbrock, (1.0, 1.0))
    assert rosenbrock.minimum == (1.0, 1.0)
    assert value == 0.0 and np.all(grad == 0)
    assert value_and_grad(rosenbrock, (-1.2, 1.0))[0] == pytest.approx(24.2)


def test_linear_regression_minimum_is_least_squares():
    # The book's data: np.random.seed(42); x = rand(N, 1); y = 1 + 2x + .1 randn(N, 1).
    rng = np.random.RandomState(42)
    x = rng.rand(100, 1)
    y = 1 + 2 * x + 0.1 * rng.randn(100, 1)
    design = np.hstack([np.ones_like(x), x])
    (b, w), residual, *_ = np.linalg.lstsq(design, y[:, 0], rcond=None)
    np.testing.assert_allclose(linear_regression.minimum, (b, w), rtol=1e-12)
    value, grad = value_and_grad(linear_regression, linear_regression.minimum)
    assert value == pytest.approx(residual[0] / 100, rel=1e-10)
    np.testing.assert_allclose(grad, 0, atol=1e-12)
    assert linear_regression.start == pytest.approx((0.49671415, -0.1382643))


def test_surface_fn_is_batched():
    points = torch.tensor([[0.5, 1.5], [2.0, -1.0], [1.0, 2.0]], dtype=torch.float64)
    for s in SURFACES.values():
        batched = s.fn(points)
        assert batched.shape == (3,)
        for i in range(3):
            assert float(batched[i]) == pytest.approx(float(s.fn(points[i])), rel=1e-14)


@pytest.mark.parametrize("lr", [0.01, 0.05, 0.09])
def test_optimize_path_sgd_on_quadratic_is_the_closed_form(lr):
    steps = 400
    path = optimize_path(quadratic, lambda p: torch.optim.SGD(p, lr=lr), steps)
    assert path.shape == (steps + 1, 2)
    assert tuple(path[0]) == quadratic.start
    k = np.arange(steps + 1)[:, None]
    expected = np.array(quadratic.start) * (1 - lr * np.array(CURV)) ** k
    np.testing.assert_allclose(path, expected, rtol=1e-10, atol=1e-12)
    if lr >= 0.05:  # contraction factors max(1 - lr, |1 - 20 lr|) <= 0.95
        np.testing.assert_allclose(path[-1], quadratic.minimum, atol=1e-7)


def test_optimize_path_converges_on_linear_regression():
    # Hessian eigenvalues of the MSE are about 2.6 and 0.16: lr = 0.5 contracts by 0.92.
    path = optimize_path("linear_regression", lambda p: torch.optim.SGD(p, lr=0.5), 400)
    np.testing.assert_allclose(path[-1], linear_regression.minimum, atol=1e-9)


def test_optimize_path_runs_closure_optimizers_on_rosenbrock():
    path = optimize_path(
        rosenbrock,
        lambda p: torch.optim.LBFGS(p, lr=1.0, line_search_fn="strong_wolfe"),
        10,
        start=(-1.5, 2.0),
    )
    assert tuple(path[0]) == (-1.5, 2.0)
    np.testing.assert_allclose(path[-1], (1.0, 1.0), atol=1e-5)


def test_optimize_path_validation():
    with pytest.raises(ValueError, match="unknown surface 'himmelblau'; valid names"):
        optimize_path("himmelblau", lambda p: torch.optim.SGD(p, lr=0.1), 3)
    with pytest.raises(ValueError, match="steps must be an integer >= 0, got -1"):
        optimize_path(quadratic, lambda p: torch.optim.SGD(p, lr=0.1), -1)
    with pytest.raises(ValueError, match="start must be a pair"):
        optimize_path(quadratic, lambda p: torch.optim.SGD(p, lr=0.1), 3, start=(1, 2, 3))
    with pytest.raises(TypeError, match=r"must return a torch\.optim\.Optimizer"):
        optimize_path(quadratic, lambda p: None, 3)


def test_surface_grid():
    X, Y, Z = surface_grid(rosenbrock, n=31)
    assert X.shape == Y.shape == Z.shape == (31, 31)
    assert X[0, 0] == rosenbrock.xlim[0] and X[0, -1] == rosenbrock.xlim[1]
    assert Y[0, 0] == rosenbrock.ylim[0] and Y[-1, 0] == rosenbrock.ylim[1]
    i, j = 7, 19
    assert Z[i, j] == pytest.approx((1 - X[i, j]) ** 2 + 100 * (Y[i, j] - X[i, j] ** 2) ** 2)
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        surface_grid(quadratic, n=1)
