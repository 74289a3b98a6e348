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
# Every run goes through :func:`fashion_optim.experiments.run_outcomes` or
# :func:`~fashion_optim.experiments.run_tuning`, which train once and cache the result;
# the seed fixes the initial weights and the mini-batch order. The published site trains
# on 50,000 images for 10 epochs with 3 seeds (5 for the configurations compared at the
# full budget); the quick profile on 10,000 for 3 with 2.

# sphinx_gallery_thumbnail_number = 1
from statistics import NormalDist

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from fashion_optim import ewma, experiments, plotting
from fashion_optim.device import resolve_device
from fashion_optim.models import make_model
from fashion_optim.plotting import say

SEED = 0  # the single-seed sections; the ablation uses every seed
torch.manual_seed(SEED)
device = resolve_device("auto")  # CUDA when available, else the CPU
profile = experiments.current_profile()
plotting.use_style()
print(f"profile {profile.name!r} ({profile.description})")
print(
    f"seeds {list(profile.seeds)}; single-seed sections: seed {SEED}, device "
    f"{device}"
)


# %%
# Record Adam's gradients and state
# ---------------------------------
# The note's shared Adam run records, at every mini-batch, the gradient of two weights
# (:data:`~fashion_optim.experiments.PROBES`) and Adam's ``exp_avg`` and ``exp_avg_sq``
# for them, read *after* each step: the :math:`m_t` and :math:`v_t` that include
# :math:`g_t`. The spec sets no ``betas`` or ``eps``, so torch's defaults apply; we read
# them from torch itself. The page trains in one batch, so that no core waits: the
# shared run at every seed, and the bias-correction ablation (last section), both
# variants over Adam's grid of rates at the tuning's first rung
# (:func:`~fashion_optim.experiments.bias_correction_specs`).

specs = experiments.bias_correction_specs()  # (lr, corrected): Adam's grid
ablation = experiments.run_outcomes({"adam": experiments.NAMED["adam"]} | specs)
adam = ablation.pop("adam").results  # every seed
runs = adam.results
result = runs[adam.seeds.index(SEED)]  # shared with the note
cfg = result.config
defaults = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]).defaults
hyper = {**defaults, **cfg.optimizer_kwargs}
BETAS, EPS, LR = tuple(hyper["betas"]), hyper["eps"], cfg.lr
BETA1, BETA2 = BETAS
steps_per_epoch = SPE = int(result.meta["steps_per_epoch"])
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
    """Recorded gradient, and per moment: torch's values and the EWMA."""
    g = result.gradient(probe)[:, 0].astype(np.float64)
    m, v = (
        result.optimizer_state(key, probe)[:, 0].astype(np.float64)
        for key in ("exp_avg", "exp_avg_sq")
    )
    return g, {"m": (m, ewma.ewma(g, BETA1)), "v": (v, ewma.ewma(g**2, BETA2))}


rows = [
    (
        probe,
        name,
        np.abs(torch_value - rebuilt).max(),
        np.abs(torch_value).max(),
    )
    for probe in experiments.PROBES
    for name, (torch_value, rebuilt) in moments(probe)[1].items()
]
columns = ["weight", "moment", "max |torch − ewma|", "max |torch|"]
agreement = pd.DataFrame(rows, columns=columns).set_index(["weight", "moment"])
agreement["ratio"] = agreement["max |torch − ewma|"] / agreement["max |torch|"]
# sphinx_gallery_start_ignore
# The chapter's claim: the EWMAs of the recorded gradients are Adam's state, to rounding.
assert (agreement["ratio"] < 1e-4).all(), f"not Adam's moments:\n{agreement}"
# sphinx_gallery_end_ignore
agreement.map(lambda value: f"{value:.1e}")

# %%
# Smoothing, scaling and the adapted gradient
# -------------------------------------------
# From here on, one weight: the centre tap of the first 5x5 filter of the first
# convolution. From its gradient we compute the corrected moments, the scaling factor
# :math:`1/(\sqrt{\hat v_t}+\epsilon)` and the adapted gradient
# :math:`\hat m_t/(\sqrt{\hat v_t}+\epsilon)`, Adam's step divided by :math:`\eta`.

PROBE = "features.0.weight"
g, pairs = moments(PROBE)
m, v = pairs["m"][1], pairs["v"][1]  # float64 EWMAs, equal to torch's (above)
m_hat = ewma.bias_corrected(g, BETA1)
root_v_hat = np.sqrt(ewma.bias_corrected(g**2, BETA2))
scaling, adapted = 1.0 / (root_v_hat + EPS), m_hat / (root_v_hat + EPS)

