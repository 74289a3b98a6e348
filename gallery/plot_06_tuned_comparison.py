# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
============================================
Tuning every optimizer before comparing them
============================================

The earlier chapters ran each optimizer at one default learning rate, so their
comparisons rank learning rates as much as optimizers. Benchmarks of optimizers
(DeepOBS, Schmidt et al.'s "Crowded Valley", AlgoPerf) tune each one first: how each
is tuned can decide which one wins :cite:p:`choi2019empirical,sivaprasad2020optimizer`,
and an adaptive method's edge in training need not carry to held-out data
:cite:p:`wilson2017marginal`. We tune the
rate by **successive halving** whose last rung is the full training, choose it on
**validation** accuracy at the budget it is reported at, retrain the chosen rates
over more seeds, and test once. Look at how the best rate moves as the
budget grows, where each optimizer stops training, and which differences the seeds
resolve.

.. math::

    R_{k+1} = \operatorname{top}_{\max(1,\,\lfloor |R_k|/3 \rfloor)} R_k,

.. math::

    \eta^\star = \operatorname*{arg\,max}_{\eta \in R_K,\ \text{no seed failed}}
    \ \frac{1}{S} \sum_{s=1}^{S} \mathrm{acc}_{\mathrm{val}}(\eta, s, E_K)

for :math:`S` seeds, rungs of :math:`E_1 < \dots < E_K` epochs (:math:`E_K` the full
budget), :math:`R_1` a grid of rates in steps of :math:`\sqrt{10}` that holds the
default, and "top" ranking by mean validation accuracy among the rates where no seed
failed; the last rung :math:`R_K` also takes each optimizer's default rate and the first
rung's own choice.
"""

# %%
# Setup
# -----
# :func:`fashion_optim.experiments.run_tuning` trains (or loads) every rung;
# :func:`~fashion_optim.experiments.compared_outcomes` trains the compared
# configurations: the chosen rates and the one-cycle run over the profile's
# ``compare_seeds``, the default rates over its ``seeds``. Both keep a failed seed as
# such. The profile
# (``FASHION_OPTIM_PROFILE``) sets the seeds and the data sizes.

# sphinx_gallery_thumbnail_number = 1
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from scipy import stats as scipy_stats

from fashion_optim import experiments, plotting, stats
from fashion_optim.plotting import say
from fashion_optim.training import resolve_device

profile = experiments.current_profile()
torch.manual_seed(profile.seeds[0])
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
print(f"profile {profile.name!r}, tuning seeds {list(profile.seeds)}, ", end="")
print(f"compared seeds {list(profile.compare_seeds)}, device {device}")

KEYS = ("sgd", "momentum", "nesterov", "adam")
NAMES = {key: experiments.NAMED[key].name for key in KEYS}

# %%
# Successive halving
# ------------------
# Every rate of each optimizer's grid (:data:`~fashion_optim.experiments.SWEEP_GRIDS`,
# the settings of the shared runs: momentum 0.9, Adam's betas) trains the first rung on
# the whole training split; the best third of the rates that did not fail (at least
# one) goes on to a rung about three times longer, and so on to the full budget
# (:data:`~fashion_optim.experiments.RUNG_EPOCHS`: 1, 3 and 10 epochs; from two rates
# the floor keeps one, half). Keeping a third per rung for three times the epochs is
# Hyperband's default :math:`\eta = 3`
# :cite:p:`jamieson2016nonstochastic,li2018hyperband`; a promoted run continues its own
# shorter run (the same spec with more epochs), as ASHA does :cite:p:`li2020system`. At
# the last rung each optimizer's default rate (the note's shared run) and the first
# rung's own choice join the promoted rates, so the choice is made among them at the
# budget the note reports, and what the first rung alone would have chosen is measured.

tuning = experiments.run_tuning(KEYS)
one_run = tuning.last.points["sgd"][experiments.NAMED["sgd"].lr].finished[0]
print(
    f"{one_run.meta['train_size']:,} training images, "
    f"seeds {list(tuning.seeds)}"
)
for rung, epochs in zip(tuning.rungs, tuning.epochs, strict=True):
    sizes = ", ".join(f"{NAMES[k]} {len(rung.points[k])}" for k in KEYS)
    print(f"  {epochs:>2} epoch(s): {sizes} rates")
per_run = tuning.epochs[-1]
cost = tuning.epoch_cost()
say(
    f"The tuning trains {cost} epochs over its seeds, counting a promoted "
    "run only for "
    f"the epochs it adds: {cost / per_run:.0f} full-budget runs' worth."
)

# %%
# What counts as a failure
# ------------------------
# A run *diverged* when its loss went non-finite or passed
# :data:`~fashion_optim.experiments.DIVERGE_THRESHOLD` times its first value. A run that
# finished can still have learned nothing: it *collapsed* when its final validation
# accuracy is below :data:`~fashion_optim.experiments.COLLAPSE_BELOW`, twice the chance
# level of ten balanced classes. At the top of a grid such a run broke; at the bottom,
# after a short rung, it has not left chance yet. Both are failures, counted apart; no
# rate where a seed failed is promoted or chosen. How the first rung's runs sit around
# the margin, and how unlikely it is that a model at chance reaches it:

first = tuning.rungs[0]
finals = np.array(
    [
        r.history.val_acc[-1]
        for k in KEYS
        for point in first.points[k].values()
        for r in point.finished
    ]
)
low = finals < experiments.COLLAPSE_BELOW
near = np.abs(finals - experiments.COLLAPSE_BELOW) < 0.05
n_val = one_run.meta["val_size"]
at_chance = scipy_stats.binom.sf(
    np.ceil(experiments.COLLAPSE_BELOW * n_val) - 1, n_val, experiments.CHANCE
)
say(
    f"Of {finals.size} first-rung runs that finished, {low.sum()} end "
    "below the margin "
    f"and {near.sum()} within 0.05 of it; a model at chance would reach it on "
    f"{n_val:,} validation images with probability {at_chance:.1e}."
)


def _where(point_items, best):
    """Failed seeds below and above the rung's best rate."""
    below = sum(p.failed for lr, p in point_items if lr < best)
    return below, sum(p.failed for lr, p in point_items if lr > best)


rows = {}
for k in KEYS:
    curve, items = first.curve(k), sorted(first.points[k].items())
    below, above = _where(items, tuning.first_rung_choice(k))
    rows[NAMES[k]] = {
        "diverged": int(curve["diverged"].sum()),
        "collapsed": int(curve["collapsed"].sum()),
        "failed below the best rate": below,
        "failed above it": above,
    }
pd.DataFrame.from_dict(rows, orient="index").rename_axis(
    columns="first rung, seeds"
)

# %%
# The sensitivity curves at every rung
# ------------------------------------
# Validation accuracy after each rung against the rate: dotted after the first, dashed
# after the middle one, solid at the full budget; mean over seeds with a ±1 std band;
# each rung's own choice ringed. ``x`` on the top edge: seeds that diverged; ``v`` on
# the bottom edge: seeds that collapsed (with their counts).

fig, axes = plt.subplots(2, 2, figsize=(9.0, 7.0), sharey=True)
chosen_by_rung = {}
for ax, key in zip(axes.flat, KEYS, strict=True):
    chosen_by_rung[key] = plotting.rung_curves(ax, tuning, key)
    ax.set_title(NAMES[key])
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize="x-small")
for ax in axes[0]:
    ax.set_xlabel("")
