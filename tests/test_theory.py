"""Momentum's theory on a quadratic: the closed forms against eigenvalues computed
numerically, against a grid search, and against rates measured from torch.optim.SGD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fashion_optim import theory, toys

CURV = toys.QUADRATIC_CURVATURES  # (1, 20): the chapter's quadratic
MOMENTUM_METHODS = ("heavy_ball", "nesterov")


def torch_step_matrix(method, lam, eta, mu):
    """The matrix of one torch.optim.SGD step on f = lam theta^2 / 2, column by column:
    the step applied to each unit state (theta, buffer)."""
    if method == "gd":
        p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([p], lr=eta)
        (0.5 * lam * p**2).sum().backward()
        opt.step()
        return np.array([[p.item()]])
    columns = []
    for theta, buffer in ((1.0, 0.0), (0.0, 1.0)):
        p = torch.tensor([theta], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([p], lr=eta, momentum=mu, nesterov=method == "nesterov")
        opt.state[p]["momentum_buffer"] = torch.tensor([buffer], dtype=torch.float64)
        (0.5 * lam * p**2).sum().backward()
        opt.step()
        columns.append([p.item(), opt.state[p]["momentum_buffer"].item()])
    return np.array(columns).T


def random_points(n, seed):
    """(method, curvatures, eta, mu): eta from far below to beyond the stability limit."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        method = str(rng.choice(theory.METHODS))
        lam = np.exp(rng.uniform(np.log(0.01), np.log(100), size=rng.integers(1, 5)))
        mu = 0.0 if method == "gd" else float(rng.uniform(0, 0.999))
        eta = theory.stability_limit(method, lam, mu) * float(np.exp(rng.uniform(-7, 1)))
        yield method, lam, eta, mu


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("method", theory.METHODS)
def test_iteration_matrix_is_one_step_of_torch_sgd(method):
    rng = np.random.default_rng(1)
    for _ in range(20):
        lam, eta = float(rng.uniform(0.1, 50)), float(rng.uniform(1e-3, 0.5))
        mu = 0.0 if method == "gd" else float(rng.uniform(0, 0.99))
        expected = torch_step_matrix(method, lam, eta, mu)
        np.testing.assert_allclose(theory.iteration_matrix(method, lam, eta, mu), expected)


def test_closed_form_rates_are_the_spectral_radius_of_the_iteration_matrices():
    for method, lam, eta, mu in random_points(400, seed=2):
        built = [torch_step_matrix(method, lam_i, eta, mu) for lam_i in lam]
        radius = max(np.abs(np.linalg.eigvals(m)).max() for m in built)
        assert theory.rate(method, lam, eta, mu) == pytest.approx(radius, rel=1e-9, abs=1e-12)


def test_closed_form_eigenvalues_are_those_of_the_iteration_matrices():
    for method, lam, eta, mu in random_points(200, seed=3):
        closed = theory.eigenvalues(method, lam, eta, mu)
        assert closed.shape == (len(lam), 1 if method == "gd" else 2)
        for lam_i, roots in zip(lam, closed, strict=True):
            numeric = np.linalg.eigvals(theory.iteration_matrix(method, lam_i, eta, mu))
            gap = np.abs(roots[:, None] - numeric[None, :])
            # every closed-form root is a numerical one, and the other way round
            assert gap.min(axis=1).max() < 1e-7 and gap.min(axis=0).max() < 1e-7
            assert np.prod(roots) == pytest.approx(np.prod(numeric), abs=1e-12)
            assert abs(roots[0]) >= abs(roots[-1])  # the larger modulus first


def test_rates_broadcast_over_grids_of_learning_rate_and_momentum():
    eta, mu = np.geomspace(1e-3, 0.3, 7)[:, None], np.linspace(0, 0.95, 5)[None, :]
    grid = theory.rate("nesterov", CURV, eta, mu)
    assert grid.shape == (7, 5)
    for i in range(7):
        for j in range(5):
            assert grid[i, j] == theory.rate("nesterov", CURV, eta[i, 0], mu[0, j])
    assert isinstance(theory.rate("gd", CURV, 0.05), float)
    assert isinstance(theory.regions("gd", CURV, 0.05), str)


