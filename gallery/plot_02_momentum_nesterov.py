# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
==========================
SGD, momentum and Nesterov
==========================

We train the LeNet-like CNN on Fashion-MNIST with plain SGD, with heavy-ball momentum
and with Nesterov's momentum, at the same learning rate and from the same initial
weights, and look at what the momentum buffer changes: how fast the loss falls, what
the buffer averages, whether momentum is just a larger learning rate, and which paths
the three take, on toy surfaces and on the network's own loss surface.

With :math:`g_t` the mini-batch gradient at :math:`\theta_{t-1}`, learning rate
:math:`\eta` and momentum :math:`\mu`, :class:`torch.optim.SGD` computes (buffer
:math:`b_0 = 0`, no dampening):

.. math::

    b_t = \mu\, b_{t-1} + g_t, \qquad
    \theta_t = \begin{cases}
        \theta_{t-1} - \eta\, b_t & \text{heavy ball} \\
        \theta_{t-1} - \eta\, (g_t + \mu\, b_t) & \text{Nesterov}
    \end{cases}

Plain SGD is :math:`\mu = 0`: :math:`\theta_t = \theta_{t-1} - \eta\, g_t`.
"""

# %%
# Setup
# -----
# Every run goes through :func:`fashion_optim.experiments.run_specs`, which trains the
# runs the cache lacks several at a time (one CPU thread each, so the numbers do not
# depend on the machine) and caches every result. The seed fixes the initial weights
# and the order of the mini-batches; the runner seeds the initialisation with it, so
# the three optimizers start from the same weights. The single-seed sections use the
# profile's first seed.

# sphinx_gallery_thumbnail_number = 5
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D

from fashion_optim import ewma, experiments, landscape, plotting
from fashion_optim.experiments import PerProfile
from fashion_optim.models import make_model
from fashion_optim.training import resolve_device

profile = experiments.current_profile()
SEED = profile.seeds[0]  # the single-seed sections; run_specs uses all of profile.seeds
torch.manual_seed(SEED)
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
THREE = ("sgd", "momentum", "nesterov")
FOUR = (*THREE, "sgd_effective")
MU = experiments.NAMED["momentum"].optimizer_kwargs["momentum"]
print(f"profile {profile.name!r} ({profile.description})")
print(f"seeds {list(profile.seeds)}")
print(f"single-seed sections: seed {SEED}, device {device}")


# %%
# Four configurations
# -------------------
# The note's shared runs: plain SGD, heavy-ball momentum and Nesterov share the learning
# rate :math:`\eta`. In the heavy-ball form the buffer :math:`b_t` is the step
# direction. Nesterov's method :cite:p:`nesterov1983method`, as written by
# :cite:t:`sutskever2013importance` with a velocity :math:`v`, takes the gradient at the
# look-ahead point, where the velocity would carry the weights anyway:
#
# .. math::
#
#     v_t = \mu\, v_{t-1} - \eta\, \nabla L(\theta_{t-1} + \mu\, v_{t-1}), \qquad
#     \theta_t = \theta_{t-1} + v_t.
#
# Torch keeps the look-ahead point :math:`\theta_t + \mu v_t` as its parameters (and
# :math:`b_t = -v_t/\eta`), which turns this rule into the second line of the equation
# above: the fresh gradient enters the step twice, once in the buffer and once on its
# own. The fourth run is plain SGD at the larger learning rate :math:`\eta/(1-\mu)`, where
# a buffer fed the same gradient for ever would settle: :math:`b = g/(1-\mu)`.

print(f"{'run':<14}{'spec name':<29}{'lr':>7}{'momentum':>10}{'nesterov':>10}{'η/(1-μ)':>9}")
for key in FOUR:
    cfg = experiments.NAMED[key].resolve(profile)
    mu = cfg["optimizer_kwargs"].get("momentum", 0.0)
    nesterov = cfg["optimizer_kwargs"].get("nesterov", False)
    print(
        f"{key:<14}{experiments.NAMED[key].name:<29}{cfg['lr']:>7}{mu:>10}{nesterov!s:>10}"
        f"{cfg['lr'] / (1 - mu):>9.3g}"
    )

# %%
# Training
# --------
# Each configuration trains once per seed of the profile (or comes from the cache, when
# another chapter asked first). The table gives the data size, epochs and steps. The
# three shorter runs that keep weight snapshots, for the loss-surface section below,
# train in the same batch, so that no core waits for the last long run.

SNAPSHOT_EVERY = PerProfile(full=20, quick=10)(profile)
SNAPSHOT_EPOCHS = PerProfile(full=3, quick=2)  # a spec field: the spec resolves it
snap_specs = {
    key: experiments.NAMED[key].replace(
        name=f"{experiments.NAMED[key].name} (snapshots)",
        record=experiments.Record(snapshot_every=SNAPSHOT_EVERY),
        epochs=SNAPSHOT_EPOCHS,
    )
    for key in THREE
}
shared = {key: experiments.NAMED[key] for key in FOUR}
jobs = [(spec, seed) for spec in shared.values() for seed in profile.seeds]
experiments.run_many(jobs + [(spec, SEED) for spec in snap_specs.values()])
runs = experiments.run_specs(shared)  # from the cache now
first = runs["sgd"].results[0]
steps_per_epoch = int(first.meta["steps_per_epoch"])
epochs = first.history.epochs
n_seeds = len(runs["sgd"].results)
print(f"{'training images':<20}{first.meta['train_size']:,}")
print(f"{'validation images':<20}{first.meta['val_size']:,}")
print(f"{'batch size':<20}{first.config['batch_size']}")
print(f"{'epochs':<20}{epochs} ({steps_per_epoch} steps each, {epochs * steps_per_epoch:,} in all)")
print(f"{'seeds':<20}{runs['sgd'].seeds}")
for key in FOUR:
    times = [r.meta["wall_time"] for r in runs[key].results]
    fresh = sum(not r.from_cache for r in runs[key].results)
    print(f"{key:<20}{np.mean(times):.1f} s per run, {fresh} of {n_seeds} trained now")

# sphinx_gallery_start_ignore
# Same seed, same initial weights and the same first mini-batch: the very first loss
# must be identical for every optimizer.
for i in range(n_seeds):
    first_losses = {key: runs[key].results[i].history.batch_loss[0] for key in FOUR}
    if len(set(first_losses.values())) != 1:
        raise AssertionError(f"runs of seed index {i} do not start alike: {first_losses}")
# sphinx_gallery_end_ignore

# %%
# Training loss
# -------------
# Left, the loss of every mini-batch, smoothed with a bias-corrected EWMA
# (:func:`fashion_optim.plotting.smooth_curve`) and averaged over the seeds; right, the
# mean training loss of each epoch with a ±1 standard-deviation band over the seeds.
# Both momentum methods drop much faster than plain SGD at the same learning rate, and
# stay close to each other.

SMOOTH_BETA = 0.95
steps = np.arange(1, epochs * steps_per_epoch + 1)
epoch_axis = np.arange(1, epochs + 1)
fig, (ax_step, ax_epoch) = plt.subplots(1, 2, figsize=(9.0, 4.0), layout="constrained")
for key in THREE:
    smoothed = plotting.smooth_curve(runs[key].stack("batch_loss"), SMOOTH_BETA)
    ax_step.plot(steps, smoothed.mean(axis=0), color=plotting.color_for(key), label=key)
    plotting.band(ax_epoch, epoch_axis, runs[key].stack("train_loss"), label=key, marker="o")
ax_step.set(yscale="log", ylabel="training loss per mini-batch (nat)")
note = f"EWMA β = {SMOOTH_BETA},\nmean of {n_seeds} seeds"
ax_step.text(0.03, 0.04, note, transform=ax_step.transAxes, va="bottom")
plotting.label_step_axis(ax_step, steps_per_epoch)
ax_epoch.set(xlabel="epoch", ylabel="mean training loss of the epoch (nat)", yscale="log")
note = f"mean ± std over\n{n_seeds} seeds"
ax_epoch.text(0.03, 0.04, note, transform=ax_epoch.transAxes, va="bottom")
for ax in (ax_step, ax_epoch):
    plotting.plain_log_ticks(ax)
ax_epoch.set_xticks(epoch_axis)
handles = [Line2D([], [], color=plotting.color_for(k), label=runs[k].spec.name) for k in THREE]
fig.legend(handles=handles, loc="outside lower center", ncols=3)
plt.show()

# sphinx_gallery_start_ignore
# The claims above, on the last epoch's mean training loss (mean over seeds).
final = {key: runs[key].stack("train_loss")[:, -1].mean() for key in THREE}
gap = final["sgd"] - max(final["momentum"], final["nesterov"])
if not gap > 0:
    raise AssertionError(f"momentum and Nesterov were expected to beat plain SGD: {final}")
if not abs(final["momentum"] - final["nesterov"]) < 0.25 * gap:
    raise AssertionError(f"momentum and Nesterov were expected to stay close: {final}")
# sphinx_gallery_end_ignore

# %%
# Validation loss and accuracy
# ----------------------------
# After every epoch the model is evaluated on the held-out validation images. The bands
# are ±1 standard deviation over the seeds.

fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9.0, 4.0), layout="constrained")
for key in THREE:
    plotting.band(ax_loss, epoch_axis, runs[key].stack("val_loss"), label=key, marker="o")
    plotting.band(ax_acc, epoch_axis, runs[key].stack("val_acc"), label=key, marker="o")
ax_loss.set(xlabel="epoch", ylabel="validation loss (nat)", title="Validation loss")
ax_acc.set(xlabel="epoch", ylabel="validation accuracy (fraction)", title="Validation accuracy")
for ax in (ax_loss, ax_acc):
    ax.set_xticks(epoch_axis)
fig.legend(handles=handles, loc="outside lower center", ncols=3)
plt.show()

# %%
# On the held-out test set, after the last epoch (mean ± std over the seeds; the
# fourth row is the run of a later section):

print(f"{'run':<30}{'test accuracy':>18}{'test loss (nat)':>20}")
for key in FOUR:
    (acc, acc_sd), (loss, loss_sd) = runs[key].test_acc, runs[key].test_loss
    name = runs[key].spec.name
    print(f"{name:<30}{acc:>9.4f} ± {acc_sd:.4f}{loss:>11.4f} ± {loss_sd:.4f}")

# %%
# What the buffer averages
# ------------------------
# Unrolled, torch's buffer is :math:`b_t = \sum_{i=1}^{t} \mu^{t-i} g_i`. The EWMA of
# the previous chapter, started from zero, is
# :math:`m_t = (1-\mu) \sum_{i=1}^{t} \mu^{t-i} g_i`, so
#
# .. math::
#
#     (1 - \mu)\, b_t = m_t \quad \text{exactly, for every } t.
#
# Torch sets the buffer to :math:`g_1` at the first step instead of updating a zero
# buffer, but with no dampening that is the same number: :math:`\mu \cdot 0 + g_1`. (With
# dampening :math:`\tau`, torch's first step skips the factor :math:`1-\tau`, and with
# :math:`\tau = \mu` the buffer becomes :math:`m_t + \mu^t g_1`, an EWMA biased towards
# the first gradient instead of towards zero.) So the buffer is :math:`1/(1-\mu)` times
# an EWMA of the gradients, *without* bias correction: its weights sum to
# :math:`(1-\mu^t)/(1-\mu)`, and the step grows from :math:`\eta g_1` towards
# :math:`\eta\, \bar g/(1-\mu)` over the first few tens of steps. The momentum run
# recorded the gradient of one weight (the centre tap of the first convolution's first
# filter) and the buffer of that weight after every step.

LAYER = "features.0.weight"
mom_run = runs["momentum"].results[0]  # seed SEED
grad = mom_run.records[f"grad/{LAYER}"][:, 0].astype(np.float64)
buffer = mom_run.records[f"state/momentum_buffer/{LAYER}"][:, 0].astype(np.float64)
scaled = (1 - MU) * buffer
m = ewma.ewma(grad, MU)
n_zoom = min(150, len(grad))
fig, (ax_all, ax_zoom) = plt.subplots(2, 1, figsize=(7.0, 6.0), layout="constrained")
for ax, stop in ((ax_all, len(grad)), (ax_zoom, n_zoom)):
    t = steps[:stop]
    ax.plot(t, grad[:stop], color=plotting.NEUTRAL, lw=0.7, label="raw gradient $g_t$")
    ax.plot(t, scaled[:stop], color=plotting.color_for("momentum"), label=r"$(1-\mu)\,b_t$")
    ax.plot(t, m[:stop], ":", color="black", lw=1.4, label=r"EWMA $m_t$, $\beta = \mu$")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_ylabel(r"$\partial L / \partial w$ (nat per unit $w$)")
lo, hi = np.quantile(grad, [0.005, 0.995])
ax_all.set_ylim(lo, hi)
ax_all.text(0.02, 0.04, f"all {len(grad):,} steps, seed {SEED}", transform=ax_all.transAxes)
ax_zoom.set_title(f"The first {n_zoom} steps")
plotting.label_step_axis(ax_all, steps_per_epoch)
plotting.label_step_axis(ax_zoom)
fig.legend(*ax_zoom.get_legend_handles_labels(), loc="outside lower center", ncols=3)
plt.show()

# %%
# The scaled buffer and the EWMA are one curve (a hidden check compares them to float32
# rounding). Averaging over about :math:`1/(1-\mu)` steps removes most of the
# mini-batch noise; for independent noise an EWMA's standard deviation would be
# :math:`\sqrt{(1-\mu)/(1+\mu)}` times its input's.

white = math.sqrt((1 - MU) / (1 + MU))
print(f"{'':<24}{'mean':>11}{'std':>11}")
print(f"{'raw gradient g':<24}{grad.mean():>11.2e}{grad.std():>11.2e}")
print(f"{'(1-μ) b = EWMA of g':<24}{scaled.mean():>11.2e}{scaled.std():>11.2e}")
print(f"std ratio {scaled.std() / grad.std():.3f} (independent noise: {white:.3f})")

# sphinx_gallery_start_ignore
# The identity (1 - mu) b_t = m_t, checked twice: replaying torch's float32 recursion
# b_1 = g_1, b_t = mu b_{t-1} + g_t on the recorded float32 gradients must give the
# recorded buffer bitwise (CPU), and the float64 EWMA must agree to float32 rounding.
g32 = mom_run.records[f"grad/{LAYER}"][:, 0]
b32 = mom_run.records[f"state/momentum_buffer/{LAYER}"][:, 0]
replay = np.empty_like(g32)
replay[0] = g32[0]
for i in range(1, len(g32)):
    replay[i] = np.float32(MU) * replay[i - 1] + g32[i]
if device.type == "cpu" and not np.array_equal(replay, b32):
    worst = np.abs(replay.astype(np.float64) - b32).max()
    raise AssertionError(f"torch's buffer is not b_t = mu b_(t-1) + g_t (max diff {worst:.3g})")
tolerance = 1e-5 * np.abs(buffer).max()
if not np.allclose(buffer, m / (1 - MU), rtol=0, atol=tolerance):
    worst = np.abs(buffer - m / (1 - MU)).max()
    raise AssertionError(f"(1 - mu) b_t != ewma(g, mu)_t: max abs difference {worst:.3g}")
# Torch's first step with dampening tau = mu: b_t = m_t + mu^t g_1 (the aside above).
rng = np.random.default_rng(SEED)
fake = rng.normal(size=50)
w = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1, momentum=MU, dampening=MU)
damped = []
for value in fake:
    w.grad = torch.tensor([value], dtype=torch.float32)
    opt.step()
    damped.append(float(opt.state[w]["momentum_buffer"][0]))
expected = ewma.ewma(fake, MU) + MU ** np.arange(1, 51) * fake[0]
np.testing.assert_allclose(damped, expected, rtol=0, atol=1e-5, err_msg="dampened buffer")
if not scaled.std() < 0.5 * grad.std():
    raise AssertionError(f"the EWMA was expected to remove most of the noise: {scaled.std()}")
# sphinx_gallery_end_ignore

# %%
# Momentum as a larger learning rate
# ----------------------------------
# If the gradient stayed the same, the buffer would settle at :math:`g/(1-\mu)` and
# momentum would step like plain SGD at :math:`\eta/(1-\mu)`: in the long run, momentum
# is a larger learning rate. The fourth run is that SGD. Two things differ.
#
# - The transient. SGD at :math:`\eta/(1-\mu)` takes its full step from the first
#   mini-batch; momentum's buffer, fed a constant :math:`g`, holds
#   :math:`g\,(1-\mu^t)/(1-\mu)`. Summing the steps, momentum covers the same distance
#   as SGD at :math:`\eta/(1-\mu)`, but lagging it by :math:`\mu(1-\mu^t)/(1-\mu)`
#   steps, a lag that tends to :math:`\mu/(1-\mu)`; Nesterov,
#   whose step :math:`\eta\,(g + \mu b_t)` is the heavy ball's step :math:`t+1`, is
#   :math:`\mu^2/(1-\mu)` steps late. Left: the loss of the first mini-batches (mean over
#   seeds, lightly smoothed), where the network leaves its initial plateau.
# - The noise. SGD at :math:`\eta/(1-\mu)` moves each weight by
#   :math:`\eta\, g_t/(1-\mu)`, with all the mini-batch noise; momentum moves it by
#   :math:`\eta\, b_t`, the same average with the noise of an EWMA. Right: the validation
#   loss per epoch, with its spread over seeds.

KEYS_EFF = ("sgd", "sgd_effective", "momentum", "nesterov")
EARLY_BETA = 0.8
THRESHOLD = 1.5  # nat, well below the initial plateau at ln 10 = 2.3
DASHED = {"sgd_effective": "--"}  # SGD's lighter blue, dashed to tell it from SGD
n_first = min(3 * steps_per_epoch, 300, len(steps))
early = {
    key: plotting.smooth_curve(runs[key].stack("batch_loss")[:, :n_first], EARLY_BETA).mean(0)
    for key in KEYS_EFF
}
fig, (ax_first, ax_val) = plt.subplots(1, 2, figsize=(9.0, 4.0), layout="constrained")
for key in KEYS_EFF:
    ls = DASHED.get(key, "-")
    ax_first.plot(steps[:n_first], early[key], color=plotting.color_for(key), ls=ls)
    plotting.band(ax_val, epoch_axis, runs[key].stack("val_loss"), label=key, marker="o", ls=ls)
ax_first.axhline(THRESHOLD, color=plotting.NEUTRAL, lw=0.8, ls=":")
ax_first.annotate(f"{THRESHOLD} nat: the table's threshold", (0.98, THRESHOLD), ha="right",
                  va="bottom", xycoords=("axes fraction", "data"), fontsize=8.5)  # fmt: skip
ax_first.set(yscale="log", ylabel=f"training loss, EWMA β = {EARLY_BETA} (nat)")
ax_first.set_title(f"The first {n_first} mini-batches")
plotting.plain_log_ticks(ax_first)
plotting.label_step_axis(ax_first)
ax_val.set(xlabel="epoch", ylabel="validation loss (nat)", title="Validation loss (mean ± std)")
ax_val.set_xticks(epoch_axis)
handles4 = [
    Line2D([], [], color=plotting.color_for(k), ls=DASHED.get(k, "-"), label=runs[k].spec.name)
    for k in KEYS_EFF
]
fig.legend(handles=handles4, loc="outside lower center", ncols=4)
plt.show()

# %%
# The first table gives when each run's smoothed loss first falls below a threshold,
# and the delay behind SGD at :math:`\eta/(1-\mu)`, next to the constant-gradient
# delay (real gradients are not constant: expect the order of magnitude only). The
# second compares the per-step change of the recorded weight in the two runs (all steps
# and seeds pooled): the learning rate times the gradient for SGD at
# :math:`\eta/(1-\mu)`, the learning rate times the buffer for momentum. The final test
# numbers are in the table of the first section.

CONSTANT_DELAY = {"sgd_effective": 0.0, "momentum": MU / (1 - MU), "nesterov": MU**2 / (1 - MU)}
print(f"{'run':<30}{f'first step < {THRESHOLD} nat':>20}{'delay':>7}{'constant-g delay':>18}")
crossing = {}
for key in KEYS_EFF:
    below = np.flatnonzero(early[key] < THRESHOLD)
    crossing[key] = int(below[0]) + 1 if below.size else None
    if crossing[key] is None:
        print(f"{runs[key].spec.name:<30}{'not in the window':>20}")
        continue
    delay = crossing[key] - crossing["sgd_effective"]
    row = f"{crossing[key]:>20d}{delay:>7d}{CONSTANT_DELAY.get(key, math.nan):>18.1f}"
    print(f"{runs[key].spec.name:<30}{row}")
print()
print(f"{'run':<30}{'mean step':>12}{'std of step':>13}{'|mean| / std':>14}")
update_noise = {}
for key in ("sgd_effective", "momentum"):
    lr_key = runs[key].results[0].config["lr"]
    record = f"state/momentum_buffer/{LAYER}" if key == "momentum" else f"grad/{LAYER}"
    values_key = np.concatenate([r.records[record][:, 0] for r in runs[key].results])
    step_sizes = -lr_key * values_key.astype(np.float64)
    update_noise[key] = step_sizes.std()
    mean, std = step_sizes.mean(), step_sizes.std()
    print(f"{runs[key].spec.name:<30}{mean:>12.2e}{std:>13.2e}{abs(mean) / std:>14.3f}")

# sphinx_gallery_start_ignore
# The claims of this section: SGD at lr / (1 - mu) leaves the plateau before momentum
# (the buffer must fill), and momentum's steps of the recorded weight are less noisy.
if not (crossing["sgd_effective"] and crossing["momentum"]):
    raise AssertionError(f"a run never fell below {THRESHOLD} nat early on: {crossing}")
if not crossing["sgd_effective"] < crossing["momentum"]:
    raise AssertionError(f"SGD at lr/(1 - mu) was expected to drop first: {crossing}")
if not update_noise["momentum"] < update_noise["sgd_effective"]:
    raise AssertionError(f"momentum's steps were expected to be less noisy: {update_noise}")
# The constant-gradient delays: the distance covered by SGD at lr / (1 - mu) minus that
# of heavy ball and Nesterov, in units of its step, tends to mu/(1-mu) and mu^2/(1-mu).
b_const, heavy, nest = 0.0, 0.0, 0.0
for _ in range(2000):
    b_const = MU * b_const + 1.0
    heavy, nest = heavy + b_const, nest + 1.0 + MU * b_const
for covered, key in ((heavy, "momentum"), (nest, "nesterov")):
    lag = 2000 - covered * (1 - MU)
    if not math.isclose(lag, CONSTANT_DELAY[key], rel_tol=1e-9):
        raise AssertionError(f"constant-gradient delay of {key}: {lag} != {CONSTANT_DELAY[key]}")
# sphinx_gallery_end_ignore

# %%
# Paths on toy surfaces
# ---------------------
# Two functions of two parameters, where the whole path can be drawn
# (:data:`fashion_optim.landscape.SURFACES`), with the same four optimizers, run by
# :func:`fashion_optim.landscape.optimize_path` with :class:`torch.optim.SGD`.
#
# - The ill-conditioned quadratic :math:`\tfrac12 (x^2 + 20 y^2)`. Its curvatures are 1
#   and 20, so plain SGD is stable below :math:`\eta = 2/20`; momentum below
#   :math:`2(1+\mu)/20`, and Nesterov below :math:`2(1+\mu)/((1+2\mu)\,20)`. We pick
#   :math:`\eta = 0.01`, which puts SGD at :math:`\eta/(1-\mu)` exactly on its edge of
#   stability: it bounces across the valley for ever, while momentum at :math:`\eta`,
#   which should take the same long-run step, converges. Plain SGD at :math:`\eta` is
#   safe but crawls along the flat :math:`x` direction.
# - Rosenbrock's valley, at the :math:`\eta = 10^{-3}` usual for it (its curvature across
#   the valley is in the hundreds). Plain SGD creeps along the valley floor; momentum
#   runs along it but first swings from wall to wall; Nesterov, whose gradient already
#   sees where the velocity is taking it, brakes before the wall. Braking is not
#   speed: the table below says which of the two gets further down the valley.

TOY = {"quadratic": (0.01, 100), "rosenbrock": (1e-3, 300)}  # learning rate, steps


def sgd_factory(lr, momentum=0.0, nesterov=False):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov)


def toy_factories(lr):
    return {
        "sgd": sgd_factory(lr),
        "sgd_effective": sgd_factory(lr / (1 - MU)),
        "momentum": sgd_factory(lr, MU),
        "nesterov": sgd_factory(lr, MU, nesterov=True),
    }


def inside(path, surface):
    """How many leading points of ``path`` lie inside the plotting window (at least 1)."""
    (x0, x1), (y0, y1) = surface.xlim, surface.ylim
    ok = np.isfinite(path).all(axis=1)
    ok &= (path[:, 0] >= x0) & (path[:, 0] <= x1) & (path[:, 1] >= y0) & (path[:, 1] <= y1)
    return len(path) if ok.all() else max(int(np.argmin(ok)), 1)


paths, values = {}, {}
fig, axes = plt.subplots(2, 2, figsize=(9.5, 7.5), height_ratios=(3, 2), layout="constrained")
for col, (surf_name, (lr_toy, n_steps)) in enumerate(TOY.items()):
    surface = landscape.SURFACES[surf_name]
    X, Y, Z = landscape.surface_grid(surface, n=300)
    ax_path, ax_value = axes[0, col], axes[1, col]
    levels = np.geomspace(max(Z.min(), 1e-2), Z.max(), 14)
    ax_path.contour(X, Y, Z, levels=levels, colors=plotting.NEUTRAL, linewidths=0.6)
    for key, factory in toy_factories(lr_toy).items():
        path = landscape.optimize_path(surface, factory, n_steps)
        with torch.no_grad():
            f = surface.fn(torch.from_numpy(path)).numpy()
        paths[surf_name, key], values[surf_name, key] = path, f
        keep = min(inside(path, surface) + 1, len(path))  # one point past the edge
        color = plotting.color_for(key)
        lw = 0.8 if key == "sgd_effective" else 1.5
        # the bouncing large-step SGD behind and faint, plain SGD thin and on top, so
        # that the paths which run together stay visible
        behind = {"alpha": 0.45, "zorder": 1} if key == "sgd_effective" else {"zorder": 2}
        if key == "sgd":
            lw, behind = 1.0, {"zorder": 4}
        ax_path.plot(*path[:keep].T, "-o", ms=2.2, lw=lw, color=color, **behind)
        if keep == len(path):  # the path's end, where it stayed inside the frame
            ax_path.plot(*path[-1], "o", ms=7, mfc="white", mec=color, mew=1.8, zorder=6)
        ax_value.plot(np.arange(keep), f[:keep], lw=lw, color=color, ls=DASHED.get(key, "-"))
    ax_path.plot(*surface.minimum, "*", ms=14, color="black", zorder=5)
    ax_path.plot(*surface.start, "s", ms=6, color="black", zorder=5)
    ax_path.set(xlim=surface.xlim, ylim=surface.ylim, xlabel="x (no unit)", ylabel="y (no unit)")
    ax_path.set_title(f"{surf_name}, η = {lr_toy:g}, {n_steps} steps")
    ax_value.set(yscale="log", ylim=(None, 3 * f[0]), xlabel="step", ylabel="f (no unit)")
toy_handles = [
    Line2D([], [], color=plotting.color_for(k), ls=DASHED.get(k, "-"), label=runs[k].spec.name)
    for k in FOUR
]
toy_handles += [
    Line2D([], [], color="black", marker="s", ls="", label="start"),
    Line2D([], [], color="black", marker="o", mfc="white", ls="", label="end"),
    Line2D([], [], color="black", marker="*", ms=10, ls="", label="minimum"),
]
fig.legend(handles=toy_handles, loc="outside lower center", ncols=4, columnspacing=1.2)
plt.show()

# %%
# The table gives the value reached and how many steps each path needed to get below
# a hundredth of its starting value.

print(f"{'surface':<12}{'optimizer':<30}{'f at the end':>14}{'steps to f0/100':>17}")
for (surf_name, key), f in values.items():
    target = np.flatnonzero(f < f[0] / 100)
    end = f"{f[-1]:14.2e}" if np.isfinite(f[-1]) and f[-1] < 1e6 else f"{'diverged':>14}"
    reached = f"{target[0]:17d}" if target.size else f"{'never':>17}"
    print(f"{surf_name:<12}{runs[key].spec.name:<30}{end}{reached}")

# sphinx_gallery_start_ignore
# The update rules of the docstring, written out by hand, must give torch's paths; and
# the claims of the prose: SGD at lr / (1 - mu) never settles on the quadratic, while
# momentum and Nesterov beat plain SGD on both surfaces.
for surf_name, (lr_toy, n_steps) in TOY.items():
    surface = landscape.SURFACES[surf_name]
    for key, nesterov in (("momentum", False), ("nesterov", True)):
        theta = torch.tensor(surface.start, dtype=torch.float64)
        buf = torch.zeros(2, dtype=torch.float64)
        manual = [theta.numpy().copy()]
        for _ in range(n_steps):
            point = theta.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(surface.fn(point), point)
            buf = MU * buf + g
            theta = theta - lr_toy * ((g + MU * buf) if nesterov else buf)
            manual.append(theta.numpy().copy())
        np.testing.assert_allclose(
            np.array(manual), paths[surf_name, key], rtol=1e-9, atol=1e-12, err_msg=key
        )
    for key in ("momentum", "nesterov"):
        if not values[surf_name, key][-1] < values[surf_name, "sgd"][-1]:
            raise AssertionError(f"{key} does not beat plain SGD on {surf_name}")
quad_eff = values["quadratic", "sgd_effective"]
if not np.all(quad_eff[-10:] > 1.0):
    raise AssertionError("SGD at lr/(1 - mu) was expected to keep bouncing on the quadratic")
# sphinx_gallery_end_ignore

# %%
# Paths on the CNN's loss surface
# -------------------------------
# The network has tens of thousands of weights, so its paths are drawn on a plane: the
# one through the shared initial weights that holds most of the three trajectories, from
# a principal component analysis of their snapshots (:func:`fashion_optim.landscape.pca_plane`,
# after :cite:t:`li2018visualizing`). The shared runs do not keep snapshots, so three
# shorter runs of the same specs (``snap_specs``, trained with the shared runs above),
# for the first seed only, keep all the weights every few steps; they start from the
# same weights and see the same mini-batches as the shared runs.

snaps = experiments.run_specs(snap_specs, seeds=[SEED])  # trained with the shared runs
snaps = {key: res.results[0] for key, res in snaps.items()}
plane = landscape.pca_plane([snaps[key].records["params"] for key in THREE])
snap_steps = snaps["sgd"].records["param_steps"]
n_params = snaps["sgd"].records["params"].shape[1]
print(f"{'weights':<26}{n_params:,}")
print(f"{'epochs':<26}{snaps['sgd'].config['epochs']} (seed {SEED})")
print(f"{'snapshots per run':<26}{len(snap_steps)} (every {SNAPSHOT_EVERY} steps)")
for key in THREE:
    source = "cache" if snaps[key].from_cache else "trained now"
    print(f"{key:<26}{snaps[key].meta['wall_time']:.1f} s ({source})")
evr = plane.explained_variance_ratio
print(f"variance explained by the plane: {100 * evr[0]:.1f} % + {100 * evr[1]:.1f} %")
print(f"                                 = {100 * evr.sum():.1f} % of the three trajectories'")

# sphinx_gallery_start_ignore
# The snapshot runs retrace the shared runs: same initial weights, same mini-batches, so
# (on the CPU, which is deterministic) the same losses step by step.
if device.type == "cpu":
    for key in THREE:
        short = snaps[key].history.batch_loss
        long = runs[key].results[0].history.batch_loss[: len(short)]
        if short != long:
            raise AssertionError(f"the snapshot run of {key} does not retrace the shared run")
# sphinx_gallery_end_ignore

# %%
# The loss on the plane is evaluated on a grid, on a fixed sample of the training
# images, by :func:`fashion_optim.landscape.loss_surface`. The grid is cached by
# :func:`fashion_optim.experiments.cached` under a key that names everything it depends
# on: the three specs, the seed, the grid and the sample.

GRID = PerProfile(full=21, quick=11)(profile)
N_SURFACE = PerProfile(full=2000, quick=500)(profile)
surface_config = {
    "runs": {key: spec.resolve(profile) for key, spec in snap_specs.items()},
    "seed": SEED,
    "grid": GRID,
    "images": N_SURFACE,
    "plane": "pca_plane through the initial weights, default extent",
}


def compute_surface():
    splits = experiments.get_splits()
    train_subset = snaps["sgd"].config["train_subset"]
    # The first shuffled batch of N_SURFACE of the images the runs trained on.
    loader = splits.loader("train", N_SURFACE, seed=SEED, subset=train_subset)
    start = time.perf_counter()
    surf = landscape.loss_surface(make_model("lenet"), plane, loader, n=GRID)
    return surf, {"wall_time": time.perf_counter() - start}


grid, grid_meta = experiments.cached(
    "loss_surface",
    surface_config,
    compute_surface,
    data_checksum=experiments.get_splits().data_checksum,
)
print(f"{GRID} x {GRID} grid on {N_SURFACE:,} training images: {grid_meta['wall_time']:.1f} s")

# %%
# Left, the three paths over the loss contours: the dots are the snapshots, the black
# square is the shared start and the hollow circles are where each run ends. Plain
# SGD's path is short for two reasons the right panel separates: it moves less in the
# same steps, and less of its movement lies in this plane. Right, each run's distance
# from the start in the full weight space (solid) and in the plane (dashed): the gap
# between them is what the plane leaves out. The contours are the loss at the points of
# the plane itself, where each run's weights off the plane are dropped: the loss under a
# path's end is higher than that run's own training loss (the table below).

fig, (ax_plane, ax_dist) = plt.subplots(
    1, 2, figsize=(10.0, 4.6), width_ratios=(1.25, 1), layout="constrained"
)
levels = np.geomspace(grid["loss"].min(), grid["loss"].max(), 16)
filled = ax_plane.contourf(
    grid["alphas"],
    grid["betas"],
    grid["loss"],
    levels=levels,
    cmap="Greys_r",
    alpha=0.7,
    norm=LogNorm(),
)
ax_plane.contour(
    grid["alphas"], grid["betas"], grid["loss"], levels=levels, colors="0.35", linewidths=0.4
)
fig.colorbar(filled, ax=ax_plane, label="training loss on the sample (nat)", format="%.2g")
for i, key in enumerate(THREE):
    color = plotting.color_for(key)
    coords = plane.coords[i]
    ax_plane.plot(*coords.T, "-o", ms=2.5, lw=1.5, color=color, label=runs[key].spec.name)
    ax_plane.plot(*coords[-1], "o", ms=8, mfc="white", mec=color, mew=2)
    full = np.linalg.norm(snaps[key].records["params"] - plane.origin, axis=1)
    ax_dist.plot(snap_steps, full, color=color)
    ax_dist.plot(snap_steps, np.linalg.norm(coords, axis=1), "--", color=color)
ax_plane.plot(0, 0, "s", ms=7, color="black", zorder=5)
ax_plane.set(xlabel=f"direction 1 ({100 * evr[0]:.0f} % of variance)")
ax_plane.set(ylabel=f"direction 2 ({100 * evr[1]:.0f} % of variance)")
ax_plane.set_title(f"PCA plane, seed {SEED}")
ax_plane.set_aspect("equal")  # the coordinates are distances: keep them to scale
ax_dist.set(ylabel=r"distance from the start $\|\theta_t - \theta_0\|_2$ (weight units)")
plotting.label_step_axis(ax_dist, steps_per_epoch)
dist_key = [
    Line2D([], [], color="0.3", label="all weights"),
    Line2D([], [], color="0.3", ls="--", label="in the plane"),
]
ax_dist.legend(handles=dist_key, loc="upper left")
fig.legend(handles=handles, loc="outside lower center", ncols=3)
plt.show()

# %%
# The plane's coordinates are distances in weight space: the plane's directions have
# unit length. Momentum and Nesterov go much further than plain SGD in the same
# number of steps (the table: all weights, and the part of it in the plane). The
# plane is fitted to all three paths, so it can hold most of the momentum runs'
# distance and less of plain SGD's: compare the two columns before reading SGD's path
# in the left panel. Whether the two momentum paths end close to each other is printed
# below the table.

travelled = {}
print(f"{'run':<18}{'distance at the end':>20}{'in the plane':>14}{'loss, last epoch':>18}")
for i, key in enumerate(THREE):
    full = np.linalg.norm(snaps[key].records["params"][-1] - plane.origin)
    in_plane = np.linalg.norm(plane.coords[i][-1])
    last_loss = np.mean(snaps[key].history.batch_loss[-steps_per_epoch:])
    print(f"{key:<18}{full:>20.2f}{in_plane:>14.2f}{last_loss:>18.3f}")
    travelled[key] = full
i_m, i_n = THREE.index("momentum"), THREE.index("nesterov")
apart = np.linalg.norm(
    snaps["momentum"].records["params"][-1] - snaps["nesterov"].records["params"][-1]
)
print(
    f"momentum and Nesterov end {apart:.2f} apart in weight space "
    f"({np.linalg.norm(plane.coords[i_m][-1] - plane.coords[i_n][-1]):.2f} in the plane),\n"
    f"after travelling {travelled['momentum']:.2f} and {travelled['nesterov']:.2f}"
)

# sphinx_gallery_start_ignore
if not evr.sum() > 0.5:
    raise AssertionError(f"the plane was expected to hold most of the variance: {evr}")
for key in ("momentum", "nesterov"):
    if not travelled[key] > 2 * travelled["sgd"]:
        raise AssertionError(f"{key} was expected to travel much further: {travelled}")
# sphinx_gallery_end_ignore

# %%
# Takeaways
# ---------
# - At the same learning rate, heavy-ball momentum and Nesterov train much faster than
#   plain SGD (the loss curves and the test table); the two momentum methods end with
#   similar losses, though not at the same weights (the PCA plane).
# - Torch's momentum buffer is :math:`1/(1-\mu)` times an EWMA of the gradients, exactly,
#   without bias correction: the step starts at :math:`\eta g_1` and grows to its full
#   size over a few tens of steps, and the averaging cuts the mini-batch noise.
# - In the long run momentum steps like SGD at :math:`\eta/(1-\mu)`. The difference is
#   in the transient (the buffer must fill, so the large-step SGD leaves the initial
#   plateau first) and in the noise of each step (momentum's is an EWMA's). On a stiff
#   problem it is also stability: on the quadratic, SGD at :math:`\eta/(1-\mu)` sits on
#   its edge of stability while momentum at :math:`\eta` converges.
# - Momentum overshoots and swings across narrow valleys; Nesterov's gradient, taken
#   where the velocity is heading, damps the swing. On the CNN's PCA plane both momentum
#   methods travel much further than SGD in the same steps, in a plane that holds most
#   of the trajectories' variance.
#
# References
# ----------
# Momentum and Nesterov's accelerated gradient for deep networks, and the look-ahead
# form of Nesterov's method, follow :cite:t:`sutskever2013importance`; the method itself
# is due to :cite:t:`nesterov1983method`. The PCA plane of trajectories is from
# :cite:t:`li2018visualizing`. Torch's formulation of both methods, and momentum read as
# an EWMA of the gradients, are discussed by :cite:t:`godoy2022deep`. The data set is
# Fashion-MNIST :cite:p:`xiao2017fashion`. See the :doc:`bibliography </references>` for
# full entries.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_01_ewma_bias_correction.py`: the EWMA, its age and
#   its bias, which the momentum buffer shares.
# - :ref:`sphx_glr_auto_gallery_plot_03_adam_adapted_gradients.py`: Adam, whose first
#   moment is the same EWMA, bias-corrected, and whose step divides it by the root of a
#   second EWMA, of the squared gradients.
# - :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`: choosing the learning rate
#   that these comparisons hold fixed.
# - :class:`torch.optim.SGD` (``momentum``, ``dampening``, ``nesterov``);
#   :func:`fashion_optim.landscape.pca_plane`, :func:`fashion_optim.landscape.loss_surface`,
#   :func:`fashion_optim.landscape.optimize_path` and
#   :func:`fashion_optim.experiments.cached`: the functions used here.
