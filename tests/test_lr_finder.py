"""Tests for fashion_optim.lr_finder: the learning-rate range test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from fashion_optim.batches import ArrayLoader
from fashion_optim.lr_finder import RangeTestResult, range_test

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
