"""The cached sharpness (the Hessian's largest eigenvalue at a run's snapshots) on the
real data, at tiny sizes: the same numbers as the library's estimate on the same
weights and images, one entry per run, and the errors of a bad request."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fashion_optim import curvature
from fashion_optim import experiments as ex
from fashion_optim.experiments import Record, Spec
from fashion_optim.experiments.curvature import sharpness_batch
from fashion_optim.experiments.train import TRAIN_THREADS, threads
from fashion_optim.models import make_model

IMAGES, ITERS = 48, 40

TINY = Spec(
    "tiny snapshots",
    lr=0.05,
    optimizer_kwargs={"momentum": 0.9},
    epochs=1,
    batch_size=32,
    train_subset=320,
    val_subset=100,
    record=Record(snapshot_every=3),
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASHION_OPTIM_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("FASHION_OPTIM_WORKERS", "1")  # (module scope: before conftest's own)
        yield ex.run(TINY, seed=0, profile="quick")


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_sharpness_is_the_largest_eigenvalue_at_each_snapshot(run, tmp_cache):
    steps = [int(s) for s in run.snapshot_steps[[1, -1]]]
    got = ex.sharpness(run, steps, images=IMAGES, max_iter=ITERS, profile="quick")
    np.testing.assert_array_equal(got.steps, steps)
    x, y = sharpness_batch(run.seed, 320, IMAGES)
    # a fixed stratified sample: every class, from the run's own training images
    assert len(y) == IMAGES and len(torch.unique(y)) == 10
    for i, step in enumerate(steps):
        model = make_model("lenet")
        weights = torch.tensor(run.snapshots[list(run.snapshot_steps).index(step)])
        torch.nn.utils.vector_to_parameters(weights, model.parameters())
        with threads(TRAIN_THREADS):  # as the worker computes it
            est = curvature.top_hessian_eigenvalue(
                model, x, y, max_iter=ITERS, tol=1e-3, seed=0, which="largest"
            )
        assert got.values[i] == est.value
        assert got.iterations[i] == est.iterations and got.converged[i] == est.converged
        np.testing.assert_array_equal(got.history[i, : est.iterations], est.history)
        assert np.isnan(got.history[i, est.iterations :]).all()
    assert len(list((tmp_cache / "sharpness").glob("*.npz"))) == 1
    again = ex.sharpness(run, steps, images=IMAGES, max_iter=ITERS, profile="quick")
    np.testing.assert_array_equal(again.values, got.values)
    assert len(list((tmp_cache / "sharpness").glob("*.npz"))) == 1  # a cache hit


def test_sharpness_refuses_steps_the_run_did_not_record(run):
    with pytest.raises(ValueError, match="steps must be some of the run's snapshot steps"):
        ex.sharpness(run, [1], images=IMAGES, max_iter=ITERS, profile="quick")
    plain = ex.run(TINY.replace(record=Record()), seed=0, profile="quick")
    with pytest.raises(ValueError, match="recorded parameter snapshots"):
        ex.sharpness(plain, [0], profile="quick")