def test_heavy_ball_rate_is_sqrt_mu_wherever_every_direction_is_complex():
    mu = 0.81
    low, high = (1 - np.sqrt(mu)) ** 2 / min(CURV), (1 + np.sqrt(mu)) ** 2 / max(CURV)
    eta = np.linspace(low, high, 50)[1:-1]
    np.testing.assert_allclose(theory.rate("heavy_ball", CURV, eta, mu), np.sqrt(mu))
    assert np.all(theory.rate("heavy_ball", CURV, [low * 0.9, high * 1.1], mu) > np.sqrt(mu))


# --------------------------------------------------------------------------- optima


@pytest.mark.parametrize("kappa", [3.0, 20.0, 400.0])
@pytest.mark.parametrize("method", theory.METHODS)
def test_the_optimum_is_the_minimum_of_a_fine_grid_search(method, kappa):
    lam = (0.5, 0.5 * kappa)
    best = theory.optimum(method, lam)
    # at the optimum roots are double: a rounding error eps in the discriminant moves them
    # by sqrt(eps), about 1e-8
    assert theory.rate(method, lam, best.lr, best.momentum) == pytest.approx(best.rate, abs=1e-7)
    eta = np.geomspace(best.lr / 4, best.lr * 4, 1201)[:, None]
    mu = np.array([[0.0]]) if method == "gd" else np.linspace(0, 0.999, 1001)[None, :]
    grid = theory.rate(method, lam, eta, mu)
    assert grid.min() >= best.rate - 1e-7  # nothing on the grid beats it
    assert grid.min() == pytest.approx(best.rate, abs=2e-3)  # and the grid comes close
    i, j = np.unravel_index(grid.argmin(), grid.shape)
    assert eta[i, 0] == pytest.approx(best.lr, rel=0.05)
    assert mu[0, j] == pytest.approx(best.momentum, abs=0.01)


def test_the_optima_and_the_square_root_speed_up():
    kappa = theory.condition_number(CURV)
    gd, hb = theory.optimum("gd", CURV), theory.optimum("heavy_ball", CURV)
    assert kappa == 20
    assert gd.lr == pytest.approx(2 / 21) and gd.rate == pytest.approx(19 / 21)
    assert hb.rate == pytest.approx((np.sqrt(20) - 1) / (np.sqrt(20) + 1))
    assert hb.momentum == pytest.approx(hb.rate**2)
    # steps per decade of error: about kappa / 2 for gd and sqrt(kappa) / 2 for heavy ball
    for big in (1e2, 1e4, 1e6):
        lam = (1.0, big)
        ratio = np.log(theory.optimum("heavy_ball", lam).rate) / np.log(
            theory.optimum("gd", lam).rate
        )
        assert ratio == pytest.approx(np.sqrt(big), rel=1 / big)


# --------------------------------------------------------------------------- regions


@pytest.mark.parametrize("method", theory.METHODS)
def test_each_method_diverges_exactly_beyond_its_stability_limit(method):
    rng = np.random.default_rng(4)
    for _ in range(50):
        lam = np.exp(rng.uniform(-3, 4, size=3))
        mu = 0.0 if method == "gd" else float(rng.uniform(0, 0.99))
        edge = theory.stability_limit(method, lam, mu)
        below, above = edge * (1 - 1e-9), edge * (1 + 1e-9)
        assert theory.rate(method, lam, below, mu) < 1 <= theory.rate(method, lam, above, mu)
        assert theory.regions(method, lam, above, mu) == "divergent"
        assert theory.regions(method, lam, below, mu) != "divergent"


def test_gradient_descent_and_heavy_ball_stability_limits_in_closed_form():
    assert theory.stability_limit("gd", CURV) == pytest.approx(2 / 20)
    for mu in (0.0, 0.5, 0.9):  # heavy ball: stable iff 0 < eta lambda < 2 (1 + mu)
        assert theory.stability_limit("heavy_ball", CURV, mu) == pytest.approx(2 * (1 + mu) / 20)
        eta = np.geomspace(1e-4, 1, 2001)
        stable = theory.rate("heavy_ball", CURV, eta, mu) < 1
        np.testing.assert_array_equal(stable, eta * max(CURV) < 2 * (1 + mu))


