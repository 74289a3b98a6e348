"""Experiment specs, profiles and the result cache (on the real data, tiny sizes)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from fashion_optim import experiments as ex
from fashion_optim import lr as lr_module
from fashion_optim.experiments import PerProfile, Record, Spec, cache, executors
from fashion_optim.experiments import train as train_module
from fashion_optim.experiments.train import train
from fashion_optim.training import Recorder, Trainer, TrainingDivergedError


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


TINY = Spec(
    "tiny momentum",
    lr=0.05,
    optimizer_kwargs={"momentum": 0.9},
    epochs=PerProfile(full=2, quick=1),
    batch_size=16,
    train_subset=600,
    val_subset=200,
    record=Record(
        gradients={"features.0.weight": [0, 5]},
        state={"features.0.weight": [0, 5]},
        state_keys=("momentum_buffer",),
        snapshot_every=2,
    ),
)


def test_profiles_resolve_sizes():
    full, quick = TINY.resolve("full"), TINY.resolve("quick")
    assert full.epochs == 2 and quick.epochs == 1
    spec = Spec("x")
    assert spec.resolve("quick").train_subset == ex.PROFILES["quick"].train_subset
    assert spec.resolve("full").train_subset is None
    assert len(ex.PROFILES["full"].seeds) >= 3


def test_unknown_profile_lists_choices(monkeypatch):
    monkeypatch.setenv("FASHION_OPTIM_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"unknown profile 'fast'.*\['full', 'quick'\]"):
        ex.current_profile()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "adagrad"}, "unknown optimizer 'adagrad'; valid choices"),
        ({"lr": -0.1}, r"lr must be a finite number in \(0, 1000\], got -0.1"),
        ({"lr": float("inf")}, r"lr must be a finite number in \(0, 1000\], got inf"),
        ({"lr": float("nan")}, r"lr must be a finite number in \(0, 1000\], got nan"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"scheduler": "warmup"}, "unknown scheduler 'warmup'; valid choices"),
        ({"scheduler": "lambda", "scheduler_kwargs": {"lr_lambda": "nope"}}, "unknown lr_lambda"),
    ],
)
def test_invalid_specs(changes, message):
    with pytest.raises(ValueError, match=message):
        TINY.replace(**changes).resolve("quick")


def test_run_then_cache_hit(tmp_cache):
    first = ex.run(TINY, seed=0, profile="quick")
    assert not first.from_cache
    assert first.history.epochs == 1 and 0.2 < first.test_acc <= 1.0  # chance is 0.1
    assert first.meta["train_size"] == 600
    second = ex.run(TINY, seed=0, profile="quick")
    assert second.from_cache
    assert second.history.same_as(first.history)
    assert second.test_acc == first.test_acc
    labels = ex.get_splits().test_labels.numpy()
    assert first.test_predictions.shape == labels.shape
    assert float((first.test_predictions == labels).mean()) == first.test_acc
    np.testing.assert_array_equal(second.test_predictions, first.test_predictions)
    for key, value in first.records.items():
        np.testing.assert_array_equal(second.records[key], value)
    assert len(list(tmp_cache.rglob("*.npz"))) == 1
    # another seed, another entry; the name is not part of the key
    assert not ex.run(TINY, seed=1, profile="quick").from_cache
    assert ex.run(TINY.replace(name="renamed"), seed=0, profile="quick").from_cache


def test_records_match_optimizer_state():
    r = ex.run(TINY, seed=0, profile="quick")
    g = r.records["grad/features.0.weight"]
    buf = r.records["state/momentum_buffer/features.0.weight"]
    steps = r.meta["steps_per_epoch"]
    assert g.shape == buf.shape == (steps, 2)
    np.testing.assert_allclose(buf[1:], 0.9 * buf[:-1] + g[1:], rtol=1e-5, atol=1e-8)
    assert r.records["params"].shape[1] == 61706


def test_same_spec_and_seed_are_bitwise_identical():
    a = ex.run(TINY, seed=3, profile="quick", fresh=True)
    b = ex.run(TINY, seed=3, profile="quick", fresh=True)
    assert not b.from_cache
    assert a.history.same_as(b.history) and a.test_loss == b.test_loss


def test_code_change_invalidates(monkeypatch):
    ex.run(TINY, seed=0, profile="quick")
    monkeypatch.setattr(cache, "code_hash", lambda kind: "another-version")
    assert not ex.run(TINY, seed=0, profile="quick").from_cache


def test_corrupted_entry_is_recomputed(tmp_cache):
    first = ex.run(TINY, seed=0, profile="quick")
    (entry,) = tmp_cache.rglob("*.npz")
    entry.write_bytes(entry.read_bytes()[:200])
    with pytest.warns(RuntimeWarning, match="unreadable cache entry"):
        again = ex.run(TINY, seed=0, profile="quick")
    assert not again.from_cache and again.history.same_as(first.history)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ex.run(TINY, seed=0, profile="quick").from_cache


@pytest.mark.parametrize("workers", [1, 2])
def test_run_many_says_each_unreadable_entry_once(tmp_cache, workers):
    ex.run_many([(TINY, 0), (TINY, 1)], profile="quick", workers=1)
    for entry in tmp_cache.rglob("*.npz"):
        entry.write_bytes(entry.read_bytes()[:200])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = ex.run_many([(TINY, 0), (TINY, 1)], profile="quick", workers=workers)
    said = [w for w in caught if "unreadable cache entry" in str(w.message)]
    assert len(said) == 2 and not any(r.from_cache for r in again)
    assert all(r.from_cache for r in ex.run_many([(TINY, 0), (TINY, 1)], profile="quick"))


def test_interrupted_run_leaves_no_entry(tmp_cache, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ex.run(TINY, seed=0, profile="quick")
    # nothing at all: no entry, no temporary file, not even the folder's tag
    assert not tmp_cache.exists() or sorted(tmp_cache.rglob("*")) == []


def test_a_run_interrupted_while_its_entry_is_written_leaves_no_file(tmp_cache, monkeypatch):
    # Ctrl-C after the entry's temporary file is whole, before its rename: the temporary
    # file goes, and no entry appears
    real_replace = os.replace
    stopped = []

    def interrupted(src, dst, *args, **kwargs):
        if str(dst).endswith(".npz"):
            stopped.append(Path(src).stat().st_size)
            raise KeyboardInterrupt
        return real_replace(src, dst, *args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            ex.run(TINY, seed=0, profile="quick")
    assert stopped and stopped[0] > 1000  # it was stopped with a whole file written
    assert [str(p.relative_to(tmp_cache)) for p in tmp_cache.rglob("*") if p.is_file()] == [
        "CACHEDIR.TAG"
    ]
    again = ex.run(TINY, seed=0, profile="quick")
    assert not again.from_cache and ex.run(TINY, seed=0, profile="quick").from_cache


def test_quick_and_full_use_the_same_code(monkeypatch):
    # A profile only changes sizes: with the same sizes, the quick and the full profile
    # resolve to one configuration, hence one code path and one cache entry.
    calls = []
    real = train_module._train
    monkeypatch.setattr(
        train_module, "_train", lambda cfg, *a, **k: (calls.append(cfg), real(cfg, *a, **k))[1]
    )
    quick = ex.run(TINY, seed=0, profile="quick")
    full = ex.run(TINY.replace(epochs=1), seed=0, profile="full")
    assert len(calls) == 1 and full.from_cache
    assert full.config == quick.config


def test_run_seeds_mean_std():
    res = ex.run_seeds(TINY, profile="quick")
    accs = [r.test_acc for r in res.results]
    assert res.seeds == list(ex.PROFILES["quick"].seeds)
    mean, std = res.test_acc
    assert mean == pytest.approx(np.mean(accs)) and std == pytest.approx(np.std(accs, ddof=1))
    assert res.stack("val_acc").shape == (len(accs), 1)
    vals = [r.history.val_acc[-1] for r in res.results]
    assert res.final("val_acc") == (
        pytest.approx(np.mean(vals)),
        pytest.approx(np.std(vals, ddof=1)),
    )
    assert res.config == res.results[0].config


def test_cli_run_and_cache(capsys, tmp_cache, monkeypatch):
    from fashion_optim.cli import main

    monkeypatch.setitem(ex.NAMED, "tiny", TINY)
    assert main(["run", "tiny", "--profile", "quick", "--seed", "0", "--no-progress"]) == 0
    assert "trained" in capsys.readouterr().out
    assert main(["run", "tiny", "--profile", "quick", "--seed", "0", "--no-progress"]) == 0
    assert "(cache" in capsys.readouterr().out
    assert main(["cache"]) == 0
    assert "1 entries" in capsys.readouterr().out
    assert main(["cache", "--clear"]) == 0
    assert not list(tmp_cache.rglob("*.npz"))
    assert main(["run", "nope"]) == 2
    assert capsys.readouterr().err == (
        f"error: unknown experiment 'nope'; valid choices: {sorted(ex.NAMED)}.\n"
    )


def test_range_test_is_cached_and_matches_direct_call(tmp_cache):
    spec = TINY.replace(record=Record())
    first = ex.run_range_test(spec, seed=0, num_iter=20, end_lr=1.0, profile="quick")
    assert len(first.lrs) == len(first.losses) == len(first.smoothed) <= 20
    assert first.lrs[0] == pytest.approx(1e-6)
    again = ex.run_range_test(spec, seed=0, num_iter=20, end_lr=1.0, profile="quick")
    np.testing.assert_array_equal(first.losses, again.losses)
    assert again.suggested_lr == first.suggested_lr
    assert len(list(tmp_cache.rglob("range_test/*.npz"))) == 1


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_full_budget_onecycle_differs_from_momentum_only_in_schedule(profile):
    cfg = ex.full_budget_onecycle(0.03).resolve(profile)
    base = ex.NAMED["momentum"].resolve(profile)
    assert cfg.scheduler == "onecycle" and cfg.scheduler_kwargs == {"max_lr": 0.03}
    assert base.scheduler in (None, "constant")
    keep = (
        "lr",
        "optimizer",
        "optimizer_kwargs",
        "epochs",
        "batch_size",
        "train_subset",
        "val_subset",
        "dropout",
    )
    assert {k: getattr(cfg, k) for k in keep} == {k: getattr(base, k) for k in keep}
    with pytest.raises(ValueError, match="max_lr must be a positive number"):
        ex.full_budget_onecycle(0)


def _cosine_annealing_lr(lr, total):
    """torch's CosineAnnealingLR(T_max=total), stepped every mini-batch: the rate before
    each of ``total`` mini-batches."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    rates = []
    for _ in range(total):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(rates)