for ax in axes[:, 1]:
    ax.set_ylabel("")
for ax in axes[:, 0]:
    ax.set_ylabel("validation accuracy (fraction)")
plt.show()

# %%
# The optimum drifts with the budget
# ----------------------------------
# A short run rewards the rate that makes the most progress early; a long one the rate
# that ends best. Wu et al. :cite:p:`wu2018understanding` showed that tuning a
# learning-rate schedule greedily on a short horizon is biased, towards rates that
# shrink too fast; here each rung trains from scratch at a constant rate, a race that
# rewards fast early progress, so the bias may point the other way. For each
# optimizer: the rate the first rung alone would have chosen, the rate chosen at the
# full budget, and what the first choice costs there, on validation; then the
# direction, counted:

last = tuning.last
for key in KEYS:
    early, chosen = tuning.first_rung_choice(key), tuning.best_rate(key)
    at_full = last.points[key][early]
    if early == chosen:
        say(f"{NAMES[key]}: {chosen:g} at every rung.")
    elif not at_full.complete:
        say(
            f"{NAMES[key]}: the first rung chose {early:g}, which failed at "
            f"the full budget ({at_full.failure_note()}); the full budget "
            f"chose {chosen:g}."
        )
    else:
        cost = (
            at_full.results.final("val_acc")[0]
            - last.points[key][chosen].results.final("val_acc")[0]
        )
        say(
            f"{NAMES[key]}: the first rung chose {early:g}, the full budget "
            f"{chosen:g} ({np.log10(chosen / early):+.1f} decades); at the "
            f"full budget the first choice is {cost:+.4f} on validation."
        )
