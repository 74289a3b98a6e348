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

.. math::

    m_0 = 0, \qquad m_t = \beta\, m_{t-1} + (1 - \beta)\, g_t, \qquad
    \hat m_t = \frac{m_t}{1 - \beta^t}
"""

# %%
# Setup
# -----
# Everything below runs on the real data through :func:`fashion_optim.experiments.run`,
# which trains once and caches the result. The profile (``FASHION_OPTIM_PROFILE``)
# decides how much data and how many epochs; the seed fixes the initial weights and
# the order of the mini-batches.

# sphinx_gallery_thumbnail_number = 2
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from fashion_optim import ewma, experiments, plotting
from fashion_optim.training import resolve_device

SEED = 0
device = resolve_device("auto")  # CUDA when available, else the CPU
profile = experiments.current_profile()
plotting.use_style()
BETAS = (0.9, 0.99)
BETA_COLORS = {0.9: plotting.OKABE_ITO["reddish_purple"], 0.99: plotting.OKABE_ITO["black"]}
SMA_COLOR = plotting.OKABE_ITO["blue"]
print(f"profile {profile.name!r} ({profile.description})")
print(f"seed {SEED}, device {device}")

# %%
# Record the gradient of plain SGD
# --------------------------------
# We train with plain SGD, without momentum, so that nothing in the optimizer averages
# the gradient for us: each value is what one mini-batch says. A
# :class:`~fashion_optim.training.GradientRecorder` keeps, at every step, the gradient
# of one weight (the centre tap of the first 5x5 filter of the first convolution) and
# the L2 norm of that layer's whole gradient. The table gives the data size and epochs.

LAYER = "features.0.weight"  # first convolution, 6 filters of shape 1x5x5
print(f"recorded weights: {experiments.PROBES}")  # flat index 12: the first filter's centre
spec = experiments.NAMED["sgd"]  # the same run chapter 2 compares with momentum
result = experiments.run(spec, seed=SEED)

grad = result.records[f"grad/{LAYER}"][:, 0].astype(np.float64)
grad_norm = result.records[f"grad_norm/{LAYER}"].astype(np.float64)
steps = np.arange(1, len(grad) + 1)
steps_per_epoch = int(result.meta["steps_per_epoch"])
cfg = result.config
print(f"{'optimizer':<18}{cfg['optimizer']}, lr {cfg['lr']}, batch {cfg['batch_size']}")
print(f"{'training images':<18}{result.meta['train_size']:,}")
print(f"{'epochs':<18}{cfg['epochs']}")
print(f"{'steps':<18}{len(steps):,} ({steps_per_epoch} per epoch)")
print(f"{'test accuracy':<18}{result.test_acc:.3f}")
source = "cache" if result.from_cache else "trained now"
print(f"{'training time':<18}{result.meta['wall_time']:.1f} s ({source})")

# %%
# Raw gradients and their EWMAs
# -----------------------------
# The single weight's gradient is mostly noise: from one mini-batch to the next it
# swings far more than its average moves. The layer's gradient norm is steadier. With
# :func:`fashion_optim.ewma.ewma`, :math:`\beta = 0.9` follows the changes of the
# average; :math:`\beta = 0.99` is smoother and lags behind. Look at the start: both
# begin near zero, the larger :math:`\beta` for longer. That is the bias of the next
# section.

fig, axes = plt.subplots(2, 1, figsize=(7.0, 6.0), sharex=True, layout="constrained")
GRAD_LABEL = r"$\partial L / \partial w$ (nat per unit $w$)"
NORM_LABEL = r"$\|\nabla_W L\|_2$ of conv 1 (nat per unit $w$)"
for ax, values, ylabel in zip(axes, (grad, grad_norm), (GRAD_LABEL, NORM_LABEL), strict=True):
    ax.plot(steps, values, color=plotting.NEUTRAL, lw=0.8, label="raw, per mini-batch")
    for beta in BETAS:
        ax.plot(steps, ewma.ewma(values, beta), color=BETA_COLORS[beta], label=f"EWMA β = {beta}")
    ax.set_ylabel(ylabel)
axes[0].axhline(0.0, color="black", lw=0.6)
axes[0].set_title("One weight of the first convolution")
axes[1].set_title("Gradient norm of the whole layer")
plotting.label_step_axis(axes[0], steps_per_epoch)
axes[0].set_xlabel("")
plotting.label_step_axis(axes[1])
fig.legend(*axes[1].get_legend_handles_labels(), loc="outside lower center", ncols=3)
plt.show()

# %%
# Bias correction on the first steps
# ----------------------------------
# Started from :math:`m_0 = 0`, the EWMA of a constant :math:`c` is
# :math:`c\,(1 - \beta^t)`: its weights sum to :math:`1 - \beta^t`, not to one.
# :func:`fashion_optim.ewma.bias_corrected` divides by that sum, as Adam does
# :cite:p:`kingma2015adam`. Left: the first steps of the real gradient norm. Right: a
# constant series, closed forms as lines and the values the library computes as dots.

n_first = min(50, len(steps))
t = steps[:n_first]
constant = np.ones(n_first)
fig, (ax_real, ax_const) = plt.subplots(1, 2, figsize=(8.0, 4.4), layout="constrained")
ax_real.plot(t, grad_norm[:n_first], "o", ms=3, color=plotting.NEUTRAL)
for i, beta in enumerate(BETAS):
    color, dots = BETA_COLORS[beta], slice(2 * i, None, 4)  # interleave the two βs' dots
    ax_real.plot(t, ewma.ewma(grad_norm, beta)[:n_first], "--", color=color)
    ax_real.plot(t, ewma.bias_corrected(grad_norm, beta)[:n_first], color=color)
    ax_const.plot(t, 1 - beta**t, "--", color=color)
    ax_const.plot(t[dots], ewma.ewma(constant, beta)[dots], "o", ms=4, color=color)
    ax_const.plot(t[dots], ewma.bias_corrected(constant, beta)[dots], "o", ms=4, color=color)
ax_const.axhline(1.0, color=plotting.NEUTRAL, zorder=1)
ax_real.set(ylabel=NORM_LABEL, ylim=(0, None), title="Real gradient norm")
ax_const.set(ylabel="EWMA of the constant 1 (no unit)", ylim=(0, 1.1), title="Constant series")
for ax in (ax_real, ax_const):
    plotting.label_step_axis(ax)
key = [Line2D([], [], color=BETA_COLORS[b], label=f"β = {b}") for b in BETAS] + [
    Line2D([], [], color="0.35", ls="--", label=r"$m_t$, uncorrected"),
    Line2D([], [], color="0.35", label=r"$\hat m_t$, corrected"),
    Line2D([], [], color=plotting.NEUTRAL, marker="o", ms=3, ls="", label="raw (left)"),
    Line2D([], [], color="0.35", marker="o", ms=4, ls="", label="computed (right)"),
]
fig.legend(handles=key, loc="outside lower center", ncols=6, handlelength=1.6, columnspacing=1)
plt.show()

# %%
# The table prints the first steps of the real series. At step 1 the uncorrected EWMA
# is :math:`(1 - \beta)\,g_1`, a tenth or a hundredth of the value; the corrected one
# is :math:`g_1` itself, for any :math:`\beta`.

m = {b: ewma.ewma(grad_norm, b) for b in BETAS}
m_hat = {b: ewma.bias_corrected(grad_norm, b) for b in BETAS}
header = "".join(f" {f'm ({b})':>10} {f'm̂ ({b})':>10}" for b in BETAS)
print(f"{'step':>5} {'‖g‖':>9}{header}")
for step in [s for s in (1, 2, 3, 5, 10, 20, 50) if s <= len(steps)]:
    row = "".join(f" {m[b][step - 1]:10.5f} {m_hat[b][step - 1]:10.5f}" for b in BETAS)
    print(f"{step:>5} {grad_norm[step - 1]:9.5f}{row}")

# %%
# The age of an EWMA
# ------------------
# At any step the EWMA gives the value :math:`k` steps back the weight
# :math:`(1 - \beta)\beta^k` (:func:`fashion_optim.ewma.ewma_weights`). Their average
# age is :math:`\beta / (1 - \beta)` steps (:func:`fashion_optim.ewma.ewma_age`); a
# simple moving average (SMA) of :math:`n = (1 + \beta)/(1 - \beta)` values has the
# same average age (:func:`fashion_optim.ewma.sma_window_for_age`)
# :cite:p:`godoy2022deep`. Both sets of weights have area one. The table also prints
# :math:`1/(1-\beta)`, the rule-of-thumb "number of values averaged" often quoted for an
# EWMA: it is the age plus one, since the current value has age zero.

fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.8), layout="constrained")
age_table = []
for ax, beta in zip(axes, BETAS, strict=True):
    age, window = ewma.ewma_age(beta), round(ewma.sma_window_for_age(beta))
    horizon = 4 * window
    w = ewma.ewma_weights(beta, horizon)[::-1]  # w[k] is the weight of the value k back
    k = np.arange(horizon)
    ax.bar(k, w, width=1.0, color=BETA_COLORS[beta], alpha=0.55, label=f"EWMA β = {beta}")
    sma_weights = [1 / window, 1 / window, 0]
    ax.step([0, window, window], sma_weights, color=SMA_COLOR, label=f"SMA, window {window}")
    ax.axvline(age, color=plotting.OKABE_ITO["vermillion"], ls=":", label=f"average age {age:.0f}")
    ax.set(xlabel="age k (steps back)", ylabel="weight (fraction of the average)")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[-1:] + handles[:-1], labels[-1:] + labels[:-1])  # the EWMA first
    long = ewma.ewma_weights(beta, 50 * window)[::-1]  # long enough that the tail is ~0
    measured = (long * np.arange(long.size)).sum() / long.sum()
    age_table.append((beta, age, 1 / (1 - beta), window, measured))
plt.show()

print(f"{'β':>5} {'age β/(1-β)':>12} {'1/(1-β)':>8} {'SMA window':>11} {'age from weights':>17}")
for beta, age, memory, window, measured in age_table:
    print(f"{beta:>5} {age:12.1f} {memory:8.1f} {window:11d} {measured:17.2f}")

# %%
# EWMA against the SMA of the same age
# ------------------------------------
# Both averages now run on the real gradient of the single weight, the EWMA
# bias-corrected, the SMA with the window of the same age, over the first steps of
# training. On average they lag the raw series equally; the SMA drops a value at once
# after :math:`n` steps, the EWMA lets it fade. The table compares how far each stays
# from the raw series.

n_zoom = min(400, len(steps))
x = steps[:n_zoom]
fig, axes = plt.subplots(len(BETAS), 1, figsize=(7.0, 6.0), sharex=True, layout="constrained")
lo, hi = np.quantile(grad[:n_zoom], [0.01, 0.99])
residuals = []
for ax, beta in zip(axes, BETAS, strict=True):
    window = round(ewma.sma_window_for_age(beta))
    smooth_e, smooth_s = ewma.bias_corrected(grad, beta), ewma.sma(grad, window)
    ax.plot(x, grad[:n_zoom], color=plotting.NEUTRAL, lw=0.8, label="raw")
    ax.plot(x, smooth_e[:n_zoom], color=BETA_COLORS[beta], label=f"EWMA β = {beta}, corrected")
    ax.plot(x, smooth_s[:n_zoom], "--", color=SMA_COLOR, label=f"SMA, window {window}")
    ax.set(ylabel=GRAD_LABEL, ylim=(lo - 0.1 * (hi - lo), hi + 0.45 * (hi - lo)))
    ax.legend(loc="upper right", ncols=3)
    residuals.append((beta, window, np.std(grad - smooth_e), np.std(grad - smooth_s)))
plotting.label_step_axis(axes[-1])
plt.show()

print(f"{'β':>5} {'window':>7} {'std(raw - EWMA)':>16} {'std(raw - SMA)':>15}  (all steps)")
for beta, window, res_e, res_s in residuals:
    print(f"{beta:>5} {window:7d} {res_e:16.2e} {res_s:15.2e}")

# %%
# Numbers for the takeaways
# -------------------------
# How many steps the bias takes to fall under 1 %, and how much of the average the
# uncorrected EWMA of the gradient norm still misses at the last recorded step.

last = len(steps)
print(f"{'β':>5} {'age':>6} {'steps to bias < 1 %':>20} {f'm_T / m̂_T at T = {last}':>24}")
for beta in BETAS:
    steps_to_1pct = int(np.ceil(np.log(0.01) / np.log(beta)))
    ratio = ewma.ewma(grad_norm, beta)[-1] / ewma.bias_corrected(grad_norm, beta)[-1]
    print(f"{beta:>5} {ewma.ewma_age(beta):6.0f} {steps_to_1pct:20d} {ratio:24.4f}")

# sphinx_gallery_start_ignore
# Sanity checks, hidden on the site: the corrected EWMA of a constant is the constant,
# the weights sum to 1 - beta^t, and weighting the real series gives the recursion's value.
for beta in BETAS:
    np.testing.assert_allclose(ewma.bias_corrected(np.full(500, 3.7), beta), 3.7, rtol=1e-12)
    for t_check in (1, 10, last):
        weights = ewma.ewma_weights(beta, t_check)
        np.testing.assert_allclose(weights.sum(), 1 - beta**t_check, rtol=1e-12)
        expected = ewma.ewma(grad_norm, beta)[t_check - 1]
        np.testing.assert_allclose(weights @ grad_norm[:t_check], expected, rtol=1e-10)
# sphinx_gallery_end_ignore

# %%
# Takeaways
# ---------
# - An EWMA with :math:`\beta` averages values whose average age is
#   :math:`\beta/(1-\beta)` steps (the ``age`` column): the larger :math:`\beta`, the
#   smoother and the later it reacts.
# - Started from zero, it underestimates by the factor :math:`1 - \beta^t`. The bias
#   lasts for the number of steps in the table, ten times longer with
#   :math:`\beta = 0.99`; a run shorter than that never sheds it (the last column shows
#   what is left of it at this run's last step).
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
#   :class:`fashion_optim.training.GradientRecorder`: how the gradients were recorded.
# - :class:`torch.optim.Adam`: its ``betas`` are the :math:`\beta` of two bias-corrected
#   EWMAs, of the gradient and of its square.
# - :class:`torch.optim.SGD`: its momentum buffer is an EWMA without the
#   :math:`1 - \beta` factor and without bias correction.
