"""Tests for fashion_optim.lr: the scheduler factory and learning-rate traces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler

from fashion_optim import lr as lrmod
from fashion_optim import training
from fashion_optim.batches import ArrayLoader
from fashion_optim.lr import (
    SCHEDULERS,
    make_scheduler,
    scheduler_interval,
    trace_lr,
)

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


def test_regret_is_the_accuracy_lost_against_the_curves_best_on_the_log_rate_axis():
    from fashion_optim.suggest import regret

    rates, acc = [1e-3, 1e-2, 1e-1, 1.0], [0.70, 0.88, 0.90, 0.40]
    assert regret(rates, acc, 0.1) == 0.0
    assert regret(rates, acc, 1e-3) == pytest.approx(0.20)
    # halfway between 1e-2 and 1e-1 on the log axis: the mean of 0.88 and 0.90
    assert regret(rates, acc, 10**-1.5) == pytest.approx(0.90 - 0.89)
    # a quarter of the way from 0.1 to 1: 0.90 - 0.25 * 0.50
    assert regret(rates, acc, 10**-0.75) == pytest.approx(0.125)


@pytest.mark.parametrize(
    ("rates", "acc", "suggestion", "message"),
    [
        ([1e-3, 1e-2], [0.7, 0.8], 1.0, "outside the curve's rates"),
        ([1e-2, 1e-3], [0.7, 0.8], 5e-3, "increasing"),
        ([1e-3, 1e-2], [0.7, float("nan")], 5e-3, "leave failed points out"),
        ([1e-3], [0.7], 1e-3, "same length >= 2"),
    ],
)
def test_regret_refuses_what_a_curve_cannot_score(rates, acc, suggestion, message):
    from fashion_optim.suggest import regret

    with pytest.raises(ValueError, match=message):
        regret(rates, acc, suggestion)
