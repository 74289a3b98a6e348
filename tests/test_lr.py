"""Tests for fashion_optim.lr: the range test, the scheduler factory and lr traces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler

from fashion_optim import lr as lrmod
from fashion_optim import training
from fashion_optim.data import ArrayLoader
from fashion_optim.lr import (
    SCHEDULERS,
    RangeTestResult,
    make_scheduler,
    range_test,
    scheduler_interval,
    trace_lr,
)

# --------------------------------------------------------------------------- helpers


def assert_same(a, b, where="") -> None:
    """Bitwise equality of nested state dicts (tensors compared with torch.equal)."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b), where
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def snapshot(model, optimizer):
    import copy

    return (
        copy.deepcopy(model.state_dict()),
        copy.deepcopy(optimizer.state_dict()),
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [m.training for m in model.modules()],
        torch.get_rng_state(),
    )


def assert_restored(before, model, optimizer) -> None:
    sd, osd, grads, modes, rng = before
    assert_same(sd, model.state_dict(), "model")
    assert_same(osd, optimizer.state_dict(), "optimizer")
    for g, p in zip(grads, model.parameters(), strict=True):
        assert (g is None) == (p.grad is None)
        if g is not None:
            assert torch.equal(g, p.grad)
    assert modes == [m.training for m in model.modules()]
    assert torch.equal(rng, torch.get_rng_state())


def tiny_mlp() -> nn.Module:
    # BatchNorm buffers and dropout make the state and the RNG matter.
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(16, 8),
        nn.BatchNorm1d(8),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(8, 3),
    )


def tiny_loader(n=32, batch_size=8, seed=0) -> ArrayLoader:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, 4, 4, generator=gen)
    labels = torch.randint(0, 3, (n,), generator=gen)
    return ArrayLoader(images, labels, batch_size=batch_size, shuffle=True, seed=seed)


def regression_problem():
    """Full-batch least squares: gradient descent diverges above 2 / L exactly."""
    gen = torch.Generator().manual_seed(0)
    x = 2 * torch.rand(64, 1, generator=gen)
    y = 1 + 2 * x + 0.1 * torch.randn(64, 1, generator=gen)
    design = torch.cat([torch.ones_like(x), x], 1).double()
    hessian = 2 / len(x) * design.T @ design  # of nn.MSELoss in (b, w)
    lr_diverge = 2 / torch.linalg.eigvalsh(hessian).max().item()
    torch.manual_seed(0)
    return nn.Linear(1, 1), [(x, y)], lr_diverge


