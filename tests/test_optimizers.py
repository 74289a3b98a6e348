"""The from-scratch optimizers against torch.optim on a small real network, both against
the momentum rules written out by hand, and torch's Adam against the EWMAs of
:mod:`fashion_optim.ewma`."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from fashion_optim import ewma, toys
from fashion_optim.optimizers import SGD, Adam

N_STEPS = 120
RTOL, ATOL = 1e-6, 1e-12  # ATOL only for entries that are (nearly) zero


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: intra-op threads only add contention (10-100x slower on a
    # busy 2-core machine).
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def make_net(dtype=torch.float64):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, kernel_size=3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 6 * 6, 5),
    ).to(dtype)


def make_batches(dtype=torch.float64, n_batches=6, batch_size=16):
    g = torch.Generator().manual_seed(1)
    return [
        (
            torch.randn(batch_size, 1, 8, 8, generator=g, dtype=dtype),
            torch.randint(0, 5, (batch_size,), generator=g),
        )
        for _ in range(n_batches)
    ]


def loss_fn(net, batch):
    x, y = batch
    return nn.functional.cross_entropy(net(x), y)


def assert_states_match(ours, theirs, ours_net, their_net):
    for p, q in zip(ours_net.parameters(), their_net.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=RTOL, atol=ATOL)
        state, their_state = ours.state[p], theirs.state[q]
        assert state.keys() == their_state.keys()
        for key, value in state.items():
            torch.testing.assert_close(value, their_state[key], rtol=RTOL, atol=ATOL)


def train_side_by_side(ours_cls, theirs_cls, kwargs, their_kwargs=None, dtype=torch.float64):
    """Train two copies of one network, one per optimizer, on the same batches."""
    ours_net = make_net(dtype)
    their_net = copy.deepcopy(ours_net)
    ours = ours_cls(ours_net.parameters(), **kwargs)
    theirs = theirs_cls(their_net.parameters(), **(their_kwargs or kwargs))
    batches = make_batches(dtype)
    start = [p.detach().clone() for p in ours_net.parameters()]
    for step in range(N_STEPS):
        for net, opt in [(ours_net, ours), (their_net, theirs)]:
            opt.zero_grad()
            loss_fn(net, batches[step % len(batches)]).backward()
            opt.step()
        if step % 10 == 0 or step == N_STEPS - 1:
            assert_states_match(ours, theirs, ours_net, their_net)
    # The comparison means something only if the parameters actually moved.
    moved = max(
        (p - s).abs().max().item() for p, s in zip(ours_net.parameters(), start, strict=True)
    )
    assert moved > 1e-3
    return ours, theirs, ours_net


SGD_VARIANTS = {
    "plain": {"lr": 0.1},
    "momentum": {"lr": 0.05, "momentum": 0.9},
    "momentum+dampening": {"lr": 0.05, "momentum": 0.9, "dampening": 0.5},
    "nesterov": {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    "maximize+momentum": {"lr": 0.002, "momentum": 0.5, "maximize": True},
}


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("variant", SGD_VARIANTS)
def test_sgd_matches_torch(variant, weight_decay):
    kwargs = {**SGD_VARIANTS[variant], "weight_decay": weight_decay}
    ours, _, net = train_side_by_side(SGD, torch.optim.SGD, kwargs)
    has_buffer = kwargs.get("momentum", 0) != 0
    assert all(("momentum_buffer" in ours.state[p]) == has_buffer for p in net.parameters())


ADAM_VARIANTS = {
    "default": {"lr": 1e-2},
    "weight_decay": {"lr": 1e-2, "weight_decay": 0.05},
    "amsgrad": {"lr": 1e-2, "amsgrad": True},
    "amsgrad+weight_decay": {"lr": 1e-2, "amsgrad": True, "weight_decay": 0.05},
    "betas+eps": {"lr": 1e-2, "betas": (0.5, 0.9), "eps": 1e-3},
}


@pytest.mark.parametrize("variant", ADAM_VARIANTS)
def test_adam_matches_torch(variant):
    ours, _, net = train_side_by_side(Adam, torch.optim.Adam, ADAM_VARIANTS[variant])
    assert all(ours.state[p]["step"].item() == N_STEPS for p in net.parameters())


def test_float32_matches_torch():
    train_side_by_side(SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}, dtype=torch.float32)
    train_side_by_side(Adam, torch.optim.Adam, {"lr": 1e-2}, dtype=torch.float32)


def test_param_groups_keep_their_own_hyperparameters():
    def groups(net):
        conv, linear = net[0], net[3]
        return [
            {"params": conv.parameters(), "lr": 0.1, "momentum": 0.9, "nesterov": True},
            {"params": linear.parameters()},
        ]

    ours_net = make_net()
    their_net = copy.deepcopy(ours_net)
    ours = SGD(groups(ours_net), lr=0.02, momentum=0.5, dampening=0.0)
    theirs = torch.optim.SGD(groups(their_net), lr=0.02, momentum=0.5, dampening=0.0)
    for batch in make_batches():
        for net, opt in [(ours_net, ours), (their_net, theirs)]:
            opt.zero_grad()
            loss_fn(net, batch).backward()
            opt.step()
    assert_states_match(ours, theirs, ours_net, their_net)


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_closure_loss_is_returned_and_missing_grads_skipped(cls):
    net = make_net()
    unused = nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = cls([*net.parameters(), unused], lr=0.1)
    batch = make_batches()[0]

    def closure():
        opt.zero_grad()
        loss = loss_fn(net, batch)
        loss.backward()
        return loss

    loss = opt.step(closure)
    torch.testing.assert_close(loss, loss_fn(copy.deepcopy(make_net()), batch))
    assert opt.step() is None
    torch.testing.assert_close(unused, torch.ones(3, dtype=torch.float64))
    assert unused not in opt.state


@pytest.mark.parametrize(
    ("ours_cls", "theirs_cls", "kwargs"),
    [
        (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
        (Adam, torch.optim.Adam, {"lr": 1e-2, "amsgrad": True}),
    ],
)
@pytest.mark.parametrize("direction", ["torch->ours", "ours->torch"])
def test_state_dicts_are_interchangeable(ours_cls, theirs_cls, kwargs, direction):
    """Train 5 steps with one class, load its state into the other, train 5 more."""
    first_cls, second_cls = (
        (theirs_cls, ours_cls) if direction == "torch->ours" else (ours_cls, theirs_cls)
    )
    batches = make_batches()
    net = make_net()
    first = first_cls(net.parameters(), **kwargs)
    reference_net = copy.deepcopy(net)
    reference = first_cls(reference_net.parameters(), **kwargs)
    for batch in batches[:5]:
        for n, opt in [(net, first), (reference_net, reference)]:
            opt.zero_grad()
            loss_fn(n, batch).backward()
            opt.step()
    second = second_cls(net.parameters(), **kwargs)
    second.load_state_dict(first.state_dict())
    for batch in batches[5:] + batches[:4]:
        for n, opt in [(net, second), (reference_net, reference)]:
            opt.zero_grad()
            loss_fn(n, batch).backward()
            opt.step()
    assert_states_match(second, reference, net, reference_net)


def test_adam_without_bias_correction_differs_from_torch():
    ours_net = make_net()
    their_net = copy.deepcopy(ours_net)
    ours = Adam(ours_net.parameters(), lr=1e-2, bias_correction=False)
    theirs = torch.optim.Adam(their_net.parameters(), lr=1e-2)
    for step, batch in enumerate(make_batches()[:3]):
        for net, opt in [(ours_net, ours), (their_net, theirs)]:
            opt.zero_grad()
            loss_fn(net, batch).backward()
            opt.step()
        for p, q in zip(ours_net.parameters(), their_net.parameters(), strict=True):
            assert not torch.allclose(p, q, rtol=1e-3, atol=0)
            if step == 0:  # same gradient, same moments: only their use differs
                for key in ["exp_avg", "exp_avg_sq"]:
                    torch.testing.assert_close(ours.state[p][key], theirs.state[q][key])


def test_adam_without_bias_correction_first_step_by_hand():
    lr, beta1, beta2, eps = 1e-2, 0.8, 0.95, 1e-3
    net = make_net()
    start = [p.detach().clone() for p in net.parameters()]
    opt = Adam(net.parameters(), lr=lr, betas=(beta1, beta2), eps=eps, bias_correction=False)
    loss_fn(net, make_batches()[0]).backward()
    grads = [p.grad.clone() for p in net.parameters()]
    opt.step()
    for p, p0, g in zip(net.parameters(), start, grads, strict=True):
        m, v = (1 - beta1) * g, (1 - beta2) * g**2
        torch.testing.assert_close(p, p0 - lr * m / (v.sqrt() + eps), rtol=1e-12, atol=1e-15)
        # ... which is, for |g| >> eps, a step of lr (1 - beta1) / sqrt(1 - beta2) per entry.
        big = g.abs() > 1e3 * eps
        expected = lr * (1 - beta1) / math.sqrt(1 - beta2)
        torch.testing.assert_close(
            (p0 - p).abs()[big], torch.full_like(g[big], expected), rtol=2e-3, atol=0
        )


def test_adam_first_step_is_lr_times_sign():
    w = nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    opt = Adam([w], lr=0.1, eps=0.0)
    (torch.tensor([50.0, -0.01, 3.0], dtype=torch.float64) * w).sum().backward()
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor([0.9, -1.9, 2.9], dtype=torch.float64))


def test_sgd_momentum_first_two_steps_by_hand():
    # The first buffer is the gradient itself, not (1 - dampening) times it.
    w = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = SGD([w], lr=0.1, momentum=0.9, dampening=0.5)
    for _ in range(2):
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
    # step 1: g = 2, b = 2, w = 0.8; step 2: g = 1.6, b = 1.8 + 0.8 = 2.6, w = 0.54
    torch.testing.assert_close(opt.state[w]["momentum_buffer"].item(), 2.6)
    torch.testing.assert_close(w.item(), 0.54)


@pytest.mark.parametrize("cls", [SGD, torch.optim.SGD], ids=["ours", "torch"])
@pytest.mark.parametrize("dampening", [0.0, 0.9])
def test_momentum_buffer_is_a_scaled_ewma_of_the_gradients(cls, dampening):
    # Unrolled, b_t = sum_i mu^(t-i) g_i = m_t / (1 - mu), m the EWMA started from zero.
    # The first buffer is g_1 whatever the dampening, so dampening = mu gives
    # b_t = m_t + mu^t g_1: an EWMA biased towards the first gradient, not towards zero.
    mu = 0.9
    grads = np.random.default_rng(0).normal(size=60)
    w = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = cls([w], lr=0.1, momentum=mu, dampening=dampening)
    buffers = []
    for g in grads:
        w.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        buffers.append(opt.state[w]["momentum_buffer"].item())
    m = ewma.ewma(grads, mu)
    t = np.arange(1, len(grads) + 1)
    expected = m / (1 - mu) if dampening == 0 else m + mu**t * grads[0]
    np.testing.assert_allclose(buffers, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [SGD, torch.optim.SGD], ids=["ours", "torch"])
@pytest.mark.parametrize("nesterov", [False, True], ids=["heavy_ball", "nesterov"])
@pytest.mark.parametrize(
    ("surface", "lr", "steps"), [("quadratic", 0.01, 100), ("rosenbrock", 1e-3, 300)]
)
def test_momentum_paths_follow_the_rule_written_out(cls, nesterov, surface, lr, steps):
    # Chapter 2's rule: b_t = mu b_(t-1) + g_t; the step is eta b_t (heavy ball) or
    # eta (g_t + mu b_t) (Nesterov, the look-ahead in torch's variables).
    mu = 0.9
    surf = toys.SURFACES[surface]
    path = toys.optimize_path(surf, lambda p: cls(p, lr=lr, momentum=mu, nesterov=nesterov), steps)
    theta = torch.tensor(surf.start, dtype=torch.float64)
    buf = torch.zeros(2, dtype=torch.float64)
    manual = [theta.numpy().copy()]
    for _ in range(steps):
        point = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(surf.fn(point), point)
        buf = mu * buf + g
        theta = theta - lr * ((g + mu * buf) if nesterov else buf)
        manual.append(theta.numpy().copy())
    assert np.isfinite(path).all() and np.abs(path[-1] - path[0]).max() > 0.1
    np.testing.assert_allclose(path, np.array(manual), rtol=1e-9, atol=1e-12)


def params():
    return [nn.Parameter(torch.zeros(2))]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -0.1}, r"lr must be in \[0, inf\), got -0\.1"),
        ({"lr": float("nan")}, r"lr must be in \[0, inf\), got nan"),
        ({"lr": 0.1, "momentum": -0.9}, r"momentum must be in \[0, inf\), got -0\.9"),
        ({"lr": 0.1, "dampening": 1.5}, r"dampening must be in \[0, 1\], got 1\.5"),
        ({"lr": 0.1, "weight_decay": -1e-4}, r"weight_decay must be in \[0, inf\), got -0\.0001"),
        (
            {"lr": 0.1, "nesterov": True},
            r"nesterov=True needs momentum > 0 and dampening = 0, got momentum=0\.0 and",
        ),
        (
            {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
            r"got momentum=0\.9 and dampening=0\.1",
        ),
    ],
)
def test_sgd_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD(params(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1e-3}, r"lr must be in \[0, inf\), got -0\.001"),
        ({"betas": (1.0, 0.999)}, r"betas\[0\] must be in \[0, 1\), got 1\.0"),
        ({"betas": (0.9, -0.1)}, r"betas\[1\] must be in \[0, 1\), got -0\.1"),
        ({"betas": (0.9,)}, r"betas must be a pair \(beta1, beta2\), got \(0\.9,\)"),
        ({"eps": -1e-8}, r"eps must be in \[0, inf\), got -1e-08"),
        ({"weight_decay": -0.1}, r"weight_decay must be in \[0, inf\), got -0\.1"),
    ],
)
def test_adam_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Adam(params(), **kwargs)


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_sparse_gradients_rejected(cls):
    emb = nn.Embedding(4, 2, sparse=True)
    opt = cls(emb.parameters(), lr=0.1)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        opt.step()


def test_torch_adam_moments_are_the_ewmas_of_its_gradients():
    """torch's exp_avg and exp_avg_sq are ewma.ewma of g and g**2, and each step is
    -lr * m_hat / (sqrt(v_hat) + eps) with ewma.bias_corrected: the equations of
    gallery chapter 3, which rebuilds Adam's recorded state from recorded gradients."""
    lr, (beta1, beta2), eps = 1e-2, (0.8, 0.95), 1e-6
    net = make_net()
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(beta1, beta2), eps=eps)
    grads, moves = [], []
    for batch in make_batches() * 4:
        before = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
        opt.zero_grad()
        loss_fn(net, batch).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy())
        opt.step()
        after = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
        moves.append((after - before).numpy())
    g = np.stack(grads)
    m_hat, v_hat = ewma.bias_corrected(g, beta1), ewma.bias_corrected(g**2, beta2)
    np.testing.assert_allclose(np.stack(moves), -lr * m_hat / (np.sqrt(v_hat) + eps), atol=1e-12)
    state = [opt.state[p] for p in net.parameters()]
    for key, rebuilt in (("exp_avg", ewma.ewma(g, beta1)), ("exp_avg_sq", ewma.ewma(g**2, beta2))):
        recorded = torch.cat([s[key].reshape(-1) for s in state]).numpy()
        np.testing.assert_allclose(recorded, rebuilt[-1], rtol=1e-12, atol=1e-15)


def test_torch_adam_first_step_is_lr_times_sign():
    w = nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    opt = torch.optim.Adam([w], lr=0.1, eps=0.0)
    (torch.tensor([50.0, -0.01, 3.0], dtype=torch.float64) * w).sum().backward()
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor([0.9, -1.9, 2.9], dtype=torch.float64))
