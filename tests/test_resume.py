"""Runs that continue a shorter cached run, and failures that are cached (on the real
data, tiny sizes)."""

from __future__ import annotations

import concurrent.futures as cf
import io
import multiprocessing

import numpy as np
import pytest
import torch

from fashion_optim import experiments as ex
from fashion_optim.experiments import Record, Spec, cache
from fashion_optim.experiments import train as train_module
from fashion_optim.training import TrainingDivergedError

# dropout: the resumed part must continue torch's generator as well as the weights
BASE = Spec(
    "tiny resumable",
    lr=0.05,
    optimizer_kwargs={"momentum": 0.9},
    scheduler="step",
    scheduler_kwargs={"step_size": 1, "gamma": 0.5},
    epochs=1,
    batch_size=32,
    dropout=0.3,
    train_subset=400,
    val_subset=200,
)
DIVERGES = BASE.replace(name="tiny, far too fast", lr=50.0, scheduler=None, scheduler_kwargs={})


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def trainings(monkeypatch):
    """How many times a run trained in this process (the spy counts the worker's entry
    point, which a cached result never reaches)."""
    calls = []
    real = train_module._train
    monkeypatch.setattr(
        train_module, "_train", lambda *a, **k: (calls.append(a[0]), real(*a, **k))[1]
    )
    return calls


def _state(result) -> dict:
    arrays, _ = cache.lookup("run", result.meta["key"])
    return torch.load(io.BytesIO(arrays["resume/state"].tobytes()), weights_only=True)


def test_a_longer_run_continues_the_cached_shorter_one_bit_for_bit(tmp_path, monkeypatch):
    one = ex.run(BASE, 0, profile="quick")
    assert one.meta["resumed_from"] is None
    # the remaining two epochs train in another process
    with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        (resumed,) = ex.run_many([(BASE.replace(epochs=3), 0)], profile="quick", executor=pool)
    assert resumed.meta["resumed_from"] == 1 and not resumed.from_cache
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "straight"))
    straight = ex.run(BASE.replace(epochs=3), 0, profile="quick")
    assert straight.meta["resumed_from"] is None
    assert resumed.history.epochs == 3 and resumed.history.same_as(straight.history)
    assert (resumed.test_loss, resumed.test_acc) == (straight.test_loss, straight.test_acc)
    np.testing.assert_array_equal(resumed.test_predictions, straight.test_predictions)
    got = _state(straight)
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "cache"))
    want = _state(resumed)
    for name, tensor in want["model"].items():
        assert torch.equal(tensor, got["model"][name]), name
    assert torch.equal(want["torch_rng"], got["torch_rng"])
    assert want["scheduler"] == got["scheduler"] and (want["step"], want["epoch"]) == (
        got["step"],
        got["epoch"],
    )
    # the state a run keeps to be continued is compact
    arrays, _ = cache.lookup("run", resumed.meta["key"])
    assert arrays["resume/state"].nbytes < 1_000_000


@pytest.mark.parametrize(
    "spec",
    [
        BASE.replace(
            name="tiny, probes",
            record=Record(
                gradients={"features.0.weight": [0, 12], "classifier.1.weight": [3]},
                state={"features.0.weight": [0, 12]},
            ),
        ),
        # 13 steps an epoch: the shorter run's last quantile row (step 13) is not a
        # multiple of 4, and the straight run has no row there
        BASE.replace(
            name="tiny Adam, quantiles",
            optimizer="adam",
            lr=1e-3,
            optimizer_kwargs={},
            record=Record(
                gradients={"features.0.weight": [5]},
                state={"features.0.weight": [5]},
                layer_quantiles=(0.1, 0.5, 0.9),
                layer_quantiles_every=4,
            ),
        ),
    ],
    ids=["probes", "adam-quantiles"],
)
def test_a_recording_run_continues_with_the_records_of_a_straight_run(spec, tmp_path, monkeypatch):
    ex.run(spec, 0, profile="quick")
    resumed = ex.run(spec.replace(epochs=3), 0, profile="quick")
    assert resumed.meta["resumed_from"] == 1
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "straight"))
    straight = ex.run(spec.replace(epochs=3), 0, profile="quick")
    assert straight.meta["resumed_from"] is None
    assert resumed.history.same_as(straight.history)
    np.testing.assert_array_equal(resumed.test_predictions, straight.test_predictions)
    assert sorted(resumed.records) == sorted(straight.records)
    for name, want in straight.records.items():
        got = resumed.records[name]
        assert got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert len(straight.history.batch_loss) == 39 == len(resumed.records["grad/features.0.weight"])


