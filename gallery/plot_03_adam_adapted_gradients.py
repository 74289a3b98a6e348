# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
=========================
Adam's adapted gradients
=========================

Adam :cite:p:`kingma2015adam` keeps two bias-corrected EWMAs per weight: one of the
gradient, which smooths it, and one of its square, which scales it. We record, at every
mini-batch, the gradient of one weight of the LeNet-like CNN training on Fashion-MNIST
and Adam's own state for it, rebuild both moments from the gradients alone, and follow
the three quantities Adam combines into its step. Then we compare Adam's learning
curves with the best SGD variant of the previous chapter.

With :math:`g_t` the mini-batch gradient, :math:`m_0 = v_0 = 0` and steps counted
from 1, :class:`torch.optim.Adam` computes

.. math::

    m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2,

    \hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad
    \hat v_t = \frac{v_t}{1 - \beta_2^t}, \qquad
    \theta_t = \theta_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.
"""

# %%
# Setup
# -----
# Every run goes through :func:`fashion_optim.experiments.run` or
# :func:`~fashion_optim.experiments.run_specs`, which train once and cache the result
# (``run_specs`` trains the runs the cache lacks several at a time).
# The seed fixes the initial weights and the order of the mini-batches; the single-seed
# sections use the profile's first seed.

# sphinx_gallery_thumbnail_number = 1
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D

from fashion_optim import ewma, experiments, plotting
from fashion_optim.training import resolve_device

profile = experiments.current_profile()
SEED = profile.seeds[0]  # the single-seed sections; run_specs uses all of profile.seeds
torch.manual_seed(SEED)
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
ADAM_COLOR = plotting.color_for("adam")
print(f"profile {profile.name!r} ({profile.description})")
print(f"seeds {list(profile.seeds)}")
print(f"single-seed sections: seed {SEED}, device {device}")

# %%
# Record Adam's gradients and state
# ---------------------------------
# The note's shared Adam run records, at every mini-batch, the gradient of two weights
# (:data:`~fashion_optim.experiments.PROBES`) and Adam's ``exp_avg`` and ``exp_avg_sq``
# for them, read *after* each step: the :math:`m_t` and :math:`v_t` that include
# :math:`g_t`. The spec sets no ``betas`` or ``eps``, so torch's defaults apply; we read
# them from torch itself.

spec = experiments.NAMED["adam"]  # shared with the note: unchanged, so the run is shared
result = experiments.run(spec, seed=SEED)
cfg = result.config
defaults = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]).defaults
hyper = {**defaults, **cfg["optimizer_kwargs"]}
BETA1, BETA2 = hyper["betas"]
EPS = hyper["eps"]
LR = cfg["lr"]
steps_per_epoch = int(result.meta["steps_per_epoch"])
n_steps = len(result.records[f"grad/{next(iter(experiments.PROBES))}"])
steps = np.arange(1, n_steps + 1)
print(f"{'optimizer':<18}Adam, lr {LR:g}, betas ({BETA1}, {BETA2}), eps {EPS:g}")
print(f"{'batch size':<18}{cfg['batch_size']}")
print(f"{'training images':<18}{result.meta['train_size']:,}")
print(f"{'epochs':<18}{cfg['epochs']}")
print(f"{'steps':<18}{n_steps:,} ({steps_per_epoch} per epoch)")
print(f"{'recorded weights':<18}{experiments.PROBES}")
print(f"{'test accuracy':<18}{result.test_acc:.4f} (seed {SEED})")
source = "cache" if result.from_cache else "trained now"
print(f"{'training time':<18}{result.meta['wall_time']:.1f} s ({source})")

# %%
# The moments, rebuilt from the gradients
# ---------------------------------------
# Adam's moments are the plain EWMAs of chapter 1: :func:`fashion_optim.ewma.ewma` of
# the recorded :math:`g_t` with :math:`\beta_1`, and of :math:`g_t^2` with
# :math:`\beta_2`, should give back ``exp_avg`` and ``exp_avg_sq`` (torch stores
# :math:`v_t`, not its square root). Torch updates them in float32, we recompute in
# float64: each step rounds at about :math:`6\times10^{-8}` of the value, and the EWMA
# damps old errors by :math:`\beta`, so they add up to at most about
# :math:`6\times10^{-8}/(1-\beta)` of the moment's scale, :math:`6\times10^{-5}` for
# :math:`\beta_2`. The table gives the largest difference, absolute and relative to the
# largest value of the moment (a ratio at each step would blow up where :math:`m_t`
# crosses zero).


def moments(probe):
    """Recorded gradient, torch's moments and the EWMAs rebuilt from the gradient."""
    g = result.records[f"grad/{probe}"][:, 0].astype(np.float64)
    torch_m = result.records[f"state/exp_avg/{probe}"][:, 0].astype(np.float64)
    torch_v = result.records[f"state/exp_avg_sq/{probe}"][:, 0].astype(np.float64)
    return g, {"m": (torch_m, ewma.ewma(g, BETA1)), "v": (torch_v, ewma.ewma(g**2, BETA2))}


