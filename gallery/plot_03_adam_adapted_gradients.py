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
the three quantities Adam combines into its step, then their spread over every weight
of each layer. Last, we train Adam with and without its bias corrections.

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
# Every run goes through :func:`fashion_optim.experiments.run_sweep` or
# :func:`~fashion_optim.experiments.run_outcomes`, which train once and cache the result;
# the seed fixes the initial weights and the mini-batch order. The published site trains
# on 50,000 images for 10 epochs with 3 seeds; the quick profile on 10,000 for 3 with 2.

# sphinx_gallery_thumbnail_number = 1
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.lines import Line2D

from fashion_optim import ewma, experiments, plotting, stats
from fashion_optim.models import make_model
from fashion_optim.training import resolve_device

SEED = 0  # the single-seed sections; the ablation uses all of the profile's seeds
torch.manual_seed(SEED)
device = resolve_device("auto")  # CUDA when available, else the CPU
profile = experiments.current_profile()
plotting.use_style()
ADAM_COLOR = plotting.color_for("adam")
print(f"profile {profile.name!r} ({profile.description})")
print(f"seeds {list(profile.seeds)}; single-seed sections: seed {SEED}, device {device}")


def say(text):
    """Print a sentence whose wording follows the numbers, wrapped for the page."""
    print(textwrap.fill(text, 79))


# %%
# Record Adam's gradients and state
# ---------------------------------
# The note's shared Adam run records, at every mini-batch, the gradient of two weights
# (:data:`~fashion_optim.experiments.PROBES`) and Adam's ``exp_avg`` and ``exp_avg_sq``
# for them, read *after* each step: the :math:`m_t` and :math:`v_t` that include
# :math:`g_t`. The spec sets no ``betas`` or ``eps``, so torch's defaults apply; we read
# them from torch itself. The page's runs train in two batches, so that no core waits:
# Adam's learning-rate sweep (:func:`~fashion_optim.experiments.run_sweep`), whose chosen
# rate sets the rates of the bias-correction ablation (last section), then the shared
# run at every seed together with that ablation.

sweep = experiments.run_sweep(["adam"])
grid, best_lr = experiments.SWEEP_GRIDS["adam"], sweep.best_rate("adam")
i = grid.index(best_lr)
RATES = tuple(sorted((best_lr, grid[i + 1] if i + 1 < len(grid) else grid[i - 1])))
ablation = experiments.run_outcomes(
    {"adam": experiments.NAMED["adam"], **experiments.bias_correction_specs(RATES)}
)
adam = ablation.pop("adam").results  # every seed
result = adam.results[adam.seeds.index(SEED)]  # shared with the note
cfg = result.config
defaults = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]).defaults
hyper = {**defaults, **cfg.optimizer_kwargs}
(BETA1, BETA2), EPS, LR = hyper["betas"], hyper["eps"], cfg.lr
steps_per_epoch = int(result.meta["steps_per_epoch"])
n_steps = len(result.gradient(next(iter(experiments.PROBES))))
steps = np.arange(1, n_steps + 1)
source = "cache" if result.from_cache else "trained now"
facts = {  # no test-set numbers here: chapter 6 reports Adam's
    "optimizer": f"Adam, lr {LR:g}, betas ({BETA1}, {BETA2}), eps {EPS:g}",
    "batch size, epochs": f"{cfg.batch_size}, {cfg.epochs}",
    "training images": f"{result.meta['train_size']:,}",
    "steps": f"{n_steps:,} ({steps_per_epoch} per epoch)",
    "training time": f"{result.meta['wall_time']:.1f} s ({source})",
}
pd.Series(facts, name=f"Adam, seed {SEED}").to_frame()

# %%
# The moments, rebuilt from the gradients
# ---------------------------------------
# Adam's moments are the plain EWMAs of chapter 1: :func:`fashion_optim.ewma.ewma` of
# :math:`g_t` with :math:`\beta_1` and of :math:`g_t^2` with :math:`\beta_2` give back
# ``exp_avg`` and ``exp_avg_sq``. Torch updates them in float32, we recompute in
# float64: rounding errors of about :math:`6\times10^{-8}`, damped by :math:`\beta` at
# each step, add up to at most about :math:`6\times10^{-8}/(1-\beta)` of the moment's
# scale. The table gives the largest difference, also relative to the largest value of
# the moment.