def _trace(spec, cfg, steps_per_epoch, metrics=None):
    kwargs = dict(cfg.scheduler_kwargs)
    if "lr_lambda" in kwargs:
        kwargs["lr_lambda"] = ex.LR_LAMBDAS[kwargs["lr_lambda"]]
    name = cfg.scheduler or "constant"
    return lr_module.trace_lr(
        name, cfg.epochs, steps_per_epoch, lr=cfg.lr, metrics=metrics, **kwargs
    )


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_full_budget_annealed_is_a_per_batch_cosine_from_the_peak(profile):
    spec = ex.full_budget_annealed(0.05)
    cfg, base = spec.resolve(profile), ex.NAMED["momentum"].resolve(profile)
    assert cfg.lr == 0.05 and cfg.record == Record()
    keep = ("optimizer", "optimizer_kwargs", "epochs", "batch_size", "train_subset",
            "val_subset", "dropout")  # fmt: skip
    assert {k: getattr(cfg, k) for k in keep} == {k: getattr(base, k) for k in keep}
    # the trainer steps it every mini-batch, as CosineAnnealingLR with T_max = all steps
    rates = _trace(spec, cfg, 7)
    np.testing.assert_allclose(rates, _cosine_annealing_lr(0.05, 7 * cfg.epochs), rtol=1e-12)
    assert rates[0] == 0.05 and np.all(np.diff(rates) < 0)
    with pytest.raises(ValueError, match="peak must be a positive number"):
        ex.full_budget_annealed(-0.1)


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_schedule_specs_start_from_the_base_rate_and_act_within_the_budget(profile):
    specs = ex.schedule_specs(0.01, 0.2, profile=profile)
    onecycles = {"onecycle", "onecycle_flat", "onecycle_base", "onecycle_base_flat"}
    assert set(specs) == {
        "constant",
        "step",
        "lambda_step",
        "lambda",
        "multistep",
        "cosine",
        "plateau",
        *onecycles,
    }
    cfgs = {name: spec.resolve(profile) for name, spec in specs.items()}
    epochs = cfgs["step"].epochs
    spe = 10  # OneCycleLR's rise ends on a whole step: it reaches its peak exactly
    # every schedule but OneCycleLR peaks at the base rate, and starts there but for the
    # warm-up; OneCycleLR climbs from max_lr / 25
    losses = [1.0 - 0.1 * e for e in range(epochs)]
    for key, spec in specs.items():
        rates = _trace(spec, cfgs[key], spe, metrics=losses)
        if key.startswith("onecycle"):
            assert rates[0] == pytest.approx(cfgs[key].scheduler_kwargs["max_lr"] / 25)
        else:
            assert rates.max() == 0.01 and (rates[0] == 0.01) == (key != "lambda"), key
    peaks = {k: cfgs[k].scheduler_kwargs["max_lr"] for k in onecycles}
    assert peaks == {"onecycle": 0.2, "onecycle_flat": 0.2, "onecycle_base": 0.01,
                     "onecycle_base_flat": 0.01}  # fmt: skip
    cycled = {k: cfgs[k].scheduler_kwargs.get("cycle_momentum", True) for k in onecycles}
    assert cycled == {"onecycle": True, "onecycle_flat": False, "onecycle_base": True,
                      "onecycle_base_flat": False}  # fmt: skip
    for key in onecycles:  # the peak is reached, whatever the base rate
        assert _trace(specs[key], cfgs[key], spe).max() == pytest.approx(peaks[key])
    # cosine: every mini-batch, over the whole run, as CosineAnnealingLR(T_max = all steps)
    cosine = _trace(specs["cosine"], cfgs["cosine"], spe)
    np.testing.assert_allclose(cosine, _cosine_annealing_lr(0.01, spe * epochs), rtol=1e-12)
    assert len(set(cosine[:spe])) == spe  # a new rate every mini-batch, not every epoch
    assert cfgs["step"].scheduler_kwargs["step_size"] < epochs or epochs == 1
    assert max(cfgs["multistep"].scheduler_kwargs["milestones"]) < epochs
    # one budget: the schedules differ in nothing but the schedule
    budget = ex.SHORT_BUDGET.resolve(profile).to_dict()
    base = {k: v for k, v in budget.items() if "scheduler" not in k and k != "lr"}
    for cfg in cfgs.values():
        assert cfg.lr == 0.01
        assert {k: v for k, v in cfg.to_dict().items() if k in base} == base
    # the constant rate is the sweep's run at that rate: one cache entry
    assert cfgs["constant"] == ex.sweep_specs(["momentum"])[("momentum", 0.01)].resolve(profile)
    with pytest.raises(ValueError, match="base_lr must be a positive number"):
        ex.schedule_specs(0, 0.2)
    with pytest.raises(ValueError, match="max_lr must be a positive number"):
        ex.schedule_specs(0.01, "0.1")


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_the_plateau_schedule_can_act_within_the_budget(profile):
    spec = ex.schedule_specs(0.01, 0.2, profile=profile)["plateau"]
    cfg = spec.resolve(profile)
    epochs = cfg.epochs
    # the validation loss fails to improve once, after the second-to-last epoch: the
    # last epoch runs at a tenth of the rate (a patience of one would wait for two)
    losses = [1.0 - 0.1 * e for e in range(epochs)]
    losses[epochs - 2] = 2.0
    per_epoch = _trace(spec, cfg, 1, metrics=losses)
    expected = [0.01] * (epochs - 1) + [0.001]
    np.testing.assert_allclose(per_epoch, expected, rtol=1e-12)
    # while it keeps improving, the rate stays
    steady = _trace(spec, cfg, 1, metrics=[1.0 - 0.1 * e for e in range(epochs)])
    np.testing.assert_array_equal(steady, [0.01] * epochs)