class SpySGD(torch.optim.SGD):
    """SGD that records the learning rate of every step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[float] = []

    def step(self, closure=None):
        self.seen.append(self.param_groups[0]["lr"])
        return super().step(closure)


# --------------------------------------------------------------------------- range test


def test_range_test_restores_model_optimizer_rng_and_loader_epoch():
    torch.manual_seed(1)
    model = tiny_mlp()
    loader = tiny_loader()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    # Non-trivial optimizer state, gradients, eval mode and a loader epoch to restore.
    x, y = next(iter(loader))
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    model.eval()
    loader.set_epoch(3)
    before = snapshot(model, optimizer)

    result = range_test(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        loader,
        start_lr=1e-4,
        end_lr=1.0,
        num_iter=10,
        skip_start=0,
        skip_end=0,
    )

    assert len(result.lrs) == 10  # more iterations than batches: the loader was cycled
    assert np.all(np.isfinite(result.losses))
    assert_restored(before, model, optimizer)
    assert optimizer.param_groups[0]["lr"] == 3e-3
    assert loader.epoch == 3


def test_range_test_restores_state_when_the_loss_raises():
    torch.manual_seed(2)
    model = tiny_mlp()
    loader = tiny_loader()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = snapshot(model, optimizer)
    calls = 0

    def flaky_loss(logits, targets):
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(logits, targets)

    with pytest.raises(RuntimeError, match="boom"):
        range_test(model, flaky_loss, optimizer, loader, num_iter=10, progress=False)
    assert_restored(before, model, optimizer)
    assert loader.epoch == 0


def test_range_test_suggestion_on_least_squares_lies_below_the_divergence_lr():
    model, loader, lr_diverge = regression_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    result = range_test(
        model, nn.MSELoss(), optimizer, loader, start_lr=1e-4, end_lr=10.0, num_iter=100
    )
    assert isinstance(result, RangeTestResult)
    # Gradient descent on a quadratic cannot blow up below 2 / L; above it, it must.
    assert result.diverged
    assert result.stopped_at is not None
    assert len(result.lrs) == result.stopped_at + 1
    assert result.lrs[result.stopped_at] > lr_diverge
    # The suggestion: below the divergence lr, inside the descending range, where the raw
    # loss is falling.
    assert result.suggested_lr < lr_diverge
    assert result.lr_min <= result.suggested_lr <= result.lr_max
    i = int(np.flatnonzero(result.lrs == result.suggested_lr)[0])
    assert result.losses[i + 1] < result.losses[i] < result.losses[i - 1]
    lowest = int(np.argmin(result.smoothed[10:-5])) + 10
    assert result.lr_max == result.lrs[lowest]


def test_range_test_runs_to_the_end_below_the_divergence_lr():
    model, loader, lr_diverge = regression_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    result = range_test(
        model,
        nn.MSELoss(),
        optimizer,
        loader,
        start_lr=1e-3,
        end_lr=0.9 * lr_diverge,
        num_iter=40,
    )
    assert not result.diverged
    assert result.stopped_at is None
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) == 40
    assert np.all(np.diff(result.losses) < 0)  # monotone descent below 2 / L


@pytest.mark.parametrize("step_mode", ["exp", "linear"])
def test_range_test_schedule_matches_the_formula(step_mode):
    model, loader, _ = regression_problem()
    optimizer = SpySGD(model.parameters(), lr=0.01)
    start, end, n = 1e-6, 1e-2, 25
    result = range_test(
        model,
        nn.MSELoss(),
        optimizer,
        loader,
        start_lr=start,
        end_lr=end,
        num_iter=n,
        step_mode=step_mode,
        skip_start=2,
        skip_end=2,
    )
    if step_mode == "exp":
        expected = [start * (end / start) ** (i / (n - 1)) for i in range(n)]
    else:
        expected = [start + (end - start) * (i / (n - 1)) for i in range(n)]
    assert result.step_mode == step_mode
    assert np.array_equal(result.lrs, np.array(expected))
    assert result.lrs[0] == start
    assert result.lrs[-1] == pytest.approx(end, rel=1e-14)
    assert optimizer.seen == expected  # what the optimizer actually used
    if step_mode == "exp":
        np.testing.assert_allclose(np.diff(np.log(result.lrs)), math.log(end / start) / (n - 1))


def test_range_test_smoothing_is_the_bias_corrected_ewma():
    model, loader, _ = regression_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    smooth = 0.2
    result = range_test(
        model,
        nn.MSELoss(),
        optimizer,
        loader,
        start_lr=1e-3,
        end_lr=0.1,
        num_iter=20,
        smooth=smooth,
        skip_start=2,
        skip_end=2,
    )
    beta = 1 - smooth
    for i in range(len(result.losses)):
        weights = (1 - beta) * beta ** np.arange(i, -1, -1)
        expected = weights @ result.losses[: i + 1] / (1 - beta ** (i + 1))
        assert result.smoothed[i] == pytest.approx(expected, rel=1e-12)
    assert result.smoothed[0] == result.losses[0]


def test_range_test_stops_on_nan_loss():
    model, loader, _ = regression_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    before = snapshot(model, optimizer)
    calls = 0

    def loss_fn(out, target):
        nonlocal calls
        calls += 1
        loss = nn.functional.mse_loss(out, target)
        return loss * math.nan if calls == 7 else loss

    with pytest.warns(RuntimeWarning, match="too few"):
        result = range_test(model, loss_fn, optimizer, loader, start_lr=1e-4, end_lr=1e-2)
    assert result.diverged and result.stopped_at == 6
    assert len(result.losses) == 6  # the NaN batch is not recorded
    assert result.suggested_lr is None and result.lr_min is None and result.lr_max is None
    assert_restored(before, model, optimizer)


def test_range_test_stops_when_the_smoothed_loss_explodes():
    model, loader, _ = regression_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    calls = 0

    def loss_fn(out, target):
        nonlocal calls
        calls += 1
        loss = nn.functional.mse_loss(out, target)
        return loss * 0 + 1.0 if calls < 20 else loss * 0 + 100.0

    result = range_test(model, loss_fn, optimizer, loader, diverge_threshold=3.0)
    # Smoothed loss after the jump at i = 19: 1 + 99 * (1 - 0.95) / (1 - 0.95**20) > 3.
    assert result.diverged and result.stopped_at == 19
    assert result.smoothed[-1] > 3.0 * result.smoothed[:-1].min()
    assert np.all(result.smoothed[:-1] <= 3.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_lr": 0.0}, r"start_lr must be > 0, got 0.0"),
        ({"start_lr": -1e-3}, r"start_lr must be > 0, got -0.001"),
        ({"start_lr": 1.0, "end_lr": 1.0}, r"end_lr must be > start_lr \(1.0\), got 1.0"),
        ({"start_lr": 1.0, "end_lr": 0.1}, r"end_lr must be > start_lr"),
        ({"num_iter": 1}, r"num_iter must be an integer >= 2, got 1"),
        ({"step_mode": "log"}, r"step_mode must be 'exp' or 'linear', got 'log'"),
        ({"smooth": 0.0}, r"smooth must be in \(0, 1\), got 0.0"),
        ({"smooth": 1.0}, r"smooth must be in \(0, 1\), got 1.0"),
        ({"diverge_threshold": 1.0}, r"diverge_threshold must be > 1, got 1.0"),
        ({"skip_start": -1}, r"skip_start must be an integer >= 0, got -1"),
    ],
)
def test_range_test_validates_arguments(kwargs, message):
    model, loader, _ = regression_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    before = snapshot(model, optimizer)
    with pytest.raises(ValueError, match=message):
        range_test(model, nn.MSELoss(), optimizer, loader, **kwargs)
    assert_restored(before, model, optimizer)


def test_range_test_rejects_an_empty_loader():
    model, _, _ = regression_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="no batches"):
        range_test(model, nn.MSELoss(), optimizer, [])


# --------------------------------------------------------------------------- factory

BASE_LR = 0.1
EPOCHS, STEPS = 6, 5
METRICS = [1.0, 0.9, 0.95, 0.97, 0.96, 0.99]

# name, factory kwargs, the same scheduler built with torch directly
CASES = [
    ("constant", {}, lambda o: lr_scheduler.ConstantLR(o, factor=1.0, total_iters=0)),
    ("step", {"step_size": 2, "gamma": 0.5}, lambda o: lr_scheduler.StepLR(o, 2, 0.5)),
    (
        "multistep",
        {"milestones": [1, 4], "gamma": 0.3},
        lambda o: lr_scheduler.MultiStepLR(o, [1, 4], 0.3),
    ),
    ("exponential", {"gamma": 0.8}, lambda o: lr_scheduler.ExponentialLR(o, 0.8)),
    (
        "lambda",
        {"lr_lambda": lambda e: 1 / (1 + e)},
        lambda o: lr_scheduler.LambdaLR(o, lambda e: 1 / (1 + e)),
    ),
    ("cosine", {"eta_min": 1e-3}, lambda o: lr_scheduler.CosineAnnealingLR(o, EPOCHS, 1e-3)),
    (
        "cosine_warm_restarts",
        {"T_0": 2, "T_mult": 2},
        lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2),
    ),
    (
        "cyclic",
        {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4},
        lambda o: lr_scheduler.CyclicLR(
            o, base_lr=0.01, max_lr=0.1, step_size_up=4, cycle_momentum=False
        ),
    ),
    (
        "onecycle",
        {"max_lr": 1.0},
        lambda o: lr_scheduler.OneCycleLR(
            o, max_lr=1.0, total_steps=EPOCHS * STEPS, cycle_momentum=False
        ),
    ),
    ("plateau", {"patience": 1}, lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=1)),
]
PER_BATCH = {"cosine_warm_restarts", "cyclic", "onecycle"}


def manual_trace(name, build) -> list[float]:
    """The textbook torch loop, written out without fashion_optim's helpers."""
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=BASE_LR)
    scheduler = build(optimizer)
    lrs = []
    for epoch in range(EPOCHS):
        for batch in range(STEPS):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if name == "cosine_warm_restarts":
                scheduler.step(epoch + (batch + 1) / STEPS)
            elif name in PER_BATCH:
                scheduler.step()
        if name == "plateau":
            scheduler.step(METRICS[epoch])
        elif name not in PER_BATCH:
            scheduler.step()
    return lrs


