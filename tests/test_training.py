"""Trainer: determinism, scheduler stepping, checkpoints, divergence, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler

from fashion_optim.models import LeNet, count_parameters
from fashion_optim.training import (
    History,
    Trainer,
    TrainingDivergedError,
    scheduler_interval,
)


def make_trainer(seed=0, lr=0.05, momentum=0.9, dropout=0.2, scheduler=None, **kwargs):
    torch.manual_seed(seed)
    model = LeNet(dropout=dropout)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    sched = scheduler(opt) if scheduler else None
    return Trainer(model, nn.CrossEntropyLoss(), opt, sched, device="cpu", seed=seed, **kwargs)


def test_lenet_parameter_count():
    assert count_parameters(LeNet()) == 156 + 2416 + 48120 + 10164 + 850 == 61706
    with pytest.raises(ValueError, match="dropout"):
        LeNet(dropout=1.0)


def test_history_shapes_and_learning(tiny_loaders):
    train, val = tiny_loaders
    h = make_trainer().fit(train, val, epochs=3)
    assert h.epochs == 3 and len(h.batch_loss) == 3 * len(train) == len(h.batch_lr)
    assert all(0 <= a <= 1 for a in h.val_acc)
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.lr == [0.05] * 3


def test_same_seed_is_bitwise_identical(tiny_loaders):
    train, val = tiny_loaders
    a = make_trainer(seed=1).fit(train, val, epochs=2)
    b = make_trainer(seed=1).fit(train, val, epochs=2)
    c = make_trainer(seed=2).fit(train, val, epochs=2)
    assert a.same_as(b)
    assert a.batch_loss == b.batch_loss
    assert not a.same_as(c)


def test_history_round_trip():
    h = History(train_loss=[1.0], batch_loss=[2.0, 3.0])
    assert History.from_dict(h.to_dict()) == h


def _torch_trace(make_sched, epochs, batches, per_batch, plateau_metrics=None):
    """The learning rates torch's own scheduler gives, stepped by hand."""
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.05, momentum=0.9)
    sched = make_sched(opt)
    lrs = []
    for e in range(epochs):
        for b in range(batches):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if per_batch:
                if isinstance(sched, lr_scheduler.CosineAnnealingWarmRestarts):
                    sched.step(e + (b + 1) / batches)
                else:
                    sched.step()
        if not per_batch:
            sched.step(plateau_metrics[e]) if plateau_metrics else sched.step()
    return lrs


@pytest.mark.parametrize(
    ("make_sched", "per_batch"),
    [
        (lambda o: lr_scheduler.StepLR(o, step_size=1, gamma=0.5), False),
        (lambda o: lr_scheduler.LambdaLR(o, lambda e: 1 / (e + 1)), False),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=18), True),
        (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=4), True),
        (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2), True),
    ],
)
def test_scheduler_stepping_matches_torch(tiny_loaders, make_sched, per_batch):
    train, val = tiny_loaders  # 6 batches an epoch
    trainer = make_trainer(dropout=0.0, scheduler=make_sched)
    assert scheduler_interval(trainer.scheduler) == ("batch" if per_batch else "epoch")
    h = trainer.fit(train, val, epochs=3)
    expected = _torch_trace(make_sched, 3, len(train), per_batch)
    np.testing.assert_allclose(h.batch_lr, expected, rtol=1e-12)
    assert h.lr == [expected[0], expected[len(train)], expected[2 * len(train)]]


def test_plateau_receives_validation_loss(tiny_loaders, monkeypatch):
    train, val = tiny_loaders
    trainer = make_trainer(
        dropout=0.0, scheduler=lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=0)
    )
    seen = []
    original = trainer.scheduler.step
    monkeypatch.setattr(trainer.scheduler, "step", lambda m: (seen.append(m), original(m)))
    h = trainer.fit(train, val, epochs=2)
    assert seen == h.val_loss


def test_scheduler_of_another_optimizer_is_rejected():
    model = LeNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    other = torch.optim.SGD(LeNet().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="bound to another optimizer"):
        Trainer(model, nn.CrossEntropyLoss(), opt, lr_scheduler.StepLR(other, 1))
    with pytest.raises(ValueError, match="not the model's"):
        Trainer(LeNet(), nn.CrossEntropyLoss(), opt)