def test_the_warm_up_lambda_is_the_transformers_schedule():
    # min(t / w, sqrt(w / t)) with a warm-up of w = 2 epochs, t = epoch + 1
    warm = ex.LR_LAMBDAS["warmup_inverse_sqrt"]
    t = np.arange(1, 101)
    np.testing.assert_allclose([warm(e) for e in t - 1], np.minimum(t / 2, np.sqrt(2 / t)))


def test_lambda_step_is_steplr_written_as_a_lambda():
    specs = ex.schedule_specs(0.05, 0.2, profile="full")
    step, lam = (specs[k].resolve("full") for k in ("step", "lambda_step"))
    k = step.scheduler_kwargs["step_size"]
    a = lr_module.trace_lr("step", 9, 3, lr=0.05, step_size=k, gamma=0.1)
    b = lr_module.trace_lr(
        "lambda", 9, 3, lr=0.05, lr_lambda=ex.LR_LAMBDAS[lam.scheduler_kwargs["lr_lambda"]]
    )
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert a[0] == 0.05 and np.isclose(a[-1], 0.05 * 0.1 ** (8 // k))


# --------------------------------------------------------------------------- several runs

DIVERGES = TINY.replace(name="tiny, far too fast", lr=50.0, record=Record())


def _same_result(a, b):
    assert a.seed == b.seed and a.config == b.config
    assert a.history.same_as(b.history)
    assert (a.test_acc, a.test_loss) == (b.test_acc, b.test_loss)
    assert sorted(a.records) == sorted(b.records)
    for key in a.records:
        np.testing.assert_array_equal(a.records[key], b.records[key])


def test_workers_give_the_in_process_results_bit_for_bit(tmp_path, monkeypatch):
    adam = TINY.replace(
        name="tiny adam",
        optimizer="adam",
        lr=1e-3,
        optimizer_kwargs={},
        record=Record(state={"features.0.weight": [0]}, snapshot_every=3),
    )
    jobs = [(TINY, 0), (DIVERGES, 0), (TINY, 1), (adam, 2), (TINY, 0)]  # (TINY, 0) twice
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "pool"))
    pooled = ex.run_many(jobs, profile="quick", workers=2, return_exceptions=True)
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "here"))
    here = ex.run_many(jobs, profile="quick", workers=1, return_exceptions=True)
    assert [type(r) for r in pooled] == [type(r) for r in here]
    for a, b in zip(pooled, here, strict=True):
        if isinstance(a, TrainingDivergedError):
            assert (a.epoch, a.step, a.loss, a.lr, a.limit) == (
                b.epoch,
                b.step,
                b.loss,
                b.lr,
                b.limit,
            )
        else:
            assert not a.from_cache and not b.from_cache
            _same_result(a, b)
    assert pooled[0] is pooled[4]  # a job listed twice trains once
    # Each process wrote the same cache entries (a diverged run's too), and the pooled
    # cache now serves every result, the failure included, without training.
    names = {p.name for p in (tmp_path / "pool").rglob("*.npz")}
    assert names == {p.name for p in (tmp_path / "here").rglob("*.npz")} and len(names) == 4
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "pool"))
    monkeypatch.setattr(
        train_module.RunTask, "compute", lambda *a, **k: pytest.fail("nothing may train")
    )
    again = ex.run_many(jobs, profile="quick", workers=2, return_exceptions=True)
    assert all(r.meta["from_cache"] for r in again)
    assert [type(r) for r in again] == [type(r) for r in here]


