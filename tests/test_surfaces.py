"""The cached loss surfaces on the real data, at tiny sizes: the PCA plane's with what it
leaves out of each snapshot, and the random plane's through a run's final weights."""

from __future__ import annotations

import numpy as np
import pytest

from fashion_optim import experiments as ex
from fashion_optim import landscape
from fashion_optim.experiments import Record, Spec
from fashion_optim.experiments.surface import PATH_FIELDS, final_weights_model

IMAGES, GRID = 64, 3

TINY = Spec(
    "tiny snapshots",
    lr=0.05,
    optimizer_kwargs={"momentum": 0.9},
    epochs=1,
    batch_size=32,
    train_subset=320,
    val_subset=100,
    record=Record(snapshot_every=2),
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASHION_OPTIM_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("FASHION_OPTIM_WORKERS", "1")  # (module scope: before conftest's own)
        fast, slow = TINY, TINY.replace(name="tiny snapshots, slower", lr=0.01)
        yield [ex.run(spec, seed=0, profile="quick") for spec in (fast, slow)]


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def sample(run):
    """The images the surfaces are measured on."""
    loader = ex.get_splits().loader("train", IMAGES, seed=run.seed, subset=320)
    return next(iter(loader))


def entries(cache, kind):
    return sorted((cache / kind).glob("*.npz"))


def test_trajectory_surface_carries_what_the_plane_leaves_out(runs, tmp_cache):
    surf = ex.trajectory_surface(runs, grid=GRID, images=IMAGES, profile="quick")
    assert len(entries(tmp_cache, "loss_surface")) == 1
    assert surf.surface["loss"].shape == (GRID, GRID) and surf.path_wall_time > 0
    batch = sample(runs[0])
    for run, path, coords in zip(runs, surf.paths, surf.plane.coords, strict=True):
        params = run.records["params"]
        assert all(len(path[k]) == len(params) for k in PATH_FIELDS)
        # Measured exactly at the snapshots and at their projections, on the same images.
        model = final_weights_model(params[-1])
        np.testing.assert_allclose(path["loss"], landscape.losses_at(model, params, batch)["loss"])
        projected = np.stack([surf.plane.point(a, b) for a, b in coords])
        direct = landscape.losses_at(model, projected, batch)["loss"]
        np.testing.assert_allclose(path["projected_loss"], direct)
        # The shared start is the plane's origin: nothing of it is left out.
        assert path["distance"][0] == 0.0
        assert path["loss"][0] == pytest.approx(path["projected_loss"][0], rel=1e-6)
        assert path["distance"][-1] > 0
    again = ex.trajectory_surface(runs, grid=GRID, images=IMAGES, profile="quick")
    for cached, fresh in zip(again.paths, surf.paths, strict=True):
        for k in PATH_FIELDS:
            np.testing.assert_array_equal(cached[k], fresh[k])
    assert len(entries(tmp_cache, "loss_surface")) == 1  # a cache hit


def test_random_plane_surface_is_centred_on_the_final_weights(runs, tmp_cache):
    rand = ex.random_plane_surface(runs[0], seed=0, grid=GRID, images=IMAGES, profile="quick")
    assert len(entries(tmp_cache, "random_plane_surface")) == 1
    np.testing.assert_array_equal(rand.plane.origin, runs[0].records["params"][-1])
    np.testing.assert_array_equal(rand.surface["extent"], [-1, 1, -1, 1])
    # The centre is the final weights, on the trajectory surface's images.
    surf = ex.trajectory_surface(runs, grid=GRID, images=IMAGES, profile="quick")
    assert rand.surface["loss"][1, 1] == pytest.approx(surf.paths[0]["loss"][-1], rel=1e-6)
    # Filter-normalised: each direction as long as the weights it scales (no biases).
    model = final_weights_model(runs[0].records["params"][-1])
    weights = np.concatenate(
        [p.detach().numpy().ravel() for p in model.parameters() if p.dim() > 1]
    )
    np.testing.assert_allclose(rand.surface["direction_norms"], np.linalg.norm(weights))
    assert abs(rand.cosine) < 0.1
    again = ex.random_plane_surface(runs[0], seed=0, grid=GRID, images=IMAGES, profile="quick")
    np.testing.assert_array_equal(again.surface["loss"], rand.surface["loss"])
    other = ex.random_plane_surface(runs[0], seed=1, grid=GRID, images=IMAGES, profile="quick")
    assert not np.array_equal(other.surface["loss"], rand.surface["loss"])
    assert len(entries(tmp_cache, "random_plane_surface")) == 2  # the seed is in the key


def test_surfaces_need_snapshot_runs_and_a_positive_span(runs):
    plain = ex.run(TINY.replace(name="tiny, no snapshots", record=Record()), 0, profile="quick")
    for call in (ex.trajectory_surface, lambda rs: ex.random_plane_surface(rs[0])):
        with pytest.raises(ValueError, match=r"recorded parameter snapshots.*snapshot_every"):
            call([plain])
    with pytest.raises(ValueError, match="span must be a positive number, got 0"):
        ex.random_plane_surface(runs[0], span=0)


def test_the_model_at_given_weights_does_not_write_into_them(runs):
    weights = runs[0].records["params"][-1]
    before = weights.copy()
    model = final_weights_model(weights)
    for p in model.parameters():
        p.data.zero_()
    np.testing.assert_array_equal(weights, before)
    with pytest.raises(ValueError, match=r"the CNN's 61706 parameters, got shape \(3,\)"):
        final_weights_model(np.zeros(3))
