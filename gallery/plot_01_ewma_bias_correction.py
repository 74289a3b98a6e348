# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
==========================================
Moving averages and Adam's bias correction
==========================================

Momentum and Adam do not follow each mini-batch's gradient but an exponentially
weighted moving average (EWMA) of it. We record real per-mini-batch gradients of the
LeNet-like CNN training on Fashion-MNIST, smooth them with EWMAs of two :math:`\beta`,
and look at the two properties that decide how an EWMA behaves: its bias towards zero
at the start, which Adam's correction divides out, and its *age*, how far back it looks.
In the figures, look at the first steps (the bias) and at the lag behind the raw series
(the age).

.. math::

    m_0 = 0, \qquad m_t = \beta\, m_{t-1} + (1 - \beta)\, g_t, \qquad
    \hat m_t = \frac{m_t}{1 - \beta^t}
"""

# %%
# Setup
# -----
# Everything below runs on the real data through :func:`fashion_optim.experiments.run`,
# which trains once and caches the result. The seed fixes the initial weights and the
# order of the mini-batches. The published site trains on all 50,000 training images
# for 10 epochs; the quick profile (``FASHION_OPTIM_PROFILE=quick``) on 10,000 for 3.

# sphinx_gallery_thumbnail_number = 2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from fashion_optim import ewma, experiments, plotting
from fashion_optim.device import resolve_device

SEED = 0
device = resolve_device("auto")  # CUDA when available, else the CPU
profile = experiments.current_profile()
plotting.use_style()
BETAS = (0.9, 0.99)
OKABE = plotting.OKABE_ITO
BETA_COLORS = {0.9: OKABE["reddish_purple"], 0.99: OKABE["black"]}
SMA_COLOR = OKABE["blue"]
BETA_INDEX = pd.Index([str(beta) for beta in BETAS], name="β")  # table rows
print(f"profile {profile.name!r} ({profile.description})")
print(f"seed {SEED}, device {device}")

# %%
# Record the gradient of plain SGD
# --------------------------------
# We train with plain SGD, without momentum, so that nothing in the optimizer averages
# the gradient for us: each value is what one mini-batch says. A
# :class:`~fashion_optim.recorders.GradientRecorder` keeps, at every step, the gradient
# of one weight (the centre tap of the first 5x5 filter of the first convolution) and
# the L2 norm of that layer's whole gradient. The table gives this build's data size,
# epochs and steps.

LAYER = "features.0.weight"  # first convolution, 6 filters of shape 1x5x5
# chapter 2's plain SGD
result = experiments.run(experiments.NAMED["sgd"], seed=SEED)
grad = result.gradient(LAYER)[:, 0].astype(np.float64)
grad_norm = result.gradient_norm(LAYER).astype(np.float64)
steps = np.arange(1, len(grad) + 1)
steps_per_epoch = int(result.meta["steps_per_epoch"])
cfg = result.config
source = "cache" if result.from_cache else "trained now"
facts = {
    "optimizer": f"{cfg.optimizer}, lr {cfg.lr:g}, batch {cfg.batch_size}",
    "training images": f"{result.meta['train_size']:,}",
    "epochs": f"{cfg.epochs}",
    "steps": f"{len(steps):,} ({steps_per_epoch} per epoch)",
    "recorded weight": f"{LAYER}, flat index {experiments.PROBES[LAYER][0]}",
    "test accuracy": f"{result.test_acc:.3f}",
    "training time": f"{result.meta['wall_time']:.1f} s ({source})",
}
pd.Series(facts, name=f"plain SGD, seed {SEED}").to_frame()

# %%
# Raw gradients and their EWMAs
# -----------------------------
# With :func:`fashion_optim.ewma.ewma`, :math:`\beta = 0.9` follows the changes of the
# average; :math:`\beta = 0.99` is smoother and lags behind. Compare how far the single
# weight's gradient swings from one mini-batch to the next with how far its averages
# move, and look at the start: both EWMAs begin near zero, the larger :math:`\beta` for
# longer. That is the bias of the next section.

fig, axes = plt.subplots(
    2, 1, figsize=(7, 6), sharex=True, layout="constrained"
)
GRAD_LABEL = r"$\partial L / \partial w$ (nat per unit $w$)"
NORM_LABEL = r"$\|\nabla_W L\|_2$ of conv 1 (nat per unit $w$)"
RAW = "raw, per mini-batch"
panels = ((grad, GRAD_LABEL), (grad_norm, NORM_LABEL))
for ax, (values, ylabel) in zip(axes, panels, strict=True):
    ax.plot(steps, values, color=plotting.NEUTRAL, lw=0.8, label=RAW)
    for beta in BETAS:
        label, smooth = f"EWMA β = {beta}", ewma.ewma(values, beta)
        ax.plot(steps, smooth, color=BETA_COLORS[beta], label=label)
    ax.set_ylabel(ylabel)
axes[0].axhline(0.0, color="black", lw=0.6)
axes[0].set_title("One weight of the first convolution")
axes[1].set_title("Gradient norm of the whole layer")
plotting.label_step_axis(axes[0], steps_per_epoch)
axes[0].set_xlabel("")
plotting.label_step_axis(axes[1])
plotting.legend_below(axes[1], ncols=3)
plt.show()

# %%
# The single weight's gradient over the whole run: its mean against its spread from
# one mini-batch to the next.

spread = grad.std() / abs(grad.mean())
print(
    f"mean {grad.mean():.2e}, std {grad.std():.2e}: the std is {spread:.1f} x "
    "|mean|"
)

# %%
# Bias correction on the first steps
# ----------------------------------
# Started from :math:`m_0 = 0`, the EWMA of a constant :math:`c` is
# :math:`c\,(1 - \beta^t)`: its weights sum to :math:`1 - \beta^t`, not to one.
# :func:`fashion_optim.ewma.bias_corrected` divides by that sum, as Adam does
# :cite:p:`kingma2015adam`. Left: the first steps of the real gradient norm. Right: a
# constant series, closed forms as lines and the two averages of it as dots.

n_first = min(50, len(steps))
t = steps[:n_first]
fig, (ax_real, ax_const) = plt.subplots(
    1, 2, figsize=(8.0, 4.4), layout="constrained"
)
ax_real.plot(t, grad_norm[:n_first], "o", ms=3, color=plotting.NEUTRAL)
for i, beta in enumerate(BETAS):
    # interleave the two βs' dots
    color, dots = BETA_COLORS[beta], slice(2 * i, None, 4)
    ax_real.plot(t, ewma.ewma(grad_norm, beta)[:n_first], "--", color=color)
    ax_real.plot(t, ewma.bias_corrected(grad_norm, beta)[:n_first], color=color)
    ax_const.plot(t, 1 - beta**t, "--", color=color)
    for average in (ewma.ewma, ewma.bias_corrected):
        ones = average(np.ones(n_first), beta)
        ax_const.plot(t[dots], ones[dots], "o", ms=4, color=color)
ax_const.axhline(1.0, color=plotting.NEUTRAL, zorder=1)
ax_real.set(ylabel=NORM_LABEL, ylim=(0, None), title="Real gradient norm")
ax_const.set_ylabel("EWMA of the constant 1 (no unit)")
ax_const.set(ylim=(0, 1.1), title="Constant series")
for ax in (ax_real, ax_const):
    plotting.label_step_axis(ax)
dot = {"marker": "o", "ls": ""}
key = [Line2D([], [], color=BETA_COLORS[b], label=f"β = {b}") for b in BETAS]
key += [
    Line2D([], [], color="0.35", ls="--", label=r"$m_t$, uncorrected"),
    Line2D([], [], color="0.35", label=r"$\hat m_t$, corrected"),
    Line2D([], [], color=plotting.NEUTRAL, ms=3, label="raw (left)", **dot),
    Line2D([], [], color="0.35", ms=4, label="computed (right)", **dot),
]
plotting.legend_below(
    ax_real, 6, handles=key, handlelength=1.6, columnspacing=1
)
plt.show()

# %%
# The first steps of the real series, in nat per unit of weight. At step 1 the
# uncorrected EWMA is :math:`(1 - \beta)\,g_1`, a tenth or a hundredth of the value;
# the corrected one is :math:`g_1` itself, for any :math:`\beta`. What the real series
# adds is how far each average sits from the values it averages, over the first steps
# (the lines above the table: the mean of average / raw − 1).

rows = np.array([s for s in (1, 2, 3, 5, 10, 20, 50) if s <= len(steps)])
columns = {"‖g‖": grad_norm}
for beta in BETAS:
    columns[f"m, β = {beta}"] = ewma.ewma(grad_norm, beta)
    columns[f"m̂, β = {beta}"] = ewma.bias_corrected(grad_norm, beta)
first_steps = pd.DataFrame({k: v[rows - 1] for k, v in columns.items()})
n_bias = min(20, len(steps))
for beta in BETAS:
    off = [
        np.mean(columns[f"{n}, β = {beta}"][:n_bias] / grad_norm[:n_bias] - 1)
        for n in ("m", "m̂")
    ]
    words = [f"{abs(x):.1%} {'below' if x < 0 else 'above'}" for x in off]
    print(
        f"β = {beta}, steps 1-{n_bias}, on average: m {words[0]} the raw norm, "
        f"m̂ {words[1]}"
    )
first_steps.index = pd.Index(rows, name="step")
first_steps.round(5)

# %%
# The age of an EWMA
# ------------------
# At any step the EWMA gives the value :math:`k` steps back the weight
# :math:`(1 - \beta)\beta^k` (:func:`fashion_optim.ewma.ewma_weights`). Their average
# age is :math:`\beta / (1 - \beta)` steps (:func:`fashion_optim.ewma.ewma_age`); a
# simple moving average (SMA) of :math:`n = (1 + \beta)/(1 - \beta)` values has the
# same average age (:func:`fashion_optim.ewma.sma_window_for_age`)
# :cite:p:`godoy2022deep`. Both sets of weights have area one: look at how the EWMA's
# weights spread beyond the SMA's window while their average age is the same.

fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.8), layout="constrained")
for ax, beta in zip(axes, BETAS, strict=True):
    age, window = ewma.ewma_age(beta), round(ewma.sma_window_for_age(beta))
    horizon = 4 * window
    # w[k] is the weight of the value k back
    w = ewma.ewma_weights(beta, horizon)[::-1]
    color = BETA_COLORS[beta]
    bars = ax.bar(np.arange(horizon), w, width=1.0, color=color, alpha=0.55)
    flat = [1 / window, 1 / window, 0]
    (sma,) = ax.step([0, window, window], flat, color=SMA_COLOR)
    mean_age = ax.axvline(age, color=OKABE["vermillion"], ls=":")
    ax.set(
        xlabel="age k (steps back)", ylabel="weight (fraction of the average)"
    )
    labels = [f"EWMA β = {beta}", f"SMA, window {window}"]
    labels.append(f"average age {age:.0f}")
    ax.legend([bars, sma, mean_age], labels)
plt.show()

# %%
# The table adds :math:`1/(1-\beta)`, the rule-of-thumb "number of values averaged"
# often quoted for an EWMA: it is the age plus one, since the current value has age
# zero.

ages = {
    "average age β/(1−β) (steps)": [ewma.ewma_age(b) for b in BETAS],
    "1/(1−β) (steps)": [1 / (1 - b) for b in BETAS],
    "SMA window (1+β)/(1−β) (steps)": list(map(ewma.sma_window_for_age, BETAS)),
}
pd.DataFrame(ages, index=BETA_INDEX).round(1)

# %%
# EWMA against the SMA of the same age
# ------------------------------------
# Both averages now run on the real gradient of the single weight, the EWMA
# bias-corrected, the SMA with the window of the same age, over the first steps of
# training. On average they lag the raw series equally; the SMA drops a value at once
# after :math:`n` steps, the EWMA lets it fade.

n_zoom = min(400, len(steps))
x = steps[:n_zoom]
fig, axes = plt.subplots(
    2, 1, figsize=(7, 6), sharex=True, layout="constrained"
)
lo, hi = np.quantile(grad[:n_zoom], [0.01, 0.99])
for ax, beta in zip(axes, BETAS, strict=True):
    window = round(ewma.sma_window_for_age(beta))
    smooth_e, smooth_s = ewma.bias_corrected(grad, beta), ewma.sma(grad, window)
    ax.plot(x, grad[:n_zoom], color=plotting.NEUTRAL, lw=0.8, label="raw")
    label = f"EWMA β = {beta}, corrected"
    ax.plot(x, smooth_e[:n_zoom], color=BETA_COLORS[beta], label=label)
    label = f"SMA, window {window}"
    ax.plot(x, smooth_s[:n_zoom], "--", color=SMA_COLOR, label=label)
    ax.set(
        ylabel=GRAD_LABEL, ylim=(lo - 0.1 * (hi - lo), hi + 0.45 * (hi - lo))
    )
    ax.legend(loc="upper right", ncols=3)
plotting.label_step_axis(axes[-1])
plt.show()

# %%
# How far each average stays from the raw series: the standard deviation of
# raw − average over all steps of the run, in nat per unit of weight.

residuals, corrected = {}, ewma.bias_corrected
for beta in BETAS:
    window = round(ewma.sma_window_for_age(beta))
    residuals[str(beta)] = {
        "SMA window (steps)": window,
        "std(raw − EWMA)": f"{np.std(grad - corrected(grad, beta)):.2e}",
        "std(raw − SMA)": f"{np.std(grad - ewma.sma(grad, window)):.2e}",
    }
pd.DataFrame.from_dict(residuals, orient="index").rename_axis("β")

# %%
# How long the bias lasts
# -----------------------
# The bias depends on :math:`\beta` alone, not on the data: since :math:`\hat m_t` is
# defined as :math:`m_t / (1 - \beta^t)`, the ratio :math:`m_t / \hat m_t = 1 - \beta^t`
# on any series, real or constant, an identity with nothing to measure. The missing
# share :math:`\beta^t` falls under 1 % after :math:`\lceil \ln 0.01 / \ln\beta \rceil`
# steps; the last column evaluates :math:`1 - \beta^T` at this run's last step
# :math:`T`, the share of the average that the uncorrected EWMA gives there.

last = len(steps)
bias = {
    "steps to bias < 1 %": [
        int(np.ceil(np.log(0.01) / np.log(b))) for b in BETAS
    ],
    f"1 − β^T at T = {last}": [round(1 - b**last, 4) for b in BETAS],
}
pd.DataFrame(bias, index=BETA_INDEX)

# %%
# Takeaways
# ---------
# - An EWMA with :math:`\beta` averages values whose average age is
#   :math:`\beta/(1-\beta)` steps (the age table): the larger :math:`\beta`, the
#   smoother and the later it reacts.
# - Started from zero, it is the corrected average times :math:`1 - \beta^t`, by
#   definition, whatever the data; the lines above the first-step table say how far
#   from the real gradient norm that leaves it. The bias lasts for the number of steps
#   in the last table, ten times longer with :math:`\beta = 0.99`; a run shorter than
#   that never sheds it (the last column gives the share of the average the uncorrected
#   EWMA reaches at this run's last step).
# - Dividing by :math:`1 - \beta^t` removes it exactly: on a constant series the
#   corrected EWMA is the constant from the first step, and on real gradients it
#   starts at :math:`g_1` instead of a fraction of it.
# - A simple moving average with window :math:`(1+\beta)/(1-\beta)` has the same age;
#   the EWMA needs no buffer of past values and forgets smoothly.
#
# References
# ----------
# The bias correction is Adam's :cite:p:`kingma2015adam`; the age of an EWMA and its
# comparison with a simple moving average follow :cite:t:`godoy2022deep`. The data set
# is Fashion-MNIST :cite:p:`xiao2017fashion`. See the
# :doc:`bibliography </references>` for full entries.
#
# See also
# --------
# - :func:`fashion_optim.ewma.ewma`, :func:`fashion_optim.ewma.bias_corrected`,
#   :func:`fashion_optim.ewma.ewma_weights`, :func:`fashion_optim.ewma.ewma_age`,
#   :func:`fashion_optim.ewma.sma_window_for_age` and :func:`fashion_optim.ewma.sma`:
#   the functions used here.
# - :func:`fashion_optim.experiments.run` and
#   :class:`fashion_optim.recorders.GradientRecorder`: how the gradients were recorded.
# - :class:`torch.optim.Adam`: its ``betas`` are the :math:`\beta` of two bias-corrected
#   EWMAs, of the gradient and of its square.
# - :class:`torch.optim.SGD`: its momentum buffer is an EWMA without the
#   :math:`1 - \beta` factor and without bias correction.
# - :ref:`sphx_glr_auto_gallery_plot_03_adam_adapted_gradients.py`: both EWMAs at work
#   inside Adam.