def test_run_many_raises_a_divergence_after_caching_the_rest(tmp_cache):
    with pytest.raises(TrainingDivergedError, match=r"training diverged: .*\(learning rate 50\)"):
        ex.run_many([(DIVERGES, 0), (TINY, 0)], profile="quick", workers=2)
    assert ex.run(TINY, 0, profile="quick").from_cache


def test_run_specs_groups_by_key_and_seed():
    specs = {"a": TINY, "b": TINY.replace(lr=0.01)}
    out = ex.run_specs(specs, seeds=[1, 0], profile="quick", workers=2)
    assert list(out) == ["a", "b"]
    assert out["b"].seeds == [1, 0] and out["b"].spec is specs["b"]
    assert out["b"].results[0].config.lr == 0.01
    _same_result(out["a"].results[1], ex.run(TINY, 0, profile="quick"))
    assert ex.run_seeds(TINY, profile="quick").seeds == list(ex.PROFILES["quick"].seeds)
    with pytest.raises(ValueError, match="seeds of 'a' is empty"):
        ex.run_specs(specs, seeds=[], profile="quick")
    # seeds per spec: the others take the profile's
    mixed = ex.run_specs(specs, seeds={"b": [1]}, profile="quick")
    assert mixed["a"].seeds == list(ex.PROFILES["quick"].seeds) and mixed["b"].seeds == [1]
    _same_result(mixed["b"].results[0], out["b"].results[0])
    with pytest.raises(ValueError, match=r"seeds names specs that are not given: \['c'\]"):
        ex.run_specs(specs, seeds={"c": [0]}, profile="quick")