RTOL = 1e-4  # of the moment's scale, above the float32 bound worked out above
print(f"{'weight':<20} {'moment':>6} {'max|torch - ewma|':>18} {'max|torch|':>11} {'ratio':>8}")
agreement = []
for probe in experiments.PROBES:
    _, pairs = moments(probe)
    for name, (recorded, rebuilt) in pairs.items():
        diff, scale = np.abs(recorded - rebuilt).max(), np.abs(recorded).max()
        agreement.append((probe, name, diff, scale))
        print(f"{probe:<20} {name:>6} {diff:18.2e} {scale:11.2e} {diff / scale:8.1e}")

# sphinx_gallery_start_ignore
# Hidden check: the library's EWMAs are Adam's moments, to float32 rounding.
for probe, name, diff, scale in agreement:
    if not diff <= RTOL * scale:
        raise AssertionError(
            f"ewma of the recorded gradients does not match Adam's {name} for {probe}: "
            f"max |difference| {diff:.3e} > {RTOL:g} x scale {scale:.3e}."
        )
# sphinx_gallery_end_ignore

# %%
# Smoothing, scaling and the adapted gradient
# -------------------------------------------
# One weight, the centre tap of the first 5x5 filter of the first convolution, at every
# mini-batch. Top: the raw gradient and its bias-corrected EWMA with :math:`\beta_1`,
# the direction Adam follows; the inset zooms on the two EWMAs over the first steps,
# where the uncorrected :math:`m_t` (dashed) starts at a tenth of the corrected one.
# Middle: the scaling factor :math:`1/(\sqrt{\hat v_t}+\epsilon)`, on a log axis; the
# uncorrected one (dashed) starts :math:`1/\sqrt{1-\beta_2}` times too large. Bottom:
# the adapted gradient :math:`\hat m_t/(\sqrt{\hat v_t}+\epsilon)`, Adam's step
# divided by :math:`\eta` (left axis, no unit), against the raw gradient (grey, right
# axis).

PROBE = "features.0.weight"
g, pairs = moments(PROBE)
m, v = pairs["m"][1], pairs["v"][1]  # the float64 EWMAs, equal to torch's (table above)
m_hat = ewma.bias_corrected(g, BETA1)
v_hat = ewma.bias_corrected(g**2, BETA2)
scaling = 1.0 / (np.sqrt(v_hat) + EPS)
adapted = m_hat * scaling
n_zoom = min(20, n_steps)  # the inset: the steps where m_t is still far from m̂_t

fig, axes = plt.subplots(
    3, 1, figsize=(7.5, 9.4), sharex=True, height_ratios=(1.35, 1, 1), layout="constrained"
)
ax_m, ax_v, ax_a = axes
ax_m.plot(steps, g, color=plotting.NEUTRAL, lw=0.7)
ax_m.plot(steps, m_hat, color=ADAM_COLOR)
ax_m.axhline(0.0, color="black", lw=0.6)
GRAD_LABEL = r"$\partial L/\partial w$ (nat per unit $w$)"
top = 1.05 * np.abs(g).max()
ax_m.set_ylim(-top, 2.2 * top)  # room above the data for the inset
ax_m.set_ylabel(GRAD_LABEL)
ax_m.set_title(r"EWMA for smoothing ($\beta_1$)", pad=44)  # above the epoch axis
inset = ax_m.inset_axes([0.5, 0.55, 0.48, 0.32])
# the inset shows the two EWMAs only, on their own scale: the raw gradients of these
# steps are several times larger and would flatten the difference the inset is for
inset.plot(steps[:n_zoom], m[:n_zoom], "--o", ms=2.5, color=ADAM_COLOR, lw=1.4)
inset.plot(steps[:n_zoom], m_hat[:n_zoom], "-o", ms=2.5, color=ADAM_COLOR, lw=1.4)
inset.axhline(0.0, color="black", lw=0.6)
zoom_top = 1.15 * max(np.abs(m_hat[:n_zoom]).max(), np.abs(m[:n_zoom]).max())
inset.set_ylim(-zoom_top, zoom_top)
inset.set_title(f"zoom, EWMAs only: steps 1 to {n_zoom}", fontsize=9)
inset.tick_params(labelsize=8)