# %%
# :func:`~fashion_optim.plotting.adam_moments` draws the three from the gradients alone.
# Top: the raw gradient and its bias-corrected EWMA with :math:`\beta_1`, the direction
# Adam follows; the inset zooms on the two EWMAs over the first steps, where the
# uncorrected :math:`m_t` (dashed) starts at a tenth of the corrected one. Middle: the
# scaling factor, on a log axis; the uncorrected one (dashed) starts
# :math:`1/\sqrt{1-\beta_2}` times too large. Bottom: the adapted gradient (left axis, no
# unit) in front of the raw gradient (grey, right axis), their zeros lined up. Look at how
# the scaling follows the size of the raw gradient, so that the adapted gradient keeps one
# scale while the raw one shrinks or grows (how large it is, over every weight, is
# measured below).

plotting.adam_moments(g, BETAS, EPS, steps_per_epoch=steps_per_epoch)
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
# r_t, the uncorrected step over the corrected one
ratio = plotting.uncorrected_step_ratio(t_all, BETAS)
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
print(
    f"r_t: {ratio[0]:.2f} at t = 1, peak {ratio.max():.2f} at t = {t_peak}, "
    f"{ratio[n_steps - 1]:.2f} at T = {n_steps}"
)
for beta in (BETA1, BETA2):
    n = int(np.ceil(np.log(0.01) / np.log(beta)))  # steps until beta**n < 1 %
    epochs = n / steps_per_epoch
    print(
        f"β = {beta}: bias < 1 % after {n} steps = {epochs:.1f} epochs; "
        f"β^T = {beta**n_steps:.4f}"
    )
first.round(4)

# %%
# Every weight of each layer
# --------------------------
# The shared Adam run also records, per layer (parameter tensor), quantiles over all its
# weights of the adapted step :math:`|\hat m_t/(\sqrt{\hat v_t}+\epsilon)|` and of the
# effective rate :math:`\eta/(\sqrt{\hat v_t}+\epsilon)` (the SGD rate that moves a
# weight as far along :math:`\hat m_t`), from Adam's own state
# (:class:`~fashion_optim.recorders.AdamQuantileRecorder`). One row per layer's weights:
# median, 25-75 % and 5-95 % bands; in black, the weight of the figures above.

