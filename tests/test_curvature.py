"""The Hessian's largest eigenvalue, against closed forms and torch's own Hessian."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fashion_optim.curvature import (
    hessian_vector_product,
    largest_eigenvalue,
    power_iteration,
    top_hessian_eigenvalue,
)


def test_power_iteration_finds_a_known_spectrum():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    eigenvalues = np.array([5.0, 2.0, 1.0, 0.5, -0.3, 0.1])
    a = torch.tensor(q @ np.diag(eigenvalues) @ q.T)
    est = power_iteration(
        lambda v: a @ v, torch.ones(6, dtype=torch.float64), tol=1e-12, max_iter=1000
    )
    assert est.converged
    assert est.value == pytest.approx(5.0, rel=1e-9)
    assert est.iterations == len(est.history)


def test_power_iteration_keeps_a_negative_top_eigenvalue_sign():
    a = torch.diag(torch.tensor([-4.0, 1.0, 2.0], dtype=torch.float64))
    est = power_iteration(
        lambda v: a @ v, torch.ones(3, dtype=torch.float64), tol=1e-12, max_iter=2000
    )
    assert est.value == pytest.approx(-4.0, rel=1e-6)


def test_hessian_vector_product_of_a_quadratic_is_the_matrix_times_the_vector():
    torch.manual_seed(0)
    m = torch.randn(4, 4, dtype=torch.float64)
    a = m @ m.T
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    matvec = hessian_vector_product(lambda: 0.5 * x @ a @ x, [x])
    v = torch.randn(4, dtype=torch.float64)
    torch.testing.assert_close(matvec(v), a @ v)


def test_top_eigenvalue_agrees_with_torchs_full_hessian_on_a_small_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x = torch.randn(32, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (32,))
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def loss_of_flat(flat):
        chunks = torch.split(flat, sizes)
        tensors = [c.reshape(s) for c, s in zip(chunks, shapes, strict=True)]
        out = torch.func.functional_call(
            model, dict(zip([n for n, _ in model.named_parameters()], tensors, strict=True)), (x,)
        )
        return nn.functional.cross_entropy(out, y)

    flat = torch.cat([p.detach().reshape(-1) for p in params])
    hessian = torch.autograd.functional.hessian(loss_of_flat, flat)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    expected = float(eigenvalues[eigenvalues.abs().argmax()])
    est = top_hessian_eigenvalue(model, x, y, tol=1e-12, max_iter=5000)
    assert est.value == pytest.approx(expected, rel=1e-6)


def test_top_eigenvalue_leaves_the_models_mode_and_weights_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.Linear(3, 2))
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    first = top_hessian_eigenvalue(model, x, y, max_iter=20)
    assert model.training
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p.detach(), b)
    # eval mode inside: dropout off, so the same seed gives the same estimate
    assert top_hessian_eigenvalue(model, x, y, max_iter=20) == first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_iter": 0}, "max_iter must be an integer >= 1"),
        ({"tol": 0.0}, "tol must be > 0"),
    ],
)
def test_power_iteration_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        power_iteration(lambda v: v, torch.ones(2), **kwargs)


def test_power_iteration_rejects_a_zero_start():
    with pytest.raises(ValueError, match="start vector must be non-zero"):
        power_iteration(lambda v: v, torch.zeros(2))


def test_the_largest_eigenvalue_is_found_under_a_larger_negative_one():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    eigenvalues = np.array([-6.0, 3.0, 1.0, -1.0, 0.5])  # the largest in magnitude < 0
    a = torch.tensor(q @ np.diag(eigenvalues) @ q.T)
    start = torch.ones(5, dtype=torch.float64)
    assert power_iteration(lambda v: a @ v, start, tol=1e-12, max_iter=2000).value == (
        pytest.approx(-6.0, rel=1e-9)
    )
    est = largest_eigenvalue(lambda v: a @ v, start, tol=1e-12, max_iter=4000)
    assert est.converged
    assert est.value == pytest.approx(3.0, rel=1e-9)
    assert est.history[-1] == est.value and len(est.history) == est.iterations


def test_the_largest_eigenvalue_of_n_distinct_eigenvalues_takes_at_most_n_products():
    """Lanczos is exact once its Krylov space is the whole space."""
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    eigenvalues = np.array([2.0, 1.9, 1.8, 0.3, -0.5, -2.5, -2.6, -3.0])
    a = torch.tensor(q @ np.diag(eigenvalues) @ q.T)
    start = torch.tensor(rng.normal(size=8))
    est = largest_eigenvalue(lambda v: a @ v, start, tol=1e-10, max_iter=50)
    assert est.converged and est.iterations <= 8
    assert est.value == pytest.approx(2.0, rel=1e-10)
    # Ritz values only grow towards the largest eigenvalue (Cauchy interlacing)
    assert np.all(np.diff(est.history) >= -1e-12)


def test_the_largest_eigenvalue_stops_at_max_iter():
    a = torch.diag(torch.linspace(-1.0, 1.0, 200, dtype=torch.float64))
    start = torch.ones(200, dtype=torch.float64)
    est = largest_eigenvalue(lambda v: a @ v, start, tol=1e-12, max_iter=5)
    assert est.iterations == 5 and not est.converged
    assert est.value < 1.0  # a Ritz value never passes the largest eigenvalue


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_iter": 0}, "max_iter must be an integer >= 1"), ({"tol": 0.0}, "tol must be > 0")],
)
def test_the_largest_eigenvalue_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        largest_eigenvalue(lambda v: v, torch.ones(2), **kwargs)
    with pytest.raises(ValueError, match="start vector must be non-zero"):
        largest_eigenvalue(lambda v: v, torch.zeros(2))


@pytest.mark.parametrize("seed", [0, 3])
def test_largest_hessian_eigenvalue_agrees_with_torchs_full_hessian(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 3)).double()
    x = torch.randn(24, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (24,))
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach() for p in model.parameters()]
    sizes = [p.numel() for p in params]

    def loss_of_flat(flat):
        chunks = torch.split(flat, sizes)
        tensors = [c.reshape(p.shape) for c, p in zip(chunks, params, strict=True)]
        weights = dict(zip(names, tensors, strict=True))
        out = torch.func.functional_call(model, weights, (x,))
        return nn.functional.cross_entropy(out, y)

    flat = torch.cat([p.reshape(-1) for p in params])
    hessian = torch.autograd.functional.hessian(loss_of_flat, flat)
    expected = float(torch.linalg.eigvalsh(hessian).max())
    est = top_hessian_eigenvalue(model, x, y, tol=1e-13, max_iter=20000, which="largest")
    assert est.value == pytest.approx(expected, rel=1e-6)


def test_top_eigenvalue_rejects_an_unknown_which():
    with pytest.raises(ValueError, match="which must be 'magnitude' or 'largest'"):
        top_hessian_eigenvalue(
            nn.Linear(2, 2), torch.ones(1, 2), torch.zeros(1).long(), which="max"
        )