def test_cases_cover_every_scheduler():
    assert [c[0] for c in CASES] == list(SCHEDULERS)


@pytest.mark.parametrize(("name", "kwargs", "build"), CASES, ids=[c[0] for c in CASES])
def test_trace_matches_torch_loop(name, kwargs, build):
    trace = trace_lr(name, EPOCHS, STEPS, lr=BASE_LR, metrics=METRICS, **kwargs)
    assert trace.shape == (EPOCHS * STEPS,)
    assert trace.tolist() == manual_trace(name, build)
    param = nn.Parameter(torch.zeros(1))
    sched = make_scheduler(
        name, torch.optim.SGD([param], lr=BASE_LR), epochs=EPOCHS, steps_per_epoch=STEPS, **kwargs
    )
    assert type(sched) is type(build(torch.optim.SGD([param], lr=BASE_LR)))
    assert scheduler_interval(sched) == ("batch" if name in PER_BATCH else "epoch")


def test_trace_is_not_flat_for_the_varying_schedulers():
    for name, kwargs, _ in CASES:
        trace = trace_lr(name, EPOCHS, STEPS, lr=BASE_LR, metrics=METRICS, **kwargs)
        assert (np.ptp(trace) == 0) == (name == "constant"), name


def test_step_schedule_closed_form():
    trace = trace_lr("step", 20, 3, lr=0.5, step_size=3, gamma=0.1)
    epochs = np.repeat(np.arange(20), 3)
    np.testing.assert_allclose(trace, 0.5 * 0.1 ** (epochs // 3), rtol=1e-12)
    # Epochs 18 and 19 are the 7th block of three: six decays, lr * 1e-6.
    assert trace[-1] == pytest.approx(0.5e-6, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("onecycle", {"max_lr": 1.0}),
        ("cosine_warm_restarts", {"T_0": 1, "T_mult": 2}),
        ("plateau", {"patience": 0, "factor": 0.5}),
        ("step", {"step_size": 1, "gamma": 0.5}),
    ],
)
def test_trace_equals_the_trainer_batch_lrs(name, kwargs):
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(24, 1, 2, 2, generator=gen)
    labels = torch.randint(0, 3, (24,), generator=gen)
    train = ArrayLoader(images, labels, batch_size=5, shuffle=True)
    val = ArrayLoader(images[:8], labels[:8], batch_size=8)
    epochs, steps = 4, len(train)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    scheduler = make_scheduler(name, optimizer, epochs=epochs, steps_per_epoch=steps, **kwargs)
    trainer = training.Trainer(
        model, nn.CrossEntropyLoss(), optimizer, scheduler, device="cpu", progress=False
    )
    history = trainer.fit(train, val, epochs=epochs)
    trace = trace_lr(name, epochs, steps, lr=0.2, metrics=history.val_loss, **kwargs)
    assert trace.tolist() == history.batch_lr


def test_make_scheduler_is_case_insensitive():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    assert isinstance(
        make_scheduler("OneCycle", opt, epochs=2, steps_per_epoch=3, max_lr=1.0),
        lr_scheduler.OneCycleLR,
    )
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make_scheduler("COSINE", opt, epochs=7)
    assert isinstance(sched, lr_scheduler.CosineAnnealingLR) and sched.T_max == 7


def test_onecycle_total_steps():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make_scheduler("onecycle", opt, epochs=3, steps_per_epoch=7, max_lr=1.0)
    assert sched.total_steps == 21


def test_cyclic_leaves_plain_sgd_without_momentum():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    make_scheduler("cyclic", opt, base_lr=0.01, max_lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    make_scheduler("cyclic", opt, base_lr=0.01, max_lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0.9  # torch's max_momentum at the start
    sched = make_scheduler("onecycle", opt, epochs=1, steps_per_epoch=10, max_lr=1.0)
    assert sched.cycle_momentum


@pytest.mark.parametrize(
    ("name", "kwargs", "build"),
    [
        (
            "onecycle",
            {"epochs": 2, "steps_per_epoch": 5, "max_lr": 1.0},
            lambda o, **kw: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=10, **kw),
        ),
        (
            "cyclic",
            {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3},
            lambda o, **kw: lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=3, **kw),
        ),
    ],
)
def test_cyclic_without_momentum_turns_cycle_momentum_off(name, kwargs, build):
    # Adagrad has neither momentum nor betas: torch's default (cycle_momentum=True) raises.
    def adagrad():
        return torch.optim.Adagrad([nn.Parameter(torch.zeros(1))], lr=0.1)

    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        build(adagrad())
    opt = adagrad()
    sched = make_scheduler(name, opt, **kwargs)
    assert sched.cycle_momentum is False
    assert not {"momentum", "betas"} & opt.param_groups[0].keys()
    ref_opt = adagrad()
    ref = build(ref_opt, cycle_momentum=False)
    ours, theirs = [], []
    for _ in range(10):
        ours.append(opt.param_groups[0]["lr"])
        theirs.append(ref_opt.param_groups[0]["lr"])
        opt.step()
        ref_opt.step()
        sched.step()
        ref.step()
    assert ours == theirs
    assert len(set(ours)) > 2  # the schedule really moves
    # An explicit cycle_momentum=True is passed through, and torch refuses it.
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        make_scheduler(name, adagrad(), cycle_momentum=True, **kwargs)


def test_unknown_scheduler_lists_the_valid_names():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="unknown scheduler 'warmup'") as info:
        make_scheduler("warmup", opt)
    for name in SCHEDULERS:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="valid names"):
        trace_lr("warmup", 2, 2)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("onecycle", {"epochs": 3, "max_lr": 1.0}, "needs steps_per_epoch"),
        ("onecycle", {"steps_per_epoch": 3, "max_lr": 1.0}, "needs epochs"),
        ("onecycle", {"epochs": 3, "steps_per_epoch": 3}, "needs max_lr"),
        ("step", {}, "needs step_size"),
        ("multistep", {}, "needs milestones"),
        ("exponential", {}, "needs gamma"),
        ("lambda", {}, "needs lr_lambda"),
        ("cosine", {}, r"needs epochs \(or T_max\)"),
        ("cosine_warm_restarts", {}, "needs T_0"),
        ("cyclic", {"max_lr": 1.0}, "needs base_lr"),
        ("cosine", {"epochs": 0}, "epochs must be an integer >= 1, got 0"),
    ],
)
def test_make_scheduler_missing_arguments(name, kwargs, message):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=message):
        make_scheduler(name, opt, **kwargs)