def test_worker_failure_names_the_run_and_the_cause(tmp_path, monkeypatch):
    ex.get_splits()  # this process has the data; the workers will look in an empty folder
    monkeypatch.setenv("FASHION_OPTIM_DATA", str(tmp_path))
    with pytest.raises(
        RuntimeError,
        match=r"(?s)'tiny momentum' \(seed \d\) failed in a worker process.*"
        r"DatasetNotFoundError",
    ):
        ex.run_many([(TINY, 0), (TINY, 1)], profile="quick", workers=2)


def test_a_bad_job_fails_before_any_worker_starts():
    broken = TINY.replace(name="too many images", train_subset=10**7)
    with pytest.raises(
        ValueError, match=r"train_subset must be None .* in \[1, 50000\], got 10000000"
    ):
        ex.run_many([(TINY, 0), (broken, 0)], profile="quick", workers=2)


def test_worker_warnings_are_said_in_the_caller(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="could not write the cache entry") as caught:
        results = ex.run_many([(TINY, 0), (TINY, 1)], profile="quick", workers=2)
    assert len([w for w in caught if "could not write" in str(w.message)]) == 2
    assert [r.seed for r in results] == [0, 1]


@pytest.mark.parametrize(
    ("jobs", "workers", "error", "message"),
    [
        ([TINY], 1, TypeError, "each job must be a \\(Spec, seed\\) pair"),
        ([(TINY, "0")], 1, TypeError, r"a seed \(of 'tiny momentum'\) must be an int, got '0'"),
        ([(TINY, 0)], 0, ValueError, "workers must be an integer >= 1"),
    ],
)
def test_run_many_rejects_bad_input(jobs, workers, error, message):
    with pytest.raises(error, match=message):
        ex.run_many(jobs, profile="quick", workers=workers)