def moments(probe):
    """Recorded gradient, and per moment: torch's values and the rebuilt EWMA."""
    g = result.gradient(probe)[:, 0].astype(np.float64)
    torch_m = result.optimizer_state("exp_avg", probe)[:, 0].astype(np.float64)
    torch_v = result.optimizer_state("exp_avg_sq", probe)[:, 0].astype(np.float64)
    return g, {"m": (torch_m, ewma.ewma(g, BETA1)), "v": (torch_v, ewma.ewma(g**2, BETA2))}


agreement = pd.DataFrame(
    [
        (probe, name, np.abs(torch_value - rebuilt).max(), np.abs(torch_value).max())
        for probe in experiments.PROBES
        for name, (torch_value, rebuilt) in moments(probe)[1].items()
    ],
    columns=["weight", "moment", "max |torch − ewma|", "max |torch|"],
).set_index(["weight", "moment"])
agreement["ratio"] = agreement["max |torch − ewma|"] / agreement["max |torch|"]
# sphinx_gallery_start_ignore
# The chapter's claim: the EWMAs of the recorded gradients are Adam's state, to rounding.
assert (agreement["ratio"] < 1e-4).all(), f"Adam's moments are not the EWMAs:\n{agreement}"
# sphinx_gallery_end_ignore
agreement.map(lambda value: f"{value:.1e}")

# %%
# Smoothing, scaling and the adapted gradient
# -------------------------------------------
# From here on, one weight: the centre tap of the first 5x5 filter of the first
# convolution. From its gradient we compute the corrected moments, the scaling factor
# :math:`1/(\sqrt{\hat v_t}+\epsilon)` and the adapted gradient
# :math:`\hat m_t/(\sqrt{\hat v_t}+\epsilon)`, Adam's step divided by :math:`\eta`.


def adapted_of(g):
    """Adam's step divided by the learning rate, from the gradients alone."""
    return ewma.bias_corrected(g, BETA1) / (np.sqrt(ewma.bias_corrected(g**2, BETA2)) + EPS)


PROBE = "features.0.weight"
g, pairs = moments(PROBE)
m, v = pairs["m"][1], pairs["v"][1]  # the float64 EWMAs, equal to torch's (table above)
m_hat = ewma.bias_corrected(g, BETA1)
scaling = 1.0 / (np.sqrt(ewma.bias_corrected(g**2, BETA2)) + EPS)
adapted = adapted_of(g)
GRAD_LABEL = r"$\partial L/\partial w$ (nat per unit $w$)"

# %%
# The top panel draws the raw gradient and its bias-corrected EWMA with
# :math:`\beta_1`, the direction Adam follows. Its inset zooms on the two EWMAs over
# the first steps, where the uncorrected :math:`m_t` (dashed) starts at a tenth of the
# corrected one; it leaves out the raw gradients, which would flatten the difference.


def smoothing_panel(ax, n_zoom=20):
    ax.plot(steps, g, color=plotting.NEUTRAL, lw=0.7)
    ax.plot(steps, m_hat, color=ADAM_COLOR)
    ax.axhline(0.0, color="black", lw=0.6)
    top = 1.05 * np.abs(g).max()
    ax.set(ylim=(-top, 2.2 * top), ylabel=GRAD_LABEL)  # room above the data for the inset
    ax.set_title(r"EWMA for smoothing ($\beta_1$)", pad=44)  # above the epoch axis
    inset = ax.inset_axes([0.5, 0.55, 0.48, 0.32])
    for values, style in ((m, "--o"), (m_hat, "-o")):
        inset.plot(steps[:n_zoom], values[:n_zoom], style, ms=2.5, color=ADAM_COLOR, lw=1.4)
    inset.axhline(0.0, color="black", lw=0.6)
    zoom_top = 1.15 * max(np.abs(m_hat[:n_zoom]).max(), np.abs(m[:n_zoom]).max())
    inset.set_ylim(-zoom_top, zoom_top)
    inset.set_title(f"zoom, EWMAs only: steps 1 to {n_zoom}", fontsize=9)
    inset.tick_params(labelsize=8)


# %%
# The bottom panel draws the adapted gradient (left axis, no unit) in front of the raw
# gradient (grey, right axis), both axes symmetric so that their zeros line up.


def adapted_panel(ax):
    twin = ax.twinx()
    twin.plot(steps, g, color=plotting.NEUTRAL, lw=0.7)
    twin.spines["right"].set_visible(True)
    twin.set_ylabel("raw " + GRAD_LABEL, color="0.45")
    twin.grid(False)
    ax.plot(steps, adapted, color=ADAM_COLOR, lw=0.9, alpha=0.8)  # the raw one shows through
    ax.set_zorder(twin.get_zorder() + 1)  # the adapted gradient in front of the raw one
    ax.patch.set_visible(False)
    for axis, values in ((ax, adapted), (twin, g)):
        lim = 1.1 * np.abs(values).max()
        axis.set_ylim(-lim, lim)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set(title="Adapted gradient", ylabel=r"$\hat m_t/(\sqrt{\hat v_t}+\epsilon)$ (no unit)")