def test_trace_plateau_needs_metrics():
    with pytest.raises(ValueError, match="metrics="):
        trace_lr("plateau", 3, 2)
    with pytest.raises(ValueError, match="at least 3 values, got 2"):
        trace_lr("plateau", 3, 2, metrics=[1.0, 1.0])


def test_trace_accepts_a_factory():
    trace = trace_lr(lambda o: lr_scheduler.StepLR(o, 1, 0.5), 3, 2, lr=1.0)
    assert trace.tolist() == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert trace_lr(lambda o: None, 2, 2, lr=0.3).tolist() == [0.3] * 4


def _torch_schedulers(optimizer):
    """One of each torch scheduler, built directly (not through make_scheduler)."""
    return {
        "OneCycleLR": lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=4),
        "CyclicLR": lr_scheduler.CyclicLR(optimizer, 0.01, 0.1, cycle_momentum=False),
        "CosineAnnealingWarmRestarts": lr_scheduler.CosineAnnealingWarmRestarts(optimizer, 2),
        "StepLR": lr_scheduler.StepLR(optimizer, 1),
        "MultiStepLR": lr_scheduler.MultiStepLR(optimizer, [1]),
        "ExponentialLR": lr_scheduler.ExponentialLR(optimizer, 0.9),
        "CosineAnnealingLR": lr_scheduler.CosineAnnealingLR(optimizer, 3),
        "LambdaLR": lr_scheduler.LambdaLR(optimizer, lambda e: 1.0),
        "LinearLR": lr_scheduler.LinearLR(optimizer),
        "ReduceLROnPlateau": lr_scheduler.ReduceLROnPlateau(optimizer),
    }


@pytest.mark.parametrize("interval", [lrmod.scheduler_interval, training.scheduler_interval])
def test_scheduler_interval_of_torch_schedulers(interval):
    per_batch = {"OneCycleLR", "CyclicLR", "CosineAnnealingWarmRestarts"}
    assert {cls.__name__ for cls in training.PER_BATCH_SCHEDULERS} == per_batch
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    got = {name: interval(sched) for name, sched in _torch_schedulers(optimizer).items()}
    assert got == {name: "batch" if name in per_batch else "epoch" for name in got}

    class WarmOneCycle(lr_scheduler.OneCycleLR):  # a subclass keeps its parent's unit
        pass

    assert interval(WarmOneCycle(optimizer, max_lr=1.0, total_steps=4)) == "batch"
