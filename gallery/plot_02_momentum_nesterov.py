# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
==========================
SGD, momentum and Nesterov
==========================

We train the LeNet-like CNN on Fashion-MNIST with plain SGD, heavy-ball momentum and
Nesterov's momentum at one learning rate, and plain SGD at the larger :math:`\eta/(1-\mu)`,
from the same initial weights. Look at how fast the loss falls, what the momentum buffer
averages, whether momentum is just a larger learning rate, and the paths the optimizers
take on toy surfaces, in figures and in a player that runs them step by step (their
paths on the network's own loss surface are in chapter 8).

With :math:`g_t` the mini-batch gradient at :math:`\theta_{t-1}`, learning rate
:math:`\eta` and momentum :math:`\mu`, :class:`torch.optim.SGD` computes (buffer
:math:`b_0 = 0`, no dampening; plain SGD is :math:`\mu = 0`):

.. math::

    b_t = \mu\, b_{t-1} + g_t, \qquad
    \theta_t = \begin{cases}
        \theta_{t-1} - \eta\, b_t & \text{heavy ball} \\
        \theta_{t-1} - \eta\, (g_t + \mu\, b_t) & \text{Nesterov}
    \end{cases}
"""

# %%
# Setup
# -----
# The seed fixes the initial weights and the mini-batch order, so all optimizers start
# alike. ``say`` prints a sentence whose wording follows the numbers.

# sphinx_gallery_thumbnail_number = 5
import functools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from fashion_optim import ewma, experiments, plotting, toys
from fashion_optim.device import resolve_device
from fashion_optim.plotting import say

profile = experiments.current_profile()
SEED = profile.seeds[
    0
]  # the single-seed sections; run_specs uses all of profile.seeds
torch.manual_seed(SEED)
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
THREE, FOUR = (
    ("sgd", "momentum", "nesterov"),
    ("sgd", "momentum", "nesterov", "sgd_effective"),
)
MU = experiments.NAMED["momentum"].optimizer_kwargs["momentum"]


print(f"profile {profile.name!r}, seeds {list(profile.seeds)}, device {device}")

# %%
# Four configurations
# -------------------
# Nesterov's method :cite:p:`nesterov1983method`, as written by
# :cite:t:`sutskever2013importance` with a velocity :math:`v`, takes the gradient at the
# look-ahead point, where the velocity would carry the weights anyway:
#
# .. math::
#
#     v_t = \mu\, v_{t-1} - \eta\, \nabla L(\theta_{t-1} + \mu\, v_{t-1}), \qquad
#     \theta_t = \theta_{t-1} + v_t.
#
# Torch keeps the look-ahead point :math:`\theta_t + \mu v_t` as its parameters
# (:math:`b_t = -v_t/\eta`): the second line above. The fourth run is plain SGD at
# :math:`\eta/(1-\mu)`, the step of a buffer fed one gradient for ever. Each trains for
# 10 epochs on 50,000 images with 3 seeds (the quick profile: 3 epochs, 10,000 images,
# 2 seeds), all in one call.

runs = experiments.run_specs({key: experiments.NAMED[key] for key in FOUR})
NAMES = {key: runs[key].spec.name for key in FOUR}
first = runs["sgd"].results[0]
steps_per_epoch = SPE = int(first.meta["steps_per_epoch"])
epochs = first.history.epochs
say(
    f"{epochs} epochs of {steps_per_epoch} steps (batches of "
    f"{first.config.batch_size}) on {first.meta['train_size']:,} training "
    f"images, {first.meta['val_size']:,} for validation, seeds "
    f"{runs['sgd'].seeds}."
)
plain = {"momentum": 0.0, "nesterov": False}
kwargs = {k: plain | runs[k].config.optimizer_kwargs for k in FOUR}
table = pd.DataFrame(kwargs).T.assign(lr=[runs[k].config.lr for k in FOUR])
table.rename(index=NAMES).rename_axis("configuration")

# %%
# Training loss
# -------------
# The loss of every mini-batch, smoothed with a bias-corrected EWMA
# (:func:`~fashion_optim.plotting.smooth_curve`) and averaged over the seeds.

steps = np.arange(1, epochs * steps_per_epoch + 1)
fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
plotting.smoothed_losses(ax, {k: runs[k] for k in THREE}, 0.95, labels=NAMES)
plotting.label_step_axis(ax, steps_per_epoch)
ax.legend()
plt.show()

final = {key: runs[key].final("train_loss")[0] for key in THREE}
rel = {k: "below" if final[k] < final["sgd"] else "above" for k in THREE}
say(
    f"Last epoch's mean training loss: momentum {final['momentum']:.3f} nat "
    f"({rel['momentum']} SGD's {final['sgd']:.3f}), Nesterov "
    f"{final['nesterov']:.3f} ({rel['nesterov']} it)."
)

# %%
# Validation and test
# -------------------
# After every epoch the model is evaluated on the held-out validation images (bands:
# ±1 standard deviation over the seeds; the :doc:`findings </note/findings>` draw the
# same figure). The table gives the last epoch's validation accuracy, and the test set,
# read once per configuration.

fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.2), layout="constrained")
for ax, field in zip(axes, ("val_loss", "val_acc"), strict=True):
    plotting.learning_curves(ax, {key: runs[key] for key in THREE}, field)
    plotting.learning_curves(
        ax, {"sgd_effective": runs["sgd_effective"]}, field, ls="--"
    )
    ax.set_xticks(np.arange(1, epochs + 1))
axes[0].set(yscale="log")
plotting.plain_log_ticks(axes[0])
plotting.legend_below(axes[1], ncols=2)
plt.show()

plotting.results_table(
    {NAMES[key]: runs[key] for key in FOUR},
    metrics=("val_acc", "test_acc", "test_loss"),
)

# %%
# What the buffer averages
# ------------------------
# Unrolled, the buffer is :math:`b_t = \sum_{i=1}^{t} \mu^{t-i} g_i`, and the EWMA of
# the previous chapter, started from zero, is
# :math:`m_t = (1-\mu) \sum_{i=1}^{t} \mu^{t-i} g_i`, so
#
# .. math::
#
#     (1 - \mu)\, b_t = m_t \quad \text{exactly, for every } t.
#
# The buffer is :math:`1/(1-\mu)` times an EWMA of the gradients, *without* bias
# correction: the step grows from :math:`\eta g_1` towards :math:`\eta\, \bar g/(1-\mu)`
# over the first few tens of steps. (With dampening :math:`\tau = \mu` torch's buffer
# is :math:`m_t + \mu^t g_1` instead: its first step skips the factor :math:`1-\tau`.)
# The momentum run recorded one weight's gradient and buffer at every step:

LAYER = "features.0.weight"
mom_run = runs["momentum"].results[0]  # seed SEED
grad = mom_run.gradient(LAYER)[:, 0].astype(np.float64)
buffer = mom_run.optimizer_state("momentum_buffer", LAYER)[:, 0].astype(
    np.float64
)
scaled = (1 - MU) * buffer
m = ewma.ewma(grad, MU)
plotting.buffer_and_ewma(grad, scaled, m, steps_per_epoch, zoom=150)
plt.show()

# sphinx_gallery_start_ignore
np.testing.assert_allclose(scaled, m, rtol=0, atol=1e-5 * np.abs(scaled).max())
# sphinx_gallery_end_ignore

white, ratio = np.sqrt((1 - MU) / (1 + MU)), scaled.std() / grad.std()
say(
    "The scaled buffer and the EWMA are one curve. Its standard deviation is "
    f"{ratio:.3f} times the raw gradient's: "
    f"{'more' if ratio > white else 'less'} than the √((1-μ)/(1+μ)) = "
    f"{white:.3f} an EWMA would leave of independent noise."
)

# %%
# Momentum as a larger learning rate
# ----------------------------------
# Fed a constant :math:`g`, the buffer settles at :math:`g/(1-\mu)`: in the long run
# momentum steps like SGD at :math:`\eta/(1-\mu)`. Two things differ. The transient: the
# buffer holds :math:`g\,(1-\mu^t)/(1-\mu)`, so momentum lags SGD at :math:`\eta/(1-\mu)`
# by a number of steps that tends to :math:`\mu/(1-\mu)` (Nesterov, whose step is the
# heavy ball's step :math:`t+1`, by :math:`\mu^2/(1-\mu)`). The noise: SGD at
# :math:`\eta/(1-\mu)` steps by :math:`\eta\, g_t/(1-\mu)`, momentum by the EWMA
# :math:`\eta\, b_t`. The figure: the first mini-batches (mean of the seeds, smoothed).

THRESHOLD = 1.5  # nat, well below the initial plateau at ln 10 = 2.3
n_first = min(3 * steps_per_epoch, 300, len(steps))
fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
four = {key: runs[key] for key in FOUR}
early = plotting.smoothed_losses(
    ax, four, 0.8, first=n_first, labels=NAMES, dashed={"sgd_effective"}
)
ax.axhline(THRESHOLD, color="black", lw=0.8, ls=":", label=f"{THRESHOLD} nat")
plotting.label_step_axis(ax)
ax.legend()
plt.show()

# %%
# The table: the step where each curve first falls below the threshold, its delay behind
# SGD at :math:`\eta/(1-\mu)`, and the constant-gradient delay (real gradients are not
# constant: the order of magnitude only). The noise is that of the recorded weight's step.

below = {k: np.flatnonzero(early[k] < THRESHOLD) for k in FOUR}
cross = {k: below[k][0] + 1 if below[k].size else np.inf for k in FOUR}
lag = {"sgd_effective": 0.0, "momentum": MU / (1 - MU)}
lag["nesterov"] = MU**2 / (1 - MU)
delay = {k: cross[k] - cross["sgd_effective"] for k in FOUR}
table = {f"first step < {THRESHOLD} nat": cross, "delay": delay}
table["constant-g delay"] = lag
steps_of = {
    "sgd_effective": lambda r: r.gradient(LAYER),
    "momentum": lambda r: r.optimizer_state("momentum_buffer", LAYER),
}
sd = {}  # the standard deviation of the recorded weight's steps
for k, of in steps_of.items():
    sd[k] = np.std([r.config.lr * of(r)[:, 0] for r in runs[k].results])
first_below = cross["sgd_effective"] < cross["momentum"]
say(
    f"SGD at η/(1-μ) falls below {THRESHOLD} nat "
    f"{'before' if first_below else 'no earlier than'} "
    "momentum; the standard deviation of its steps is "
    f"{sd['sgd_effective'] / sd['momentum']:.2f} times momentum's."
)
shown = pd.DataFrame(table).rename(index=NAMES).rename_axis("configuration")
shown.style.format(lambda v: f"{v:g}" if np.isfinite(v) else "–")

# %%
# Is that all momentum buys? At :math:`\eta = 0.01` the four runs answer it, paired by
# seed (:func:`~fashion_optim.plotting.larger_step_sentences`). At other rates, and with
# each optimizer tuned, the answer may differ:
# :ref:`chapter 6 <sphx_glr_auto_gallery_plot_06_tuned_comparison.py>` asks the same
# function with every rate of the tuning's first rung and the tuned runs.

for sentence in plotting.larger_step_sentences(runs)[1]:
    say(sentence)

# %%
# Paths on toy surfaces
# ---------------------
# Two surfaces (:data:`~fashion_optim.toys.SURFACES`), the four optimizers run by
# :func:`~fashion_optim.toys.optimize_path`. The quadratic :math:`\tfrac12 (x^2 + 20 y^2)`
# has curvatures 1 and 20: SGD is stable below :math:`\eta = 2/20`, momentum below
# :math:`2(1+\mu)/20`; at :math:`\eta = 0.01`, SGD at :math:`\eta/(1-\mu)` sits on its edge
# of stability, momentum at :math:`\eta` well inside its own. On Rosenbrock's valley, at
# :math:`\eta = 10^{-3}`, momentum swings from wall to wall; Nesterov, looking ahead, brakes.

TOY = {"quadratic": (0.01, 100), "rosenbrock": (1e-3, 300)}  # rate, steps
STYLES = {"sgd": {"lw": 1.0, "zorder": 4}}
STYLES["sgd_effective"] = {"ls": "--", "lw": 0.8, "alpha": 0.45}
values, toy = {}, {}
fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.8), layout="constrained")
for ax, (name, (lr_toy, n_steps)) in zip(axes, TOY.items(), strict=True):
    surface, paths = toys.SURFACES[name], toy.setdefault(name, {})
    for key in FOUR:
        cfg = runs[key].config
        lr = lr_toy * cfg.lr / runs["sgd"].config.lr
        make = functools.partial(torch.optim.SGD, lr=lr, **cfg.optimizer_kwargs)
        paths[key] = toys.optimize_path(surface, make, n_steps)
        path = torch.from_numpy(paths[key])
        values[name, key] = surface.fn(path).detach().numpy()
    plotting.toy_paths(ax, surface, paths, labels=NAMES, styles=STYLES)
    ax.set_title(f"{name}, η = {lr_toy:g}, {n_steps} steps")
plotting.legend_below(axes[0], ncols=4)
plt.show()

# %%
# The value reached, and the steps each path needed to get below a hundredth of its
# starting value:

hit = {k: np.flatnonzero(f < f[0] / 100) for k, f in values.items()}
table = {"f at the end": {k: f[-1] for k, f in values.items()}}
table["steps to f0/100"] = {
    k: h[0] if h.size else "never" for k, h in hit.items()
}
for name in TOY:
    f = {key: values[name, key][-1] for key in FOUR}
    w = {(a, b): "below" if f[a] < f[b] else "not below" for a in f for b in f}
    say(
        f"On the {name}, momentum ends {w['momentum', 'sgd']} plain SGD; "
        f"Nesterov {w['nesterov', 'sgd']} it and {w['nesterov', 'momentum']} "
        "momentum."
    )
table = pd.DataFrame(table).rename(index=NAMES, level=1)
table = table.rename_axis(["surface", "optimizer"])
table.style.format("{:.2e}", subset="f at the end", na_rep="diverged")

# %%
# Step by step, with Adam
# -----------------------
# The paths as they unfold, with Adam's (:class:`torch.optim.Adam`,
# :cite:p:`kingma2015adam`) added. While a coordinate's gradient keeps its sign, Adam steps
# about :math:`\eta` along it whatever the gradient's size (:math:`|\hat m_t| \approx
# \sqrt{\hat v_t}`): its rate is a length per step, so we set it from the surface, to
# twice the start's largest distance from the minimum over the run's steps. Press play,
# or drag the slider.

ADAM = experiments.NAMED["adam"].name
with_adam = {}
for name, (_, n_steps) in TOY.items():
    surface = toys.SURFACES[name]
    lr = 2 * np.abs(np.subtract(surface.start, surface.minimum)).max() / n_steps
    make = functools.partial(torch.optim.Adam, lr=lr)
    adam = toys.optimize_path(surface, make, n_steps)
    with_adam[name] = {key: toy[name][key] for key in THREE} | {"adam": adam}
    end = surface.fn(torch.from_numpy(adam[-1])).item()
    sgd_end = values[name, "sgd"][-1]
    say(
        f"On the {name}, {ADAM} at η = {lr:.3g} ends at f = {end:.2e}, "
        f"{'below' if end < sgd_end else 'not below'} plain SGD."
    )
toy_anim = plotting.toy_animation(with_adam, labels=NAMES | {"adam": ADAM})
plt.show()
# sphinx_gallery_capture_repr_block = ()
toy_anim  # in a notebook, the player is the cell's value

# %%
# Paths on the CNN's loss surface
# -------------------------------
# The toy surfaces have two parameters; the CNN has tens of thousands. A later chapter,
# :ref:`sphx_glr_auto_gallery_plot_08_loss_landscape.py`, draws these optimizers' paths
# on the plane through their shared start that holds most of their trajectories, and
# measures what such a plane leaves out: the loss at each snapshot beside the contour
# value under it, the loss on a random plane through the final weights, and how much of
# a random walk's variance its own plane would hold.

# %%
# Takeaways
# ---------
# - At one learning rate, momentum's buffer makes its steps on a steady gradient
#   :math:`1/(1-\mu)` times plain SGD's; the curves and tables say how much faster it
#   trained in this build (how much farther it went:
#   :ref:`chapter 8 <sphx_glr_auto_gallery_plot_08_loss_landscape.py>`).
# - Torch's momentum buffer is :math:`1/(1-\mu)` times an EWMA of the gradients, without
#   bias correction: the step grows from :math:`\eta g_1` to its full size over a few
#   tens of steps, and the averaging cuts the mini-batch noise.
# - In the long run momentum steps like SGD at :math:`\eta/(1-\mu)`; they differ in the
#   transient (the buffer must fill), in each step's noise, and on a stiff problem in
#   stability: SGD at :math:`\eta/(1-\mu)` sits on the quadratic's edge of stability.
#   Whether momentum keeps an advantage over SGD with its larger step is measured
#   above at :math:`\eta = 0.01`, and in chapter 6 across the rates and tuned.
# - Nesterov's gradient, taken where the velocity is heading, damps momentum's swing
#   across a narrow valley; braking is not speed (the toy table).
#
# References
# ----------
# Momentum and Nesterov's method for deep networks, and its look-ahead form, follow
# :cite:t:`sutskever2013importance`; the method is due to :cite:t:`nesterov1983method`.
# Torch's formulation, and momentum as an EWMA, are discussed by :cite:t:`godoy2022deep`.
# The data set is Fashion-MNIST :cite:p:`xiao2017fashion`. See the
# :doc:`bibliography </references>`.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_01_ewma_bias_correction.py`: the EWMA and its bias.
# - :ref:`sphx_glr_auto_gallery_plot_03_adam_adapted_gradients.py`: Adam's moments.
# - :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`: choosing the learning rate.
# - :ref:`sphx_glr_auto_gallery_plot_07_momentum_theory.py`: the quadratic's rates, in theory.
# - :ref:`sphx_glr_auto_gallery_plot_08_loss_landscape.py`: these optimizers' paths on
#   the network's loss surface, and what a plane leaves out.
# - :class:`torch.optim.SGD`, :func:`fashion_optim.plotting.toy_paths`,
#   :func:`fashion_optim.plotting.toy_animation`.