ax_v.plot(steps, scaling, color=ADAM_COLOR)
ax_v.plot(steps, 1.0 / (np.sqrt(v) + EPS), "--", color=ADAM_COLOR, lw=1.3)
ax_v.set_yscale("log")
ax_v.set(
    title=r"EWMA for scaling ($\beta_2$)", ylabel=r"$1/(\sqrt{\hat v_t}+\epsilon)$ ($w$ per nat)"
)

twin = ax_a.twinx()
twin.plot(steps, g, color=plotting.NEUTRAL, lw=0.7)
twin.spines["right"].set_visible(True)
twin.set_ylabel("raw " + GRAD_LABEL, color="0.45")
twin.grid(False)
ax_a.plot(steps, adapted, color=ADAM_COLOR, lw=0.9, alpha=0.8)  # the raw one shows through
ax_a.set_zorder(twin.get_zorder() + 1)  # the adapted gradient in front of the raw one
ax_a.patch.set_visible(False)
for ax, values in ((ax_a, adapted), (twin, g)):  # symmetric limits: both zeros line up
    lim = 1.1 * np.abs(values).max()
    ax.set_ylim(-lim, lim)
ax_a.axhline(0.0, color="black", lw=0.6)
ax_a.set(title="Adapted gradient", ylabel=r"$\hat m_t/(\sqrt{\hat v_t}+\epsilon)$ (no unit)")
plotting.label_step_axis(ax_m, steps_per_epoch)
ax_m.set_xlabel("")
plotting.label_step_axis(ax_a)
key = [
    Line2D([], [], color=plotting.NEUTRAL, label="raw gradient"),
    Line2D([], [], color=ADAM_COLOR, label="bias-corrected"),
    Line2D([], [], color=ADAM_COLOR, ls="--", label="uncorrected"),
]
fig.legend(handles=key, loc="outside lower center", ncols=3)
plt.show()

# %%
# The first step, and the end of the run
# --------------------------------------
# At :math:`t = 1`, :math:`\hat m_1 = g_1` and :math:`\sqrt{\hat v_1} = |g_1|`: the
# adapted gradient is the sign of :math:`g_1` (up to :math:`\epsilon`), so Adam's first
# step moves every weight by :math:`\eta`, whatever the size of its gradient. Without
# the corrections the two biases would not cancel:
# :math:`m_1/\sqrt{v_1} = (1-\beta_1)/\sqrt{1-\beta_2}` times the sign. The last two
# columns are the factors the corrections divide by; the second table says how long
# each bias lasts, in steps and in epochs of this run.

uncorrected = m / (np.sqrt(v) + EPS)
print(
    f"{'step t':>6} {'g_t':>10} {'adapted':>8} {'uncorrected':>11} {'1 - β1^t':>8} {'1 - β2^t':>8}"
)
for t in sorted({1, 2, 10, 50, n_steps} & set(steps)):
    row = f"{g[t - 1]:10.2e} {adapted[t - 1]:8.4f} {uncorrected[t - 1]:11.4f}"
    print(f"{t:6d} {row} {1 - BETA1**t:8.4f} {1 - BETA2**t:8.4f}")
print(f"(1 - β1) / sqrt(1 - β2) = {(1 - BETA1) / np.sqrt(1 - BETA2):.4f}")
print()
print(f"{'β':>6} {'steps to bias < 1 %':>20} {'in epochs':>10} {f'1 - β^t at t = {n_steps}':>18}")
for beta in (BETA1, BETA2):
    steps_to_1pct = int(np.ceil(np.log(0.01) / np.log(beta)))
    in_epochs = steps_to_1pct / steps_per_epoch
    print(f"{beta:>6} {steps_to_1pct:20d} {in_epochs:10.1f} {1 - beta**n_steps:18.4f}")