@pytest.mark.parametrize("value", ["0", "two", "-1", "", " "])
def test_bad_worker_count_in_the_environment(monkeypatch, value):
    monkeypatch.setenv("FASHION_OPTIM_WORKERS", value)
    with pytest.raises(
        ValueError, match=rf"FASHION_OPTIM_WORKERS must be an integer >= 1, got '{value}'"
    ):
        ex.default_workers()


GIB = 2**30


@pytest.mark.parametrize(
    ("cores", "memory", "expected"),
    [(2, 64 * GIB, 2), (4, 64 * GIB, 4), (16, 64 * GIB, 8), (16, 4 * GIB, 3), (4, GIB, 1)],
)
def test_default_workers_are_the_cores_at_most_8_and_what_memory_holds(
    monkeypatch, cores, memory, expected
):
    monkeypatch.delenv("FASHION_OPTIM_WORKERS", raising=False)
    monkeypatch.setattr(executors.os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(executors, "_available_memory", lambda: memory, raising=False)
    assert ex.default_workers() == expected


def test_worker_count_from_the_environment(monkeypatch):
    monkeypatch.setattr(executors, "_available_memory", lambda: 64 * GIB, raising=False)
    monkeypatch.setattr(executors, "_said_capped", set(), raising=False)
    monkeypatch.setenv("FASHION_OPTIM_WORKERS", "3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ex.default_workers() == 3
    monkeypatch.setenv("FASHION_OPTIM_WORKERS", "100")
    with pytest.warns(RuntimeWarning) as said:
        assert ex.default_workers() == 52  # 64 GiB / 1.3 GB
    assert str(said[0].message) == (
        "FASHION_OPTIM_WORKERS=100 asks for more workers than memory holds: 64.0 GiB is "
        "available and each worker needs about 1.2 GiB, so 52 are used. Set "
        "FASHION_OPTIM_WORKERS to 52 or less to silence this."
    )


def test_a_huge_worker_count_is_capped_by_the_real_memory(monkeypatch):
    # (no stand-in: this machine's memory, whatever it is)
    monkeypatch.setenv("FASHION_OPTIM_WORKERS", "10000")
    monkeypatch.setattr(executors, "_said_capped", set(), raising=False)
    with pytest.warns(RuntimeWarning, match=r"FASHION_OPTIM_WORKERS=10000 asks for more"):
        workers = ex.default_workers()
    with open("/proc/meminfo") as fh:
        available = next(int(line.split()[1]) * 1024 for line in fh if "MemAvailable" in line)
    assert 1 <= workers <= max(1, 2 * available // executors.WORKER_MEMORY) < 10000


def test_training_runs_on_the_pinned_thread_count():
    seen = []

    class Threads(Recorder):
        def after_step(self, trainer):
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    cfg = TINY.resolve("quick")
    train(cfg, 0, progress=False, extra_recorders=[Threads()])
    assert set(seen) == {ex.TRAIN_THREADS}
    assert torch.get_num_threads() == before
    assert ex.run(TINY, 0, profile="quick").meta["environment"]["threads"] == ex.TRAIN_THREADS


# --------------------------------------------------------------------------- every kind

SNAPSHOTS = TINY.replace(name="tiny snapshots", train_subset=300, record=Record(snapshot_every=4))


def _same_surface(a, b):
    assert sorted(a.surface) == sorted(b.surface)
    for key in a.surface:
        np.testing.assert_array_equal(a.surface[key], b.surface[key])


def _same_range_test(a, b):
    for key in ("lrs", "losses", "smoothed"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert (a.suggested_lr, a.lr_min, a.lr_max, a.stopped_at) == (
        b.suggested_lr,
        b.lr_min,
        b.lr_max,
        b.stopped_at,
    )


def test_a_mixed_batch_gives_the_single_calls_results_bit_for_bit(tmp_path, monkeypatch):
    from fashion_optim.experiments.surface import (
        compute_loss_surface,
        compute_random_plane_surface,
    )

    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "mixed"))
    snaps = ex.run_many([(SNAPSHOTS, 0), (SNAPSHOTS.replace(lr=0.02), 0)], profile="quick")
    batch = [
        (TINY, 2),
        ex.RangeTestJob(TINY, 0, num_iter=25),
        ex.TrajectorySurfaceJob(snaps, grid=3, images=64),
        ex.RandomPlaneJob(snaps[0], grid=3, images=64, span=0.5),
    ]
    mixed = ex.run_many(batch, profile="quick", workers=2)  # every kind in the pool
    assert not any(r.from_cache for r in mixed[:1])
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "single"))
    alone = ex.run_many([(SNAPSHOTS, 0), (SNAPSHOTS.replace(lr=0.02), 0)], profile="quick")
    _same_result(mixed[0], ex.run(TINY, 2, profile="quick"))
    _same_range_test(mixed[1], ex.run_range_test(TINY, 0, num_iter=25, profile="quick"))
    trajectory = ex.trajectory_surface(alone, grid=3, images=64, profile="quick")
    _same_surface(mixed[2], trajectory)
    for a, b in zip(mixed[2].paths, trajectory.paths, strict=True):
        assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    plane = ex.random_plane_surface(alone[0], grid=3, images=64, span=0.5, profile="quick")
    _same_surface(mixed[3], plane)
    assert mixed[3].cosine == plane.cosine
    # the rows computed apart are the grid computed whole, on one thread, as before
    where = {"seed": 0, "train_subset": 300, "images": 64, "grid": 3}
    whole, _ = compute_loss_surface([r.snapshots for r in snaps], **where)
    for key in ("alphas", "betas", "loss", "accuracy", "extent"):
        np.testing.assert_array_equal(whole[key], mixed[2].surface[key])
    for i, path in enumerate(mixed[2].paths):
        for key, values in path.items():
            np.testing.assert_array_equal(whole[f"path{i}/{key}"], values)
    whole, _ = compute_random_plane_surface(
        snaps[0].snapshots[-1], directions_seed=0, span=0.5, **where
    )
    for key, values in whole.items():
        np.testing.assert_array_equal(values, mixed[3].surface[key])
    # and served from the cache, the same
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "mixed"))
    monkeypatch.setattr(
        executors, "train_all", lambda *a, **k: pytest.fail("nothing may be computed")
    )
    cached = ex.run_many(batch, profile="quick", workers=2)
    assert cached[0].from_cache
    _same_result(cached[0], mixed[0])
    _same_range_test(cached[1], mixed[1])
    _same_surface(cached[2], mixed[2])
    _same_surface(cached[3], mixed[3])