LEVELS, q_steps = result.adam_quantile_levels, result.adam_quantile_steps
weights = make_model("lenet").named_parameters()
sizes = {n: p.numel() for n, p in weights if "weight" in n}
every = cfg.record.layer_quantiles_every
print(f"quantiles {LEVELS.tolist()}, every {every} step(s)")
fig, axes = plt.subplots(
    len(sizes), 2, figsize=(8.0, 11.0), sharex=True, sharey="col"
)
names = {n: f"{n}\n{k:,} weights" for n, k in sizes.items()}
# the weight of the figures above, at the recorded steps
probe = (PROBE, q_steps, adapted[q_steps - 1], LR * scaling[q_steps - 1])
plotting.adam_layer_quantiles(
    axes, result, list(sizes), names=names, weight=probe, steps_per_epoch=SPE
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
# The adapted step is a signal-to-noise ratio: one for a gradient of constant sign; for
# zero-mean noise of constant size :math:`\sigma`,
# :math:`\hat m_t \approx \sigma \sqrt{(1-\beta_1)/(1+\beta_1)}\, N(0, 1)` over
# :math:`\sqrt{\hat v_t} \approx \sigma`.

i25, i50, i75 = (int(np.abs(LEVELS - q).argmin()) for q in (0.25, 0.5, 0.75))
OWN = {"adapted": ("adapted step", np.abs(adapted))}
OWN["rate"] = ("effective rate", LR * scaling)
for key, (what, own) in OWN.items():
    q, mine = result.adam_quantiles(key, PROBE), own[q_steps - 1]
    inside = np.mean((q[:, i25] <= mine) & (mine <= q[:, i75]))
    position = plotting.quantile_position(mine[-1], LEVELS, q[-1])
    where = plotting.position_words(*position)
    say(
        f"Its {what} at step {q_steps[-1]}, {mine[-1]:.3g}, lies {where} of "
        f"its layer; inside the middle half at {inside:.0%} of the "
        f"{len(q_steps)} recorded steps."
    )
at_end = {
    k: np.array([result.adam_quantiles(k, n)[-1] for n in sizes]) for k in OWN
}
last = pd.DataFrame(
    {
        "median adapted step": at_end["adapted"][:, i50],
        "median rate (w² per nat)": at_end["rate"][:, i50],
        f"rate, {LEVELS[-1]:.0%} / {LEVELS[0]:.0%}": (
            at_end["rate"][:, -1] / at_end["rate"][:, 0]
        ),
    },
    index=pd.Index(list(sizes), name="layer"),
)
peak, cap = (
    max(result.adam_quantiles("rate", n)[:, -1].max() for n in sizes),
    LR / EPS,
)
say(
    "Without gradients the adapted step falls a decade every "
    f"{np.log(10) / np.log(np.sqrt(BETA2) / BETA1):.0f} steps. The highest "
    f"{LEVELS[-1]:.0%} quantile of any layer's rate, {peak:.3g}, is "
    f"{peak / cap:.2g} times η/ε = {cap:.3g}."
)
ends = np.array(  # each seed's layer medians at the end
    [[r.adam_quantiles("adapted", n)[-1, i50] for n in sizes] for r in runs]
)
by_seed = ends.max(axis=0) / ends.min(axis=0)
say(
    f"Over the {len(ends)} seeds, a layer's median adapted step at the end "
    f"differs by at most a factor {by_seed.max():.2f} "
    f"({list(sizes)[int(by_seed.argmax())]})."
)
med = np.array([result.adam_quantiles("adapted", n)[:, i50] for n in sizes])
late, end = np.median(med[:, q_steps > SPE], axis=1), med[:, -1]
noise = NormalDist().inv_cdf(0.75) * np.sqrt((1 - BETA1) / (1 + BETA1))
lo, hi = (list(sizes)[int(f(end))] for f in (np.argmin, np.argmax))
say(
    f"The layers' median adapted steps: {end.min():.2g} ({lo}) to "
    f"{end.max():.2g} ({hi}) at the end, {late.min():.2g} to {late.max():.2g} "
    "over the steps after the first epoch (their median): a typical weight "
    f"steps by that fraction of η, not by η. Zero-mean noise alone would give "
    f"{noise:.3f}; {(end < noise).sum()} of {len(end)} layers end below it."
)
last.map(lambda value: f"{value:.3g}")

# %%
# Bias correction in training
# ---------------------------
# Without the corrections each step is :math:`r_t` times the corrected one, so an
# ablation at one rate compares two step sizes as much as two methods. The setup trained
# the from-scratch :class:`~fashion_optim.optimizers.Adam` with and without them over
# the tuning's grid of rates (:data:`~fashion_optim.experiments.SWEEP_GRIDS`), for its
# first rung (:data:`~fashion_optim.experiments.RUNG_EPOCHS`: one epoch on the whole
# training split), over the profile's seeds. The figure adds the uncorrected curve moved
# right by :math:`\bar r`, the mean of :math:`r_t` over the run, and torch's own Adam
# from the tuning's first rung (:func:`~fashion_optim.experiments.run_tuning`, ``+``).

tuning = experiments.run_tuning(["adam"])  # chapter 6 tunes Adam alike
done = next(r for p in ablation.values() for r in p.finished)
n_run = int(done.meta["steps_per_epoch"]) * done.config.epochs
r_bar = plotting.uncorrected_step_ratio(range(1, n_run + 1), BETAS).mean()
fig, ax = plt.subplots(figsize=(7.0, 5.0), layout="constrained")
plotting.bias_correction_curves(ax, ablation, r_bar)
first = tuning.rungs[0].curve("adam")
ax.plot(first["lr"], first["mean"], "+k", ms=9, label="torch.optim.Adam")
ax.set_ylim(0, 1)
plotting.legend_below(ax, ncols=2)
plt.show()

# %%
# Each variant is chosen on validation at its own best rate; at matched early steps the
# uncorrected variant runs at the grid's rate nearest the corrected choice divided by
# :math:`\bar r`. The comparisons are on the test set, without − with, paired by seed,
# with Holm's correction for the two (intervals below three seeds: the seeds
# themselves). The last line sets the from-scratch Adam beside torch's.

table, sentences = plotting.bias_correction_table(ablation, n_run, BETAS)
for sentence in sentences:
    say(sentence)
ours = {lr: p.results for (lr, c), p in ablation.items() if c and p.complete}
at = zip(first["lr"], first["mean"], strict=True)
gap = max(abs(m - ours[lr].final("val_acc")[0]) for lr, m in at if lr in ours)
say(
    f"torch's Adam chose {tuning.first_rung_choice('adam'):g} at this rung "
    f"({tuning.best_rate('adam'):g} at the full budget); its mean validation "
    f"accuracy {'equals' if gap == 0 else f'is within {gap:.2g} of'} the "
    f"corrected from-scratch Adam's at the {len(ours)} rates where no seed of "
    "the latter failed."
)
table.T

# %%
# Takeaways
# ---------
# - Adam's two moments are plain EWMAs of the gradient and of its square: rebuilt from
#   the recorded gradients with :func:`fashion_optim.ewma.ewma`, they match torch's
#   ``exp_avg`` and ``exp_avg_sq`` to float32 rounding (first table).
# - The first moment smooths the direction, as momentum does; the second divides it by
#   the recent RMS of the weight's own gradient :cite:p:`kingma2015adam`: the adapted
#   gradient is :math:`\pm 1` at the first step, then a signal-to-noise ratio, near one
#   only where the gradient keeps its sign (the layers' medians above say how near).
# - Without the corrections each step is :math:`r_t = (1-\beta_1^t)/\sqrt{1-\beta_2^t}`
#   times longer, for thousands of steps with :math:`\beta_2 = 0.999`: the ablation
#   compares the variants over one grid, at each one's best rate and at matched steps.
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
#   :class:`fashion_optim.recorders.OptimizerStateRecorder` and
#   :class:`fashion_optim.recorders.AdamQuantileRecorder`.