# %%
# Two layers, one step size
# -------------------------
# The second recorded weight belongs to the first fully connected layer. Its raw
# gradient has another typical size than the convolution's; Adam's adapted gradients
# are of the same order for both, because each is divided by its own running RMS. The
# table gives the root mean square over all steps, and the mean :math:`|\text{step}|`,
# which is :math:`\eta` times the mean absolute adapted gradient.

print(f"{'weight':<22} {'RMS raw g':>10} {'RMS adapted':>12} {'mean |step|':>12}")
summary = {}
for probe in experiments.PROBES:
    gp, _ = moments(probe)
    ad = ewma.bias_corrected(gp, BETA1) / (np.sqrt(ewma.bias_corrected(gp**2, BETA2)) + EPS)
    rms_g, rms_a = np.sqrt(np.mean(gp**2)), np.sqrt(np.mean(ad**2))
    summary[probe] = (rms_g, rms_a)
    print(f"{probe:<22} {rms_g:10.2e} {rms_a:12.3f} {LR * np.abs(ad).mean():12.2e}")
(g1, a1), (g2, a2) = summary.values()
ratio_raw, ratio_adapted = max(g1, g2) / min(g1, g2), max(a1, a2) / min(a1, a2)
print(f"ratio between the two weights: raw {ratio_raw:.1f}x, adapted {ratio_adapted:.1f}x")

# sphinx_gallery_start_ignore
# Hidden check of the claims above: the first adapted step is the sign of g_1, the
# uncorrected ratio is (1 - beta1) / sqrt(1 - beta2), and the adapted gradients of the
# two weights are closer in size than their raw gradients.
np.testing.assert_allclose(adapted[0], np.sign(g[0]) * abs(g[0]) / (abs(g[0]) + EPS), rtol=1e-12)
np.testing.assert_allclose(
    uncorrected[0] * np.sign(g[0]), (1 - BETA1) * abs(g[0]) / (np.sqrt(1 - BETA2) * abs(g[0]) + EPS)
)
if not ratio_adapted < ratio_raw:
    raise AssertionError(
        f"the text says Adam evens out the two weights' step sizes, but the RMS ratio is "
        f"{ratio_adapted:.2f} for the adapted gradients against {ratio_raw:.2f} for the raw ones."
    )
# sphinx_gallery_end_ignore

# %%
# Adam against the best SGD variant
# ---------------------------------
# Now over the profile's seeds: Adam at its default learning rate, and the better of
# SGD with heavy-ball momentum and SGD with Nesterov momentum from
# :ref:`chapter 2 <sphx_glr_auto_gallery_plot_02_momentum_nesterov.py>`, chosen by mean
# test accuracy. The validation metrics are measured after every epoch; the bands are
# ±1 standard deviation over the seeds.

KEYS = ("adam", "momentum", "nesterov")
runs = experiments.run_specs({key: experiments.NAMED[key] for key in KEYS})
best_sgd = max(("momentum", "nesterov"), key=lambda key: runs[key].test_acc[0])
shown = ("adam", best_sgd)
epoch_axis = np.arange(1, runs["adam"].stack("val_acc").shape[1] + 1)

fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(8.5, 3.9), layout="constrained")
for key in shown:
    name, color = runs[key].spec.name, plotting.color_for(key)
    plotting.band(ax_acc, epoch_axis, 100 * runs[key].stack("val_acc"), name, color, marker="o")
    plotting.band(ax_loss, epoch_axis, runs[key].stack("val_loss"), name, color, marker="o")
ax_acc.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy")
ax_loss.set(xlabel="epoch", ylabel="validation loss (nat)", title="Validation loss")
for ax in (ax_acc, ax_loss):
    ax.set_xticks(epoch_axis)
ax_acc.legend(loc="lower right")
plt.show()

# %%
# On the held-out test images, after the last epoch (mean ± std over the seeds; only
# Adam and the SGD variant marked "best" are in the figure), and the mean validation
# accuracy after the first and the last epoch. The two SGD variants can be closer than
# their spread over seeds: then "best" is a coin flip, and either would do.