def test_the_registry_names_the_code_each_key_covers():
    from fashion_optim.experiments.kinds import KINDS

    assert {name: cls.__module__ for name, cls in KINDS.items()} == cache.KINDS


def test_a_batch_starts_the_longest_parts_first():
    class Part:
        def __init__(self, label, cost):
            self.label, self.cost = label, cost

        def compute(self, **_):
            order.append(self.label)
            return {}, {}

    order: list[str] = []
    parts = [Part("short", 1), Part("long", 30), Part("middle", 5)]
    done = []
    executors.train_all(parts, workers=1, on_done=lambda i, outcome: done.append(i))
    assert order == ["long", "middle", "short"] and done == [1, 2, 0]


def test_result_accessors_name_what_to_record():
    result = ex.run(TINY, 0, profile="quick")
    np.testing.assert_array_equal(
        result.optimizer_state("momentum_buffer", "features.0.weight"),
        result.records["state/momentum_buffer/features.0.weight"],
    )
    assert result.gradient("features.0.weight").shape[1] == 2
    assert result.snapshots.shape[0] == len(result.snapshot_steps)
    with pytest.raises(KeyError, match=r"no 'adam_q/levels'.*layer_quantiles="):
        _ = result.adam_quantile_levels


def _outcomes(spec, lrs, complete=True):
    """A stand-in for SeedOutcomes: one run per list of per-epoch rates."""
    from types import SimpleNamespace as NS

    runs = [NS(seed=s, history=NS(lr=lr)) for s, lr in enumerate(lrs)]
    return NS(
        spec=spec,
        complete=complete,
        results=NS(results=runs),
        failure_note=lambda: "" if complete else "1 of 2 seeds failed (1 diverged)",
    )


