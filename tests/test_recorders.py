"""Recorders: gradients, optimizer state, snapshots and Adam's layer quantiles, against
torch's own optimizers and numpy's quantiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_training import make_trainer  # pytest puts tests/ on sys.path
from torch import nn

from fashion_optim import optimizers
from fashion_optim.models import LeNet
from fashion_optim.recorders import (
    AdamQuantileRecorder,
    GradientRecorder,
    OptimizerStateRecorder,
    ParameterRecorder,
)
from fashion_optim.training import Recorder, Trainer


def test_recorders_capture_gradients_state_and_snapshots(tiny_loaders):
    train, val = tiny_loaders
    probes = {"features.0.weight": [0, 7, 11], "classifier.7.bias": None}
    grads = GradientRecorder(probes)
    state = OptimizerStateRecorder(probes, keys=["momentum_buffer"])
    snaps = ParameterRecorder(every=4)
    trainer = make_trainer(dropout=0.0, recorders=[grads, state, snaps])
    trainer.fit(train, val, epochs=2)
    steps = 2 * len(train)
    g = grads.result()
    assert g["grad/features.0.weight"].shape == (steps, 3)
    assert g["grad/classifier.7.bias"].shape == (steps, 10)
    assert g["grad_norm/features.0.weight"].shape == (steps,)
    s = state.result()
    buf = s["state/momentum_buffer/features.0.weight"]
    # the recorded buffer is the optimizer's own state after the last step ...
    param = dict(trainer.model.named_parameters())["features.0.weight"]
    final = trainer.optimizer.state[param]["momentum_buffer"].reshape(-1)[[0, 7, 11]]
    np.testing.assert_array_equal(buf[-1], final.numpy())
    # ... and follows buf_t = 0.9 buf_{t-1} + g_t from the recorded gradients
    gr = g["grad/features.0.weight"]
    np.testing.assert_allclose(buf[1:], 0.9 * buf[:-1] + gr[1:], rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(buf[0], gr[0])
    p = snaps.result()
    assert p["params"].shape == (len(p["param_steps"]), 61706)
    assert p["param_steps"][0] == 0 and p["param_steps"][-1] == steps
    flat = torch.cat([q.detach().reshape(-1) for q in trainer.model.parameters()])
    np.testing.assert_array_equal(p["params"][-1], flat.numpy())


def test_recorder_with_unknown_parameter(tiny_loaders):
    train, _ = tiny_loaders
    trainer = make_trainer(recorders=[GradientRecorder({"conv9.weight": [0]})])
    with pytest.raises(KeyError, match="valid names"):
        trainer.fit(train, epochs=1)


# --------------------------------------------------------------------------- Adam's layer quantiles

LEVELS = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


class _AdamByHand(Recorder):
    """After each step: numpy's quantiles of |m_hat / (sqrt(v_hat) + eps)| and of
    lr / (sqrt(v_hat) + eps), in float64 from the optimizer's own state, and the step
    each weight took."""

    def __init__(self, correct=True):
        self.correct, self.adapted, self.rate, self.moved = correct, [], [], []

    def after_backward(self, trainer):
        self._before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}

    def after_step(self, trainer):
        adapted, rate, moved = {}, {}, {}
        for group in trainer.optimizer.param_groups:
            (b1, b2), eps, lr = group["betas"], group["eps"], group["lr"]
            for p in group["params"]:
                name = next(n for n, q in trainer.model.named_parameters() if q is p)
                state = trainer.optimizer.state[p]
                t = float(state["step"])
                m = state["exp_avg"].double().numpy().ravel()
                v = state["exp_avg_sq"].double().numpy().ravel()
                if self.correct:
                    m, v = m / (1 - b1**t), v / (1 - b2**t)
                adapted[name] = np.quantile(np.abs(m) / (np.sqrt(v) + eps), LEVELS)
                rate[name] = np.quantile(lr / (np.sqrt(v) + eps), LEVELS)
                step = (p.detach() - self._before[name]).double().numpy().ravel()
                moved[name] = np.quantile(np.abs(step) / lr, LEVELS)
        self.adapted.append(adapted)
        self.rate.append(rate)
        self.moved.append(moved)


def _adam_trainer(factory, recorders, **kwargs):
    torch.manual_seed(0)
    model = LeNet()
    groups = [  # two groups, two rates: each weight's rate is read from its own group
        {"params": model.features.parameters(), "lr": 3e-3},
        {"params": model.classifier.parameters(), "lr": 2e-2},
    ]
    opt = factory(groups, betas=(0.8, 0.99), eps=1e-6, **kwargs)
    return Trainer(model, nn.CrossEntropyLoss(), opt, device="cpu", recorders=recorders)


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [
        (torch.optim.Adam, {}),
        (optimizers.Adam, {}),
        (optimizers.Adam, {"bias_correction": False}),
    ],
    ids=["torch", "from-scratch", "from-scratch-uncorrected"],
)
def test_adam_quantiles_are_numpys_quantiles_of_the_optimizers_own_state(
    tiny_loaders, factory, kwargs
):
    train, _ = tiny_loaders
    every = 4
    rec = AdamQuantileRecorder(LEVELS, every=every)
    hand = _AdamByHand(correct=kwargs.get("bias_correction", True))
    trainer = _adam_trainer(factory, [rec, hand], **kwargs)
    trainer.fit(train, epochs=2)
    out = rec.result()
    n = 2 * len(train)  # 12 steps: recorded at 4, 8 and 12 (the last)
    expected_steps = sorted({*range(every, n + 1, every), n})
    np.testing.assert_array_equal(out["adam_q/steps"], expected_steps)
    np.testing.assert_array_equal(out["adam_q/levels"], LEVELS)
    names = [name for name, _ in trainer.model.named_parameters()]
    assert {k for k in out if k.startswith("adam_q/adapted/")} == {
        f"adam_q/adapted/{name}" for name in names
    }
    for row, step in enumerate(expected_steps):
        for name in names:
            got_a, got_r = out[f"adam_q/adapted/{name}"][row], out[f"adam_q/rate/{name}"][row]
            np.testing.assert_allclose(got_a, hand.adapted[step - 1][name], rtol=2e-5)
            np.testing.assert_allclose(got_r, hand.rate[step - 1][name], rtol=2e-5)
            # the adapted step is the step each weight took, over its group's rate
            np.testing.assert_allclose(got_a, hand.moved[step - 1][name], rtol=1e-3, atol=1e-4)


def test_adam_quantiles_of_amsgrad_use_the_running_maximum(tiny_loaders):
    train, _ = tiny_loaders
    rec = AdamQuantileRecorder((0.5,), names=["features.0.weight"])
    trainer = _adam_trainer(torch.optim.Adam, [rec], amsgrad=True)
    trainer.fit(train, epochs=1)
    p = trainer.model.features[0].weight
    state, t = trainer.optimizer.state[p], len(train)
    v_max = state["max_exp_avg_sq"].double().numpy().ravel() / (1 - 0.99**t)
    out = rec.result()
    assert list(out) == [
        "adam_q/steps",
        "adam_q/levels",
        "adam_q/adapted/features.0.weight",
        "adam_q/rate/features.0.weight",
    ]
    expected = np.quantile(3e-3 / (np.sqrt(v_max) + 1e-6), 0.5)
    np.testing.assert_allclose(out["adam_q/rate/features.0.weight"][-1, 0], expected, rtol=2e-5)


@pytest.mark.parametrize(
    ("levels", "every", "message"),
    [
        ((5, 50, 95), 1, r"in \[0, 1\] \(0.5 is the median, not 50\)"),
        ((-0.1, 0.5), 1, r"in \[0, 1\]"),
        ((0.5, 0.25), 1, "strictly increasing"),
        ((0.5, 0.5), 1, "strictly increasing"),
        ((), 1, "non-empty"),
        ("0.5", 1, "non-empty"),
        ((0.5, "0.9"), 1, "must be numbers"),
        ((0.5,), 0, "every must be an integer >= 1"),
    ],
)
def test_adam_quantile_recorder_rejects_bad_settings(levels, every, message):
    with pytest.raises(ValueError, match=message):
        AdamQuantileRecorder(levels, every=every)


def test_adam_quantile_recorder_needs_adam(tiny_loaders):
    train, _ = tiny_loaders
    trainer = make_trainer(recorders=[AdamQuantileRecorder()])
    with pytest.raises(TypeError, match=r"SGD's parameter groups have no \['betas', 'eps'\]"):
        trainer.fit(train, epochs=1)