# %%
# The middle panel is the scaling factor, on a log axis; the uncorrected one (dashed)
# starts :math:`1/\sqrt{1-\beta_2}` times too large. Look at how the scaling follows
# the size of the raw gradient above it, and how the adapted gradient below stays of
# order one while the raw one shrinks or grows.

fig, (ax_m, ax_v, ax_a) = plt.subplots(
    3, 1, figsize=(7.5, 9.4), sharex=True, height_ratios=(1.35, 1, 1), layout="constrained"
)
smoothing_panel(ax_m)
ax_v.plot(steps, scaling, color=ADAM_COLOR)
ax_v.plot(steps, 1.0 / (np.sqrt(v) + EPS), "--", color=ADAM_COLOR, lw=1.3)
ax_v.set(yscale="log", title=r"EWMA for scaling ($\beta_2$)")
ax_v.set_ylabel(r"$1/(\sqrt{\hat v_t}+\epsilon)$ ($w$ per nat)")
adapted_panel(ax_a)
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
# the corrections (:math:`\epsilon` aside) the step is the corrected one times
# :math:`r_t = (1-\beta_1^t)/\sqrt{1-\beta_2^t}`: :math:`(1-\beta_1)/\sqrt{1-\beta_2}`
# at :math:`t = 1`, growing while the numerator nears one (tens of steps), then falling
# back towards one with the denominator (thousands). The lines above the table give its
# peak, how long each bias lasts, and :math:`\beta^T`, what is left of it at the last
# step :math:`T`.

t_all = np.arange(1, max(n_steps, 20_000) + 1)
ratio = (1 - BETA1**t_all) / np.sqrt(1 - BETA2**t_all)  # r_t, uncorrected / corrected
t_peak = int(t_all[np.argmax(ratio)])
rows = np.array(sorted({1, 2, t_peak, 50, n_steps} & set(steps.tolist())))
first = pd.DataFrame(
    {
        "g_t (nat per unit w)": [f"{value:.2e}" for value in g[rows - 1]],
        "adapted": adapted[rows - 1],
        "uncorrected": (m / (np.sqrt(v) + EPS))[rows - 1],
        "1 − β1^t": 1 - BETA1**rows,
        "√(1 − β2^t)": np.sqrt(1 - BETA2**rows),
        "r_t": ratio[rows - 1],
    },
    index=pd.Index(rows, name="step t"),
)
print(f"r_t: {ratio[0]:.2f} at t = 1, peak {ratio.max():.2f} at t = {t_peak}, ", end="")
print(f"{ratio[n_steps - 1]:.2f} at T = {n_steps}")
for beta in (BETA1, BETA2):
    n = int(np.ceil(np.log(0.01) / np.log(beta)))  # steps until beta**n < 1 %
    print(f"β = {beta}: bias < 1 % after {n} steps = {n / steps_per_epoch:.1f} epochs; ", end="")
    print(f"β^T = {beta**n_steps:.4f}")
first.round(4)

# %%
# Every weight of each layer
# --------------------------
# The shared Adam run also records, per layer (parameter tensor), quantiles over all its
# weights of the adapted step :math:`|\hat m_t/(\sqrt{\hat v_t}+\epsilon)|` and of the
# effective rate :math:`\eta/(\sqrt{\hat v_t}+\epsilon)` (the SGD rate that moves a
# weight as far along :math:`\hat m_t`), from Adam's own state
# (:class:`~fashion_optim.training.AdamQuantileRecorder`). One row per layer's weights:
# median, 25-75 % and 5-95 % bands; in black, the weight of the figures above.

rec = result.records
LEVELS, q_steps = result.adam_quantile_levels, result.adam_quantile_steps
sizes = {n: p.numel() for n, p in make_model("lenet").named_parameters() if "weight" in n}
print(f"quantiles {LEVELS.tolist()}, every {cfg.record.layer_quantiles_every} step(s)")
fig, axes = plt.subplots(len(sizes), 2, figsize=(8.0, 11.0), sharex=True, sharey="col")
names = {n: f"{n}\n{k:,} weights" for n, k in sizes.items()}
probe = (PROBE, q_steps, adapted[q_steps - 1], LR * scaling[q_steps - 1])  # same steps
plotting.adam_layer_quantiles(
    axes, rec, list(sizes), names=names, steps_per_epoch=steps_per_epoch, weight=probe
)
plt.show()