def test_schedule_candidates_leave_out_failures_twins_and_an_idle_plateau():
    specs = ex.schedule_specs(0.03, 0.03, profile="quick")  # the peak is the base rate
    steady, cut = [0.03, 0.03, 0.03], [0.03, 0.03, 0.003]
    outcomes = {k: _outcomes(spec, [steady, steady]) for k, spec in specs.items()}
    outcomes["step"] = _outcomes(specs["step"], [steady], complete=False)
    keep, out = ex.schedule_candidates(outcomes, profile="quick")
    assert set(out) == {"step", "lambda_step", "onecycle", "onecycle_flat", "plateau"}
    assert "1 diverged" in out["step"]
    assert out["lambda_step"] == f"the same schedule as {specs['step'].name}, by definition"
    assert out["onecycle"] == f"the same configuration as {specs['onecycle_base'].name}"
    assert "never lowered the rate" in out["plateau"]
    assert set(keep) == set(specs) - set(out)
    assert ex.lowered_epochs(outcomes["plateau"].results) == {0: [], 1: []}
    # a plateau that acted on one seed is ranked, and says when
    outcomes["plateau"] = _outcomes(specs["plateau"], [steady, cut])
    keep, out = ex.schedule_candidates(outcomes, profile="quick")
    assert "plateau" in keep and "plateau" not in out
    # StepLR's LambdaLR twin is never ranked beside it; alone, it is
    assert "lambda_step" in out
    del outcomes["step"]
    keep, out = ex.schedule_candidates(outcomes, profile="quick")
    assert "lambda_step" in keep and "lambda_step" not in out
    assert ex.lowered_epochs(outcomes["plateau"].results) == {0: [], 1: [3]}