def test_bad_batches_are_rejected_before_training():
    trainer = make_trainer()
    before = [p.clone() for p in trainer.model.parameters()]
    bad = [(torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64))]
    with pytest.raises(TypeError, match=r"float \[B, C, H, W\]"):
        trainer.fit(bad, epochs=1)
    bad = [(torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.int32))]
    with pytest.raises(TypeError, match="int64"):
        trainer.fit(bad, epochs=1)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))


def doubling_trainer(**kwargs):
    """Loss w**2 of one weight w (input 1, target 0) under SGD with lr 1.5.

    The step w <- w - 1.5 * 2w = -2w is exact in float32, so the t-th optimizer step
    (0-based) sees the loss 4**t exactly: 4**63 = 2**126 is still finite and 4**64 = 2**128
    overflows float32 to inf.
    """
    model = nn.Sequential(nn.Flatten(), nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        model[1].weight.fill_(1.0)
    opt = torch.optim.SGD(model.parameters(), lr=1.5)

    def loss_fn(out, y):
        return ((out.squeeze(1) - y) ** 2).mean()

    trainer = Trainer(model, loss_fn, opt, device="cpu", progress=False, **kwargs)
    batches = [(torch.ones(1, 1, 1, 1), torch.zeros(1, dtype=torch.int64))] * 5
    return trainer, batches


@pytest.mark.parametrize(
    ("threshold", "t", "loss", "limit", "message"),
    [
        # step 64 (0-based) = the 65th mini-batch = epoch 13, mini-batch 5 of five
        (None, 64, math.inf, None, "loss is inf at epoch 13, mini-batch 5 (learning rate 1.5)."),
        # 4**5 = 1024 is the first loss above 1000 x the first loss: epoch 2, mini-batch 1
        (
            1000,
            5,
            1024.0,
            1000.0,
            "loss is 1024 (above the limit 1000) at epoch 2, mini-batch 1 (learning rate 1.5).",
        ),
    ],
)
def test_divergence_names_epoch_and_step(threshold, t, loss, limit, message):
    trainer, batches = doubling_trainer(diverge_threshold=threshold)
    with pytest.raises(TrainingDivergedError) as info:
        trainer.fit(batches, epochs=20)
    err = info.value
    assert (err.epoch, err.step) == (t // 5 + 1, t % 5 + 1)
    assert (err.loss, err.lr, err.limit) == (loss, 1.5, limit)
    assert str(err) == (f"training diverged: {message} Lower the learning rate or add a warm-up.")
    # Every mini-batch before it trained and was recorded, with its closed-form loss.
    assert trainer.history.batch_loss == [4.0**k for k in range(t)]
    assert trainer.step == t and trainer.epoch == t // 5


def test_checkpoint_resume_equals_uninterrupted(tiny_loaders, tmp_path):
    train, val = tiny_loaders

    def sched(o):
        return lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=4 * len(train))

    full = make_trainer(seed=5, scheduler=sched).fit(train, val, epochs=4)
    first = make_trainer(seed=5, scheduler=sched)
    first.fit(train, val, epochs=2)
    first.save_checkpoint(tmp_path / "ckpt.pt")
    torch.manual_seed(1234)  # disturb the global RNG: the checkpoint must restore it
    second = make_trainer(seed=99, scheduler=sched)
    second.load_checkpoint(tmp_path / "ckpt.pt")
    resumed = second.fit(train, val, epochs=2)
    assert resumed.same_as(full)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary left


def test_evaluate_matches_manual(tiny_loaders):
    _, val = tiny_loaders
    trainer = make_trainer(dropout=0.0)
    loss, acc = trainer.evaluate(val)
    x = torch.cat([b for b, _ in val])
    y = torch.cat([t for _, t in val])
    with torch.no_grad():
        logits = trainer.model(x)
    assert loss == pytest.approx(float(nn.functional.cross_entropy(logits, y)), rel=1e-5)
    assert acc == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    loss_p, acc_p, predicted = trainer.evaluate_predictions(val)
    assert (loss_p, acc_p) == (loss, acc)
    assert predicted.dtype == np.uint8
    np.testing.assert_array_equal(predicted, logits.argmax(1).numpy())


def test_divergence_error_survives_pickling():
    import pickle

    err = TrainingDivergedError(2, 17, 1e28, 0.5, 230.0)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is TrainingDivergedError and str(back) == str(err)
    assert (back.epoch, back.step, back.loss, back.lr, back.limit) == (2, 17, 1e28, 0.5, 230.0)