# %%
# A weight whose gradient stays zero (its ReLU unit, or the one feeding it, off for the
# whole mini-batch) keeps decaying moments: its adapted step shrinks by
# :math:`\beta_1/\sqrt{\beta_2}` per step and its rate climbs towards
# :math:`\eta/\epsilon`, the rate of a weight that has had no gradient yet. The lines
# say where the weight of the figures above sits in its layer (at the last recorded
# step, and how often inside the middle half); the table gives each layer's medians at
# the last recorded step, and the ratio of the top to the bottom quantile of its rate.

i25, i50, i75 = (int(np.argmin(np.abs(LEVELS - level))) for level in (0.25, 0.5, 0.75))
OWN = {"adapted": ("adapted step", np.abs(adapted)), "rate": ("effective rate", LR * scaling)}
for key, (what, own) in OWN.items():
    q, mine = result.adam_quantiles(key, PROBE), own[q_steps - 1]
    inside = np.mean((q[:, i25] <= mine) & (mine <= q[:, i75]))
    where = plotting.position_words(*plotting.quantile_position(mine[-1], LEVELS, q[-1]))
    say(
        f"Its {what} at step {q_steps[-1]}, {mine[-1]:.3g}, lies {where} of its "
        f"layer; inside the middle half at {inside:.0%} of the {len(q_steps)} recorded steps."
    )
at_end = {key: np.array([result.adam_quantiles(key, n)[-1] for n in sizes]) for key in OWN}
last = pd.DataFrame(
    {
        "median adapted step": at_end["adapted"][:, i50],
        "median rate (w² per nat)": at_end["rate"][:, i50],
        f"rate, {LEVELS[-1]:.0%} / {LEVELS[0]:.0%}": at_end["rate"][:, -1] / at_end["rate"][:, 0],
    },
    index=pd.Index(list(sizes), name="layer"),
)
peak, cap = max(result.adam_quantiles("rate", n)[:, -1].max() for n in sizes), LR / EPS
say(
    f"Without gradients the adapted step falls a decade every "
    f"{np.log(10) / np.log(np.sqrt(BETA2) / BETA1):.0f} steps. The highest {LEVELS[-1]:.0%} "
    f"quantile of any layer's rate, {peak:.3g}, is {peak / cap:.2g} times η/ε = {cap:.3g}."
)
ends = np.array([[r.adam_quantiles("adapted", n)[-1, i50] for n in sizes] for r in adam.results])
by_seed = ends.max(axis=0) / ends.min(axis=0)
say(
    f"Over the {len(ends)} seeds, a layer's median adapted step at the end differs by at "
    f"most a factor {by_seed.max():.2f} ({list(sizes)[int(by_seed.argmax())]})."
)
last.map(lambda value: f"{value:.3g}")

# %%
# Bias correction in training
# ---------------------------
# Without the corrections each step is :math:`r_t` times the corrected one (above). We
# train the from-scratch
# :class:`~fashion_optim.optimizers.Adam` with and without the corrections on the
# sweep's short budget, over the profile's seeds, at the rate the sweep chose on
# validation (:meth:`~fashion_optim.experiments.Sweep.best_rate`) and at the next rate
# above it on the grid (below it, if the chosen one is the grid's top): the second batch
# of the setup.

short = sweep.points["adam"][best_lr].finished[0]
n_short = int(short.meta["steps_per_epoch"]) * short.config.epochs
say(
    f"{short.config.epochs} epochs of {short.meta['train_size']:,} images, {n_short} steps. r_t, "
    f"the factor on each uncorrected step, is {ratio[:n_short].mean():.1f} on average over them "
    f"and {ratio[n_short - 1]:.1f} at the last."
)

# %%
# The loss of each mini-batch over the first steps, mean over the seeds that finished
# (a run whose loss blows up is stopped and left out: the legend counts the others).

N_FIRST, N_SEEDS, color_for = min(100, n_short), len(profile.seeds), plotting.color_for
LOOK = {True: ("-", "adam"), False: ("--", "uncorrected adam")}  # line style, colour's name
fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.0), sharey=True, layout="constrained")
early = {}
for ax, lr in zip(axes, RATES, strict=True):
    for c, (ls, name) in LOOK.items():
        if done := ablation[lr, c].finished:
            early[lr, c] = np.mean([r.history.batch_loss[:N_FIRST] for r in done], axis=0)
            label = f"{'with' if c else 'without'} correction ({len(done)} of {N_SEEDS} seeds)"
            ax.plot(range(1, N_FIRST + 1), early[lr, c], ls, color=color_for(name), label=label)
    ax.set(yscale="log", title=f"lr {lr:g}{' (chosen)' if lr == best_lr else ''}")
    plotting.plain_log_ticks(ax)
    plotting.label_step_axis(ax)
    ax.legend(loc="upper right")