def test_gradient_descent_stops_being_monotone_at_its_optimum():
    best = theory.optimum("gd", CURV).lr
    eta = np.array([0.5, 0.999, 1.001, 1.04, 1.1]) * best  # 2 / 20 = 1.05 best
    kinds = theory.regions("gd", CURV, eta)
    assert kinds.tolist() == ["monotone", "monotone", "oscillating", "oscillating", "divergent"]


def test_heavy_ball_regions_follow_the_roots_of_the_slowest_direction():
    # small eta, small mu: real positive roots; large mu: complex; eta past the limit
    assert theory.regions("heavy_ball", CURV, 0.01, 0.05) == "monotone"
    assert theory.regions("heavy_ball", CURV, 0.01, 0.9) == "oscillating"
    assert theory.regions("heavy_ball", CURV, 0.2, 0.9) == "divergent"
    eig = theory.eigenvalues("heavy_ball", CURV, 0.01, 0.05)
    assert np.all(eig.imag == 0) and eig[0, 0].real > 0


# --------------------------------------------------------------------------- measured


def test_measured_rates_match_the_predictions():
    """Within 1e-3 on the quadratic of the chapter and on random well-separated ones.

    The fit uses the last 1,000 of 2,000 steps (or half of a shorter run). There the
    oscillation of an error that rotates moves the log-slope by about 1e-5, the factor t
    of a double root by at most log(2) / 1000 = 7e-4, and the transient of the next
    slowest direction by (rho_2 / rho)^1000: curvatures at least a factor 2 apart keep it
    negligible unless both rates are within about 1e-3 of 1.
    """
    rng = np.random.default_rng(5)
    points = [("gd", CURV, 0.05, 0.0), ("heavy_ball", CURV, 0.01, 0.9)]
    for _ in range(30):
        method = str(rng.choice(theory.METHODS))
        lam = np.exp(np.cumsum(rng.uniform(np.log(2), np.log(10), size=2)))
        mu = 0.0 if method == "gd" else float(rng.uniform(0.05, 0.98))
        eta = theory.stability_limit(method, lam, mu) * float(np.exp(rng.uniform(-4, 0)))
        points.append((method, lam, eta * 0.98, mu))
    for method, lam, eta, mu in points:
        predicted = theory.rate(method, lam, eta, mu)
        if predicted > 0.998:  # too slow for 2,000 steps to leave the transient behind
            continue
        measured = theory.measured_rate(method, lam, eta, mu)
        assert not measured.diverged
        assert measured.rate == pytest.approx(predicted, abs=1e-3), (method, lam, eta, mu)


def test_measured_paths_are_those_of_landscape_optimize_path():
    # the same torch.optim.SGD on the same quadratic, from the surface's start
    make = lambda p: torch.optim.SGD(p, lr=0.03, momentum=0.7, nesterov=True)  # noqa: E731
    path = toys.optimize_path("quadratic", make, 100)
    measured = theory.measured_rate(
        "nesterov", CURV, 0.03, 0.7, start=toys.quadratic.start, steps=100
    )
    np.testing.assert_allclose(measured.errors, np.linalg.norm(path, axis=1), rtol=1e-12)


def test_a_divergent_run_stops_and_measures_its_growth():
    edge = theory.stability_limit("heavy_ball", CURV, 0.5)
    measured = theory.measured_rate("heavy_ball", CURV, edge * 1.2, 0.5)
    assert measured.diverged and measured.steps < 2000
    assert np.all(np.isfinite(measured.errors))
    predicted = theory.rate("heavy_ball", CURV, edge * 1.2, 0.5)
    assert predicted > 1 and measured.rate == pytest.approx(predicted, abs=1e-3)
    below = theory.measured_rate("gd", CURV, 0.099)  # just inside 2 / 20
    assert not below.diverged and below.rate < 1