say(plotting.drift_summary(tuning, NAMES))

# %%
# Momentum as a larger step, across the whole range
# -------------------------------------------------
# Chapter 2 found that in the long run heavy-ball momentum steps like SGD at
# :math:`\eta/(1-\mu)`. Drawn against that *effective* rate after the first rung (every
# rate of the grids), the curves of SGD, momentum and Nesterov fall on one another where
# the claim holds, and part where it does not:

fig, ax = plt.subplots(figsize=(6.4, 4.2))
plotting.sweep_curves(
    ax, first, KEYS[:3], "val_acc", effective=True, labels=NAMES
)
ax.set_ylim(0, 1)
ax.legend(loc="lower center", fontsize="small")
plt.show()

for key in KEYS[:3]:
    stable = first.points[key][first.largest_stable_rate(key)].spec
    say(
        f"{NAMES[key]}: the largest rate at which no seed failed after the "
        "first rung "
        f"is, in effective rate, {experiments.effective_lr(stable):.3g}."
    )

# %%
# The same comparison seed by seed, beside chapter 2's runs at :math:`\eta = 0.01` (SGD
# at :math:`\eta/(1-\mu)` included) and the tuned rates
# (:func:`~fashion_optim.plotting.larger_step_sentences`; every run is cached):

sgd_eff = {("default", "sgd_effective"): experiments.NAMED["sgd_effective"]}
three = experiments.compared_outcomes(tuning, KEYS[:3], sgd_eff)
at_default = {k: o.results for (w, k), o in three.items() if w == "default"}
at_tuned = {k: three["tuned", k] for k in KEYS[:3]}
at_tuned = {k: o.results if o.complete else None for k, o in at_tuned.items()}
step = plotting.larger_step_sentences(at_default, first, at_tuned)
for sentence in step[1]:
    say(sentence)

# %%
# The compared configurations
# ---------------------------
# Each optimizer at its chosen rate and SGD with momentum under OneCycleLR, now over
# the profile's compared seeds (the tuning's seeds, whose runs are already cached, and
# more); each default rate over the tuning's seeds, where the note reports but names
# no winner. A chosen rate equal to the default is one configuration and one row.

base, peak = experiments.schedule_rates(tuning)
onecycle = {("tuned", "onecycle"): experiments.full_budget_onecycle(peak)}
full = experiments.compared_outcomes(tuning, KEYS, onecycle)
rows, seen = {}, {}
for (which, key), out in full.items():
    cfg = out.spec.resolve(profile)
    if (cfg, key) in seen.values():
        continue  # a tuned rate equal to the default: the same runs, one row
    seen[(which, key)] = (cfg, key)
    rate = plotting.rate_label(out.spec)  # "0.01", or OneCycleLR's "peak 0.1"
    label = (
        f"{NAMES[key]}, lr {rate}"
        if key in NAMES
        else f"{out.spec.name}, {rate}"
    )
    rows[(which, key)] = label
runs = {
    label: full[k] for k, label in rows.items() if full[k].results is not None
}
table = pd.DataFrame(
    {
        "chosen": ["yes" if k[0] == "tuned" else "" for k in rows],
        "validation accuracy": [
            plotting.mean_std(o.results.final("val_acc")) for o in runs.values()
        ],
        "test accuracy": [
            plotting.mean_std(o.results.test_acc) for o in runs.values()
        ],
        "failed": [o.failure_note() or "none" for o in runs.values()],
    },
    index=pd.Index(list(runs), name="configuration"),
)
table