axes[0].set_ylabel("training loss per mini-batch (nat)")
plt.show()

# %%
# Final validation accuracy over the seeds that finished (0.10 is chance on ten classes),
# and the difference without − with correction paired by seed over the seeds that
# finished both, with its 95 % t-interval (``fashion_optim.stats.paired_difference``).

final = {k: {r.seed: r.history.val_acc[-1] for r in p.finished} for k, p in ablation.items()}
table = {}
for lr in RATES:
    on, off = final[lr, True], final[lr, False]
    both = [s for s in on if s in off]
    d = stats.paired_difference([off[s] for s in both], [on[s] for s in both]) if both else None
    for key, v in (("with", list(on.values())), ("without", list(off.values()))):
        shown = plotting.mean_std(v) if len(v) > 1 else f"{v[0]:.4f}" if v else "–"
        table[f"{lr:g}", key] = {"seeds finished": len(v), "val. accuracy": shown}
    paired = "–" if d is None else str(d) if d.n > 1 else f"{d.mean:+.4f}"
    table[f"{lr:g}", "without"]["without − with"] = paired
    a, b = (early[lr, c].mean() if (lr, c) in early else np.nan for c in (False, True))
    loss = f"{a:.2f} nat without correction, {'above' if a > b else 'not above'} {b:.2f} with it"
    loss = loss if a + b > 0 else "cannot be compared (every seed diverged one way)"
    text = f"lr {lr:g}: mean loss over the first {N_FIRST} steps {loss}. Final validation "
    if d is None:
        text += "accuracy: no seed finished both ways."
    else:
        text += f"accuracy {abs(d.mean):.4f} {'lower' if d.mean < 0 else 'higher'} without it"
        zero = "excludes zero" if d.excludes_zero else f"includes zero: {d.n} seeds cannot tell"
        text += f" over {d.n} seeds; the interval {d} {zero}." if d.n > 1 else ", on one seed."
    say(text)
table = pd.DataFrame.from_dict(table, orient="index").fillna("")
table.rename_axis(["learning rate", "correction"])

# %%
# Takeaways
# ---------
# - Adam's two moments are plain EWMAs of the gradient and of its square: rebuilt from
#   the recorded gradients with :func:`fashion_optim.ewma.ewma`, they match torch's
#   ``exp_avg`` and ``exp_avg_sq`` to float32 rounding (first table).
# - The first moment smooths the direction, as momentum does; the second divides each
#   weight's step by the recent RMS of its own gradient, so the adapted gradient is
#   :math:`\pm 1` at the first step and of order one after it, whatever the gradient's
#   scale :cite:p:`kingma2015adam`; the per-layer figure shows it over every weight.
# - Both bias corrections matter, the second one for much longer: with
#   :math:`\beta_2 = 0.999` the bias of :math:`v_t` lasts thousands of steps. Without
#   them each step is :math:`r_t = (1-\beta_1^t)/\sqrt{1-\beta_2^t}` times longer, more
#   after the first step than at it; the ablation's sentences say what that did here.
# - One weight is not its layer: quantile bands over all its weights show how typical
#   the weight of the first figure is, and the weights a zero gradient leaves behind.
#
# References
# ----------
# Adam and its bias corrections are from :cite:t:`kingma2015adam`. The data set is
# Fashion-MNIST :cite:p:`xiao2017fashion`; the presentation of the EWMAs follows
# :cite:t:`godoy2022deep`. See the :doc:`bibliography </references>` for full entries.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_01_ewma_bias_correction.py`: the EWMA, its age and
#   the bias correction on their own; :ref:`how to choose the learning rate of SGD and
#   Adam <sphx_glr_auto_gallery_plot_04_lr_range_test.py>`; Adam against the SGD
#   variants, at default and at tuned rates, in
#   :ref:`sphx_glr_auto_gallery_plot_06_tuned_comparison.py`.
# - :class:`torch.optim.Adam`, :func:`fashion_optim.ewma.ewma`,
#   :func:`fashion_optim.ewma.bias_corrected`,
#   :class:`fashion_optim.training.OptimizerStateRecorder` and
#   :class:`fashion_optim.training.AdamQuantileRecorder`.
