"""Tests for fashion_optim.landscape: PCA planes, random planes and loss surfaces."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from fashion_optim.landscape import (
    Plane,
    filter_normalized_directions,
    loss_surface,
    losses_at,
    pca_plane,
    plane_gap,
    project,
    random_plane,
    random_walk_explained_variance,
    step_autocorrelation,
)

# --------------------------------------------------------------------------- pca plane


def plane_trajectories(P=40, seed=0):
    """Two trajectories from one start, inside a known 2-d affine subspace of R^P."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((P, 2)))[0].T  # [2, P], orthonormal
    origin = rng.standard_normal(P)
    walks = [np.cumsum(rng.standard_normal((n, 2)) * [3.0, 1.0], axis=0) for n in (30, 20)]
    trajs = [origin + np.vstack([np.zeros((1, 2)), w]) @ basis for w in walks]
    return trajs, basis, origin


@pytest.mark.parametrize("P", [40, 2000])  # more points than parameters, and fewer
def test_pca_plane_recovers_a_known_plane(P):
    trajs, basis, origin = plane_trajectories(P=P)
    plane = pca_plane(trajs)
    assert isinstance(plane, Plane)
    np.testing.assert_array_equal(plane.origin, origin)
    assert plane.directions.shape == (2, P)
    np.testing.assert_allclose(plane.directions @ plane.directions.T, np.eye(2), atol=1e-12)
    # Same subspace: same orthogonal projector.
    np.testing.assert_allclose(plane.directions.T @ plane.directions, basis.T @ basis, atol=1e-10)
    assert plane.explained_variance_ratio.sum() == pytest.approx(1.0, abs=1e-12)
    assert plane.explained_variance_ratio[0] >= plane.explained_variance_ratio[1]
    for traj, coords in zip(trajs, plane.coords, strict=True):
        assert coords.shape == (len(traj), 2)
        np.testing.assert_array_equal(coords[0], 0.0)
        np.testing.assert_allclose(origin + coords @ plane.directions, traj, atol=1e-10)
    # Sign convention: the first trajectory ends at non-negative coordinates.
    assert np.all(plane.coords[0][-1] >= 0)


def test_pca_plane_explained_variance_matches_the_covariance_spectrum():
    trajs, _, _ = plane_trajectories(P=25, seed=3)
    rng = np.random.default_rng(1)
    trajs = [trajs[0], trajs[1] + np.vstack([np.zeros(25), rng.normal(0, 0.3, (20, 25))])]
    plane = pca_plane(trajs)
    points = np.vstack([trajs[0], trajs[1][1:]])  # the shared start enters once
    eig = np.linalg.eigvalsh(np.cov(points.T))[::-1]
    np.testing.assert_allclose(plane.explained_variance_ratio, eig[:2] / eig.sum(), rtol=1e-9)
    # Directions are the covariance's top eigenvectors.
    cov = np.cov(points.T)
    for k in range(2):
        d = plane.directions[k]
        assert d @ cov @ d == pytest.approx(eig[k], rel=1e-9)


@pytest.mark.parametrize("P", [30, 300])
def test_pca_plane_matches_numpy_svd(P):
    rng = np.random.default_rng(5)
    start = rng.standard_normal(P)
    trajs = [np.vstack([start, start + rng.standard_normal((n, P)).cumsum(0)]) for n in (40, 25)]
    plane = pca_plane(trajs)
    points = np.vstack([trajs[0], trajs[1][1:]])
    _, sv, vt = np.linalg.svd(points - points.mean(0), full_matrices=False)
    np.testing.assert_allclose(plane.explained_variance_ratio, sv[:2] ** 2 / np.sum(sv**2))
    np.testing.assert_allclose(np.abs(plane.directions @ vt[:2].T), np.eye(2), atol=1e-8)