# %%
# Paired differences
# ------------------
# Runs with the same seed start from the same weights and see the same mini-batches
# whichever the optimizer, so configurations are compared seed by seed. The candidate
# is the tuned optimizer best on validation; it is set against each other tuned one on
# test accuracy, with a paired t-test over seeds and Holm's correction for the number
# of comparisons :cite:p:`holm1979simple` (intervals at the Bonferroni level
# :math:`1-\alpha/m`, simultaneous). The test images add their own noise: for each seed,
# McNemar's exact test :cite:p:`mcnemar1947note,dietterich1998approximate` counts the
# images on which exactly one of the two is right, and gives the paired standard error
# of the difference over images.

tuned = {
    k: full[("tuned", k)].results for k in KEYS if full[("tuned", k)].complete
}
AMONG = "the four optimizers at their tuned constant rates"
lead, verdict, tests = plotting.leader_verdict(tuned, NAMES, among=AMONG)
labels = experiments.get_splits().test_labels.numpy()


def _mcnemar(a, b) -> list:
    by_seed = {r.seed: r for r in b.results}
    return [
        stats.mcnemar(
            r.test_predictions, by_seed[r.seed].test_predictions, labels
        )
        for r in a.results
        if r.seed in by_seed
    ]


rows = {}
for key, test in tests.items():
    per_seed = _mcnemar(tuned[lead], tuned[key])
    rows[f"{NAMES[lead]} − {NAMES[key]}"] = {
        "mean [interval]": str(test),
        "Holm p": "—"
        if np.isnan(test.pvalue_holm)
        else f"{test.pvalue_holm:.3g}",
        "resolved": "yes" if test.resolved else "no",
        "McNemar, seeds p < 0.05": plotting.mcnemar_summary(per_seed),
        "image SE": f"{np.mean([m.se for m in per_seed]):.4f}",
    }
pd.DataFrame.from_dict(rows, orient="index").rename_axis(
    columns="test accuracy"
)

# %%
# What the numbers support, in words:

say(verdict)
defaults = {k: full[("default", k)].results for k in KEYS}
chosen = {k: full[("tuned", k)].results for k in KEYS}
say(plotting.tuning_losses(defaults, chosen, NAMES))
n_test = len(labels)
for key in tests:
    paired_se = np.mean([m.se for m in _mcnemar(tuned[lead], tuned[key])])
    accs = (tuned[lead].test_acc[0], tuned[key].test_acc[0])
    apart = np.hypot(*(stats.binomial_se(p, n_test) for p in accs))
    say(
        f"{NAMES[lead]} − {NAMES[key]}: a paired standard error over the "
        "images of "
        f"{paired_se:.4f} per seed, against {apart:.4f} were the two tested on "
        f"separate draws of {n_test:,} images: pairing by image removes "
        f"{1 - paired_se / apart:.0%} of it."
    )

# %%
# Takeaways
# ---------
# - A rate chosen on a short budget is chosen for a different problem: the drift of the
#   optimum above is measured at every rung, and the choice is made at the full budget.
# - A failed run is diverged *or* collapsed (below twice chance at the end); a model at chance
#   almost never reaches the margin, and no choice lands where a seed failed.
# - A leader is named only where a paired, corrected test resolves every comparison;
#   otherwise the page says which optimizers the seeds do not tell apart.
#
# References
# ----------
# Tuning each optimizer before comparing follows :cite:t:`schmidt2021descending`,
# :cite:t:`schneider2019deepobs` and :cite:t:`dahl2023benchmarking`; momentum as in
# :cite:t:`sutskever2013importance`, Adam :cite:p:`kingma2015adam`; Fashion-MNIST
# :cite:p:`xiao2017fashion`.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py`: momentum, a larger step.
# - :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`: a faster guess of the rate.
# - :func:`fashion_optim.experiments.run_tuning`,
#   :func:`fashion_optim.experiments.best_on_validation`,
#   :func:`fashion_optim.stats.paired_tests`, :func:`fashion_optim.stats.mcnemar`.