def test_a_fast_run_stops_early_and_the_window_is_its_last_half():
    measured = theory.measured_rate("gd", [1.0], 0.9)
    assert measured.steps < 2000  # 0.1 per step: 1e-150 within about 150 steps
    first, last = measured.window
    assert last == measured.steps and first == round(last / 2)
    assert measured.rate == pytest.approx(0.1, abs=1e-6)


def test_fitted_rate_sees_through_a_turning_error_and_a_fast_transient():
    t = np.arange(400)
    turning = 0.95**t * np.abs(np.cos(0.3 * t))  # passes near zero every ten steps
    assert theory.fitted_rate(turning) == pytest.approx(0.95, abs=1e-3)
    assert theory.fitted_rate(0.9**t + 1e3 * 0.5**t) == pytest.approx(0.9, abs=1e-9)
    assert theory.fitted_rate(1.1 ** t[:50], window=0.2) == pytest.approx(1.1)
    assert theory.fitted_rate([1.0, 0.5, 0.0, 0.0, 0.0, 0.0]) == 0.0  # converged exactly


def test_the_slowest_direction_keeps_its_sign_only_in_the_monotone_region():
    for mu, kind in ((0.05, "monotone"), (0.9, "oscillating")):
        assert theory.regions("heavy_ball", CURV, 0.01, mu) == kind
        theta = torch.ones(2, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([theta], lr=0.01, momentum=mu)
        signs = []
        for _ in range(400):
            opt.zero_grad()
            (0.5 * (torch.tensor(CURV, dtype=torch.float64) * theta**2).sum()).backward()
            opt.step()
            signs.append(np.sign(theta[0].item()))  # curvature 1: the slowest direction
        changes = np.count_nonzero(np.diff(signs[200:]))
        assert (changes == 0) == (kind == "monotone")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: theory.rate("adam", CURV, 0.1), r"unknown method 'adam'; choose one of"),
        (lambda: theory.rate("gd", CURV, 0.0), r"lr \(the learning rate eta\) must be .* > 0"),
        (lambda: theory.rate("gd", CURV, [0.1, -1]), r"got -1.0; pass a positive step size"),
        (lambda: theory.rate("heavy_ball", CURV, 0.1, 1.0), r"momentum \(mu\) must be in \[0, 1\)"),
        (lambda: theory.rate("nesterov", CURV, 0.1, -0.1), r"got -0.1; pass a value such as 0.9"),
        (lambda: theory.rate("gd", CURV, 0.1, 0.9), r"no momentum, got momentum=0.9; pass"),
        (lambda: theory.rate("gd", [1.0, 0.0], 0.1), r"must be finite and > 0.*at index 1"),
        (lambda: theory.rate("gd", [], 0.1), r"non-empty sequence"),
        (lambda: theory.optimum("gd", [-1.0]), r"Hessian's eigenvalues, all positive"),
        (lambda: theory.measured_rate("nesterov", CURV, 0.1), r"nesterov=True\) needs momentum"),
        (lambda: theory.measured_rate("gd", CURV, 0.1, steps=5), r"steps must be an integer"),
        (lambda: theory.measured_rate("gd", CURV, 0.1, window=1.0), r"window must be a fraction"),
        (lambda: theory.measured_rate("gd", CURV, 0.1, start=[0, 0]), r"not all zero"),
        (lambda: theory.measured_rate("gd", CURV, 0.1, start=[1.0]), r"one per curvature"),
        (lambda: theory.fitted_rate([1.0, 0.5, 0.25]), r"at least 4 finite numbers >= 0"),
        (lambda: theory.fitted_rate([1.0, 2.0, np.inf, 9.0]), r"cut a divergent path"),
        (lambda: theory.fitted_rate([1.0] * 9, window=0), r"window must be a fraction"),
    ],
)
def test_bad_input_raises_a_value_error_that_names_the_problem_and_the_fix(call, message):
    with pytest.raises(ValueError, match=message):
        call()