def test_pca_plane_on_collinear_trajectories():
    start = np.arange(6.0)
    line = np.linspace(0, 1, 8)[:, None] * np.ones(6)
    plane = pca_plane([start + line, start - 2 * line])
    np.testing.assert_allclose(plane.explained_variance_ratio, [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(plane.directions @ plane.directions.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(plane.coords[1][:, 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(plane.coords[0][-1], [np.sqrt(6), 0.0], atol=1e-12)


def test_pca_plane_accepts_tensors_and_float32():
    trajs, _, _ = plane_trajectories()
    plane = pca_plane([torch.from_numpy(t.astype(np.float32)) for t in trajs])
    assert plane.origin.dtype == np.float64
    np.testing.assert_array_equal(plane.origin, trajs[0][0].astype(np.float32))


def test_pca_plane_rejects_different_initial_points():
    trajs, _, _ = plane_trajectories()
    moved = trajs[1].copy()
    moved[0, 5] = np.nextafter(moved[0, 5], np.inf)  # atol 0: one ulp is enough
    with pytest.raises(ValueError, match="trajectory 1 starts from a different point"):
        pca_plane([trajs[0], moved])


def test_pca_plane_validation():
    trajs, _, _ = plane_trajectories()
    with pytest.raises(ValueError, match="at least one trajectory"):
        pca_plane([])
    with pytest.raises(TypeError, match="wrap a single one"):
        pca_plane(trajs[0])
    with pytest.raises(ValueError, match="trajectory 1 has 39 parameters, trajectory 0 has 40"):
        pca_plane([trajs[0], trajs[1][:, :39]])
    with pytest.raises(ValueError, match="must be a 2-d array"):
        pca_plane([trajs[0][0]])
    with pytest.raises(ValueError, match="never leave their initial point"):
        pca_plane([np.ones((5, 10))])


# --------------------------------------------------------------------------- CNN planes


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 4),
    )


def batch():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(16, 1, 6, 6, generator=gen), torch.randint(0, 4, (16,), generator=gen)


def trained_plane(model, x, y, steps=15):
    """Record two short SGD runs from the model's weights; return their plane."""
    start = copy.deepcopy(model.state_dict())
    trajs = []
    for lr in (0.05, 0.2):
        model.load_state_dict(start)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        snaps = [parameters_to_vector(model.parameters()).detach().clone()]
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            snaps.append(parameters_to_vector(model.parameters()).detach().clone())
        trajs.append(torch.stack(snaps).numpy())
    return pca_plane(trajs)


def loss_at(model, vec, x, y):
    other = copy.deepcopy(model).eval()
    vector_to_parameters(torch.as_tensor(vec, dtype=torch.float32), other.parameters())
    with torch.no_grad():
        logits = other(x)
    return float(nn.functional.cross_entropy(logits, y)), float(
        (logits.argmax(1) == y).mean(dtype=torch.float32)
    )


def test_loss_surface_restores_the_model_and_matches_direct_evaluation():
    model = tiny_cnn()
    x, y = batch()
    plane = trained_plane(model, x, y)  # leaves the model at the end of the second run
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    ptrs = [p.data_ptr() for p in model.parameters()]

    surf = loss_surface(model, plane, (x, y), extent=(-1.0, 1.0, -2.0, 2.0), n=5)

    assert surf["loss"].shape == surf["accuracy"].shape == (5, 5)
    for p, b, ptr in zip(model.parameters(), before, ptrs, strict=True):
        assert torch.equal(p, b) and p.data_ptr() == ptr and not p.is_inference()
    assert model.training and model[2].training
    nn.functional.cross_entropy(model(x), y).backward()  # still trainable
    # (0, 0) is the plane's origin (the shared initial point), not the current weights.
    np.testing.assert_array_equal(surf["alphas"], np.linspace(-1, 1, 5))
    assert surf["alphas"][2] == 0 and surf["betas"][2] == 0
    loss0, acc0 = loss_at(model, plane.origin, x, y)
    assert surf["loss"][2, 2] == pytest.approx(loss0, rel=1e-6)
    assert surf["accuracy"][2, 2] == acc0
    # Indexed [beta, alpha].
    a, b = surf["alphas"][4], surf["betas"][1]
    loss_ab, acc_ab = loss_at(model, plane.point(a, b), x, y)
    assert surf["loss"][1, 4] == pytest.approx(loss_ab, rel=1e-5)
    assert surf["accuracy"][1, 4] == acc_ab


@pytest.mark.parametrize("workers", [2, 3, 7])
def test_loss_surface_on_threads_gives_the_single_thread_values_bit_for_bit(workers):
    model = tiny_cnn()
    x, y = batch()
    plane = trained_plane(model, x, y)
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    one = loss_surface(model, plane, (x, y), n=5)
    many = loss_surface(model, plane, (x, y), n=5, workers=workers)
    for name in ("alphas", "betas", "loss", "accuracy", "extent"):
        np.testing.assert_array_equal(many[name], one[name])
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, b)
    assert model.training


def test_loss_surface_default_extent_covers_the_trajectories():
    model = tiny_cnn()
    x, y = batch()
    plane = trained_plane(model, x, y, steps=5)
    loader = [(x, y), (x[:2], y[:2])]  # a loader: the first batch is used
    surf = loss_surface(model, plane, loader, n=3)
    lo_a, hi_a, lo_b, hi_b = surf["extent"]
    for coords in plane.coords:
        assert np.all((lo_a < coords[:, 0]) & (coords[:, 0] < hi_a))
        assert np.all((lo_b < coords[:, 1]) & (coords[:, 1] < hi_b))
    assert surf["alphas"][0] == lo_a and surf["betas"][-1] == hi_b


def test_loss_surface_validation():
    model = tiny_cnn()
    x, y = batch()
    P = sum(p.numel() for p in model.parameters())
    bad = Plane(np.zeros(P + 1), np.zeros((2, P + 1)), np.zeros(2), [])
    with pytest.raises(ValueError, match=f"the model has {P} parameters"):
        loss_surface(model, bad, (x, y))
    plane = random_plane(model, seed=0)
    with pytest.raises(ValueError, match="extent must be"):
        loss_surface(model, plane, (x, y), extent=(1.0, -1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="no batches"):
        loss_surface(model, plane, [])
    with pytest.raises(ValueError, match="workers must be an integer >= 1, got 0"):
        loss_surface(model, plane, (x, y), workers=0)


def test_random_plane_surface_at_origin_is_the_current_loss():
    model = tiny_cnn()
    x, y = batch()
    plane = random_plane(model, seed=1)
    surf = loss_surface(model, plane, (x, y), n=3)
    np.testing.assert_array_equal(surf["extent"], [-1, 1, -1, 1])
    model.eval()
    with torch.no_grad():
        expected = float(nn.functional.cross_entropy(model(x), y))
    assert surf["loss"][1, 1] == pytest.approx(expected, rel=1e-6)


def test_filter_normalized_directions():
    model = tiny_cnn()
    rng_before = torch.get_rng_state()
    d = filter_normalized_directions(model, seed=7)
    assert torch.equal(rng_before, torch.get_rng_state())
    P = sum(p.numel() for p in model.parameters())
    assert d.shape == (2, P)
    np.testing.assert_array_equal(d, filter_normalized_directions(model, seed=7))
    assert not np.array_equal(d, filter_normalized_directions(model, seed=8))
    assert not np.array_equal(d[0], d[1])
    offset = 0
    for p in model.parameters():
        w = p.detach().double().numpy()
        part = d[:, offset : offset + p.numel()].reshape(2, *p.shape)
        offset += p.numel()
        if p.dim() == 1:
            assert np.all(part == 0)
            continue
        for k in range(2):
            for i in range(p.shape[0]):  # each filter (output channel / row)
                assert np.linalg.norm(part[k, i]) == pytest.approx(np.linalg.norm(w[i]), rel=1e-8)


# --------------------------------------------------------------------------- off the plane


def orthogonal_unit(directions, seed=0):
    """A unit vector orthogonal to both rows of ``directions``."""
    v = np.random.default_rng(seed).normal(size=directions.shape[1])
    q = np.linalg.qr(directions.T)[0]
    v -= q @ (q.T @ v)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("kind", ["pca", "random"])
def test_project_recovers_coordinates_and_an_orthogonal_offset(kind):
    model = tiny_cnn()
    x, y = batch()
    plane = trained_plane(model, x, y) if kind == "pca" else random_plane(model, seed=3)
    normal = orthogonal_unit(plane.directions)
    coords = np.array([[0.0, 0.0], [0.3, -0.2], [-1.5, 2.0]])
    offsets = np.array([0.0, 0.7, 2.5])
    points = np.stack([plane.point(a, b) for a, b in coords]) + offsets[:, None] * normal
    got, distance = project(plane, points)
    np.testing.assert_allclose(got, coords, atol=1e-9)
    np.testing.assert_allclose(distance, offsets, atol=1e-9)
    if kind == "pca":  # orthonormal directions: the coordinates pca_plane gives
        got, _ = project(plane, trajectory := np.vstack([plane.origin, points]))
        np.testing.assert_allclose(got, (trajectory - plane.origin) @ plane.directions.T)


def test_project_validation():
    plane = Plane(np.zeros(4), np.array([[1.0, 0, 0, 0], [2.0, 0, 0, 0]]), np.zeros(2))
    with pytest.raises(ValueError, match="directions are parallel"):
        project(plane, np.ones((1, 4)))
    plane = Plane(np.zeros(4), np.eye(4)[:2], np.zeros(2))
    with pytest.raises(ValueError, match=r"points must be \[n, P\] with the plane's P = 4"):
        project(plane, np.ones((2, 5)))


def test_losses_at_matches_direct_evaluation_and_restores_the_model():
    model = tiny_cnn()
    x, y = batch()
    plane = trained_plane(model, x, y, steps=4)
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    points = np.vstack([plane.origin, plane.point(0.5, -0.5)])
    got = losses_at(model, points, (x, y))
    for i, point in enumerate(points):
        loss, acc = loss_at(model, point, x, y)
        assert got["loss"][i] == pytest.approx(loss, rel=1e-6)
        assert got["accuracy"][i] == acc
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert model.training
    with pytest.raises(ValueError, match=r"points must be an array \[n, P\].*P = 226"):
        losses_at(model, points[:, 1:], (x, y))


def test_plane_gap_is_nil_on_the_plane_and_measures_what_lies_off_it():
    model = tiny_cnn()
    x, y = batch()
    plane = trained_plane(model, x, y)
    coords = np.column_stack([np.linspace(0, 1.0, 6), np.linspace(0, -0.8, 6)])
    on = np.stack([plane.point(a, b) for a, b in coords])  # a path lying in the plane
    offsets = np.linspace(0, 3.0, 6)
    off = on + offsets[:, None] * orthogonal_unit(plane.directions, seed=1)
    gap_on, gap_off = plane_gap(model, plane, [on, off], (x, y))

    np.testing.assert_allclose(gap_on["coords"], coords, atol=1e-9)
    np.testing.assert_allclose(gap_on["distance"], 0.0, atol=1e-9)
    np.testing.assert_allclose(gap_on["loss"], gap_on["projected_loss"], rtol=1e-6)
    np.testing.assert_array_equal(gap_on["accuracy"], gap_on["projected_accuracy"])

    # Off the plane: the same projections (so the same contour values), other losses.
    np.testing.assert_allclose(gap_off["coords"], coords, atol=1e-9)
    np.testing.assert_allclose(gap_off["distance"], offsets, atol=1e-9)
    np.testing.assert_allclose(gap_off["projected_loss"], gap_on["loss"], rtol=1e-6)
    assert np.all(np.abs(gap_off["loss"] - gap_off["projected_loss"])[1:] > 1e-3)
    for i, point in enumerate(off):  # measured exactly at the snapshot, not interpolated
        assert gap_off["loss"][i] == pytest.approx(loss_at(model, point, x, y)[0], rel=1e-6)


def test_plane_gap_validation():
    model = tiny_cnn()
    x, y = batch()
    plane = random_plane(model, seed=0)
    with pytest.raises(TypeError, match="wrap a single one"):
        plane_gap(model, plane, np.zeros((3, 226)), (x, y))
    with pytest.raises(ValueError, match=r"trajectory 1 must be an array \[n, P\]"):
        plane_gap(model, plane, [np.zeros((3, 226)), np.zeros((3, 60))], (x, y))


# --------------------------------------------------------------------------- random walks


def test_random_walk_ratios_tend_to_the_papers_limit():
    """Antognini and Sohl-Dickstein (2018): with equal steps, as the dimension and then
    the number of steps grow, the k-th ratio tends to 6 / (pi^2 k^2)."""
    steps, limit = 400, 6 / (np.pi**2 * np.arange(1, 3) ** 2)
    # In infinite dimension the directions are orthonormal: the points' Gram matrix is
    # that of the centred cumulative sums, whose ratios differ from the limit by O(1/T^2).
    sums = np.tril(np.ones((steps + 1, steps)), -1)
    sums -= sums.mean(axis=0)
    values = np.linalg.eigvalsh(sums @ sums.T)[::-1]
    np.testing.assert_allclose(values[:2] / values.sum(), limit, atol=1e-4)
    # In dimension 10^6 the ratios scatter about that by about 0.3 / sqrt(dim) = 3e-4
    # (measured over seeds, also at 10^4 and 10^5); 2e-3 is six standard deviations.
    ratios = random_walk_explained_variance(np.ones(steps), dim=10**6, seed=0)
    np.testing.assert_allclose(ratios, limit, atol=2e-3)


def test_random_walk_gram_and_explicit_walk_agree_with_pca_plane():
    """The Gram-matrix draw has the distribution of an explicit walk, and the ratios are
    those pca_plane finds on such a walk (two walks from one start, uneven steps)."""
    sizes = [np.linspace(0.5, 2.0, 12), np.full(9, 1.5)]
    dim, n = 48, 600
    gram = np.array([random_walk_explained_variance(sizes, dim, s) for s in range(n)])
    walk = np.array(
        [random_walk_explained_variance(sizes, dim, s, method="walk") for s in range(n, 2 * n)]
    )
    rng = np.random.default_rng(123)
    explicit = []
    for _ in range(n):
        trajs = []
        for r in sizes:
            u = rng.normal(size=(r.size, dim))
            u *= (r / np.linalg.norm(u, axis=1))[:, None]  # exactly the given sizes
            trajs.append(np.vstack([np.zeros(dim), np.cumsum(u, axis=0)]))
        explicit.append(pca_plane(trajs).explained_variance_ratio)
    explicit = np.array(explicit)
    for a, b in ((gram, explicit), (walk, explicit), (gram, walk)):
        se = np.sqrt(a.var(axis=0) / n + b.var(axis=0) / n)
        assert np.all(np.abs(a.mean(axis=0) - b.mean(axis=0)) < 4 * se)


def test_random_walk_invariances():
    sizes = np.random.default_rng(0).uniform(0.1, 1.0, size=20)
    ratios = random_walk_explained_variance(sizes, 1000, seed=5)
    assert ratios.shape == (2,) and ratios[0] >= ratios[1] > 0
    # Only the steps' relative sizes matter.
    np.testing.assert_allclose(random_walk_explained_variance(7 * sizes, 1000, 5), ratios)
    np.testing.assert_array_equal(random_walk_explained_variance(sizes, 1000, 5), ratios)
    # One step that moves: three points on a line, all the variance on one component.
    line = random_walk_explained_variance([0.0, 2.0, 0.0], 50, seed=1)
    np.testing.assert_allclose(line, [1.0, 0.0], atol=1e-12)
    # Two one-step walks from one start: three points, a plane holds them all.
    assert random_walk_explained_variance([[1.0], [1.0]], 50, seed=1).sum() == pytest.approx(1)
    three = random_walk_explained_variance(sizes, 1000, 5, n_components=3)
    np.testing.assert_allclose(three[:2], ratios)


def test_an_uncorrelated_walk_is_the_independent_one():
    sizes = [np.linspace(0.5, 2.0, 12), np.full(9, 1.5)]
    for method in ("gram", "walk"):
        plain = random_walk_explained_variance(sizes, 48, 3, method=method)
        zero = random_walk_explained_variance(sizes, 48, 3, method=method, correlation=0.0)
        np.testing.assert_array_equal(zero, plain)


def test_a_correlated_walk_has_the_pca_of_an_explicit_ar1_walk():
    """The mixed Gram draw has the distribution of explicit AR(1) walks' PCA (two walks
    from one start, each with its own correlation), and their steps' cosines are rho^k."""
    sizes, rhos, dim, n = [np.linspace(0.5, 2.0, 10), np.full(8, 1.0)], [0.7, -0.4], 400, 300
    gram = np.array(
        [random_walk_explained_variance(sizes, dim, s, correlation=rhos) for s in range(n)]
    )
    rng = np.random.default_rng(7)
    explicit, lags = [], []
    for _ in range(n):
        trajs = []
        for r, rho in zip(sizes, rhos, strict=True):
            g = [rng.normal(size=dim)]
            for _ in range(r.size - 1):
                g.append(rho * g[-1] + np.sqrt(1 - rho**2) * rng.normal(size=dim))
            u = np.array(g) * (r / np.linalg.norm(g, axis=1))[:, None]
            trajs.append(np.vstack([np.zeros(dim), np.cumsum(u, axis=0)]))
        explicit.append(pca_plane(trajs).explained_variance_ratio)
        lags.append([step_autocorrelation(t, 2) for t in trajs])
    explicit = np.array(explicit)
    se = np.sqrt(gram.var(axis=0) / n + explicit.var(axis=0) / n)
    assert np.all(np.abs(gram.mean(axis=0) - explicit.mean(axis=0)) < 4 * se)
    # in 400 dimensions the cosines scatter by about 1/sqrt(400) around rho^k
    measured = np.array(lags).mean(axis=0)
    np.testing.assert_allclose(measured, [[0.7, 0.49], [-0.4, 0.16]], atol=0.02)
    # and the correlation changes the ratios: a smoother walk puts more on PC1
    assert gram[:, 0].mean() > np.mean(
        [random_walk_explained_variance(sizes, dim, s)[0] for s in range(n)]
    )


def test_a_fully_correlated_walk_is_a_line():
    ratios = random_walk_explained_variance(np.ones(30), 10**4, 0, correlation=1 - 1e-12)
    np.testing.assert_allclose(ratios, [1.0, 0.0], atol=1e-6)


def test_step_autocorrelation_of_known_paths():
    rng = np.random.default_rng(0)
    line = np.outer(np.arange(6.0), rng.normal(size=50))
    np.testing.assert_allclose(step_autocorrelation(line, 3), 1.0)
    turn = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(step_autocorrelation(turn, 2), [0.0, -1.0], atol=1e-15)
    # a step of length zero has no direction: left out, not counted as 0
    paused = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    np.testing.assert_allclose(step_autocorrelation(paused, 1), [1.0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros((3, 2)), 2), "too few for lag 2; give at least 4 points"),
        ((np.zeros((5, 2)), 0), "max_lag must be an integer >= 1"),
        ((np.zeros(5), 1), "must be a 2-d array"),
    ],
)
def test_step_autocorrelation_errors(args, message):
    with pytest.raises(ValueError, match=message):
        step_autocorrelation(*args)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((np.ones(3), 10), {"correlation": 1.0}, r"correlation must be in \(-1, 1\)"),
        ((np.ones(3), 10), {"correlation": np.nan}, r"correlation must be in \(-1, 1\)"),
        (([[1.0], [1.0]], 10), {"correlation": [0.1, 0.2, 0.3]}, "one per walk \\(2\\)"),
        (([],), {}, "at least one walk"),
        (([1.0, -1.0],), {}, r"finite and >= 0 \(they are norms\), got \[-1.0\]"),
        (([1.0, np.nan],), {}, "finite and >= 0"),
        ((np.zeros(3),), {}, "every step size is zero"),
        ((np.ones((2, 2)),), {}, "must be a 1-d array"),
        ((np.ones(3), 0), {}, "dim must be an integer >= 1, got 0"),
        ((np.ones(5), 3), {"method": "gram"}, "needs dim >= the number of steps"),
        ((np.ones(3), 10), {"method": "svd"}, "method must be 'auto', 'gram' or 'walk'"),
        ((np.ones(3), 10), {"n_components": 5}, "from 1 to the 4 points"),
    ],
)
def test_random_walk_errors(args, kwargs, message):
    args = args if len(args) == 2 else (*args, 10)
    with pytest.raises(ValueError, match=message):
        random_walk_explained_variance(*args, seed=0, **kwargs)