last = len(epoch_axis)
print(f"{len(profile.seeds)} seeds, {last} epochs, {result.meta['train_size']:,} images")
print(f"validation accuracy (mean over seeds) after epoch 1 and epoch {last}")
header = f"{'val ep.1':>8} {f'ep.{last}':>7}"
print(f"{'optimizer':<15} {'lr':>6} {'test accuracy':>16} {'test loss':>16} {header}")
for key, res in runs.items():
    (am, asd), (lm, lsd) = res.test_acc, res.test_loss
    val = res.stack("val_acc").mean(axis=0)
    lr = res.results[0].config["lr"]
    mark = " *" if key == best_sgd else ""
    row = f"{am:7.4f} ± {asd:.4f} {lm:7.4f} ± {lsd:.4f} {val[0]:8.4f} {val[-1]:7.4f}"
    print(f"{res.spec.name:<15} {lr:6g} {row}{mark}")
print("* the best SGD variant of the previous chapter")

# sphinx_gallery_start_ignore
# Hidden check of the takeaway: after one epoch Adam is ahead of the best SGD variant.
first_epoch = {key: runs[key].stack("val_acc")[:, 0].mean() for key in shown}
if not first_epoch["adam"] > first_epoch[best_sgd]:
    raise AssertionError(
        f"the text says Adam is ahead after the first epoch, but its mean validation "
        f"accuracy is {first_epoch['adam']:.4f} against {first_epoch[best_sgd]:.4f} for "
        f"{runs[best_sgd].spec.name}."
    )
# sphinx_gallery_end_ignore

# %%
# Takeaways
# ---------
# - Adam's two moments are plain EWMAs of the gradient and of its square: rebuilt from
#   the recorded gradients with :func:`fashion_optim.ewma.ewma`, they match torch's
#   ``exp_avg`` and ``exp_avg_sq`` to float32 rounding (first table).
# - The first moment smooths the direction, as momentum does; the second one sets the
#   step size of each weight from the recent RMS of its own gradient. Their ratio, the
#   adapted gradient, rarely exceeds one in size (it is exactly :math:`\pm 1` at the
#   first step, the sign of :math:`g_1`), so :math:`\eta` is about the largest step a
#   weight takes :cite:p:`kingma2015adam`;
#   where the gradient's sign keeps changing the mean falls well below one (the
#   ``RMS adapted`` and ``mean |step|`` columns).
# - Weights whose raw gradients differ in size get adapted gradients of the same order
#   (the two-layer table): Adam's steps do not depend on the gradient's scale.
# - Both bias corrections matter, the second one for much longer: with
#   :math:`\beta_2 = 0.999` the bias of :math:`v_t` lasts thousands of steps (the
#   ``in epochs`` column), and without the corrections the first steps would be
#   :math:`(1-\beta_1)/\sqrt{1-\beta_2}` times larger.
# - Each weight's first step has size :math:`\eta` whatever its gradient, and the
#   early ones stay near it, so Adam at its default learning rate is ahead after the
#   first epoch; the last table says how
#   it compares with the best SGD variant after the first and after the last epoch, on
#   validation and on test images. Neither learning rate was tuned here (see
#   :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`).
#
# References
# ----------
# Adam and its bias corrections are from :cite:t:`kingma2015adam`; heavy-ball and
# Nesterov momentum as used by :class:`torch.optim.SGD` follow
# :cite:t:`sutskever2013importance` and :cite:t:`nesterov1983method`. The data set is
# Fashion-MNIST :cite:p:`xiao2017fashion`; the presentation of the EWMAs follows
# :cite:t:`godoy2022deep`. See the :doc:`bibliography </references>` for full entries.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_01_ewma_bias_correction.py`: the EWMA, its age and
#   the bias correction on their own.
# - :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py`: the SGD variants compared
#   here.
# - :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`: how to choose the learning
#   rate of SGD and Adam.
# - :class:`torch.optim.Adam`, :func:`fashion_optim.ewma.ewma`,
#   :func:`fashion_optim.ewma.bias_corrected`,
#   :class:`fashion_optim.training.OptimizerStateRecorder` and
#   :func:`fashion_optim.experiments.run_specs`.