def test_a_recorder_refuses_to_continue_a_run_that_recorded_something_else():
    from fashion_optim.recorders import GradientRecorder, ParameterRecorder

    rec = GradientRecorder({"features.0.weight": [0]})
    rec._values = {"features.0.weight": [torch.zeros(1)]}  # as after one step
    rec._norms = {"features.0.weight": [0.0]}
    with pytest.raises(ValueError, match=r"recorded no.*same configuration"):
        rec.continued({"grad/classifier.1.weight": np.zeros((1, 1))})
    with pytest.raises(NotImplementedError, match="never continues"):
        ParameterRecorder(5).continued({})


def test_the_longest_shorter_run_is_continued(trainings):
    ex.run(BASE, 0, profile="quick")
    ex.run(BASE.replace(epochs=2), 0, profile="quick")
    longer = ex.run(BASE.replace(epochs=4), 0, profile="quick")
    assert longer.meta["resumed_from"] == 2 and len(trainings) == 3


@pytest.mark.parametrize(
    ("changes", "reads_total"),
    [
        ({"scheduler": "cosine", "scheduler_kwargs": {}}, True),
        ({"scheduler": "onecycle", "scheduler_kwargs": {"max_lr": 0.1}}, True),
        ({"scheduler": "cosine", "scheduler_kwargs": {"T_max": 5}}, False),
        ({"scheduler": None, "scheduler_kwargs": {}}, False),
        ({"scheduler": "multistep", "scheduler_kwargs": {"milestones": [1]}}, False),
        ({"scheduler": "lambda", "scheduler_kwargs": {"lr_lambda": "exp_0.95"}}, False),
    ],
)
def test_which_schedules_depend_on_the_total(changes, reads_total):
    cfg = BASE.replace(**changes).resolve("quick")
    assert ex.schedule_reads_total(cfg) is reads_total
    assert ex.resumable(cfg) is not reads_total
    # a run that records where it ends (the last snapshot) never resumes; one that
    # records a row per step (or every k steps) does
    assert not ex.resumable(BASE.replace(**changes, record=Record(snapshot_every=5)).resolve())
    probes = Record(gradients={"features.0.weight": [0]}, state={"features.0.weight": [0]})
    assert ex.resumable(BASE.replace(**changes, record=probes).resolve()) is not reads_total


@pytest.mark.parametrize(
    "changes",
    [
        {"scheduler": "cosine", "scheduler_kwargs": {}},
        {"scheduler": "onecycle", "scheduler_kwargs": {"max_lr": 0.1}},
        {"record": Record(snapshot_every=5)},
    ],
)
def test_a_total_dependent_schedule_never_resumes(changes):
    spec = BASE.replace(**changes)
    ex.run(spec, 0, profile="quick")
    longer = ex.run(spec.replace(epochs=2), 0, profile="quick")
    assert longer.meta["resumed_from"] is None
    arrays, _ = cache.lookup("run", longer.meta["key"])
    assert "resume/state" not in arrays  # nothing kept that nothing may continue


def test_a_diverged_run_is_served_from_the_cache_without_training(trainings):
    with pytest.raises(TrainingDivergedError) as first:
        ex.run(DIVERGES, 0, profile="quick")
    assert len(trainings) == 1
    with pytest.raises(TrainingDivergedError) as second:
        ex.run(DIVERGES, 0, profile="quick")
    assert len(trainings) == 1  # nothing trained again
    a, b = first.value, second.value
    assert (a.epoch, a.step, a.loss, a.lr, a.limit) == (b.epoch, b.step, b.loss, b.lr, b.limit)
    assert str(a) == str(b)
    # it carries the history up to where it stopped: one loss per step taken
    steps_before = (b.epoch - 1) * 13 + b.step - 1  # 400 images in batches of 32: 13
    assert len(b.history.batch_loss) == steps_before == len(a.history.batch_loss)
    assert b.history.same_as(a.history)
    # as a result in a batch, in the diverged run's place
    out = ex.run_many([(DIVERGES, 0), (BASE, 0)], profile="quick", return_exceptions=True)
    assert isinstance(out[0], TrainingDivergedError) and out[0].history.same_as(a.history)
    assert len(trainings) == 2  # only BASE trained
    # a longer run of the same configuration fails the same way: nothing trains
    with pytest.raises(TrainingDivergedError) as longer:
        ex.run(DIVERGES.replace(epochs=3), 0, profile="quick")
    assert len(trainings) == 2 and str(longer.value) == str(a)
