# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
============================================
Tuning every optimizer before comparing them
============================================

The earlier chapters ran each optimizer at one default learning rate, so their
comparisons rank learning rates as much as optimizers. Benchmarks of optimizers
(DeepOBS, Schmidt et al.'s "Crowded Valley", AlgoPerf) tune each one first. We do the
same at a small scale: a sweep of learning rates per optimizer on a short budget,
each rate chosen on **validation** accuracy, then every optimizer retrained on the full
budget at its rate and tested once. Look at how flat each curve is near its top, where
each one stops training, and how much of the default-rate gap is left after tuning.

.. math::

    \eta^\star = \operatorname*{arg\,max}_{\eta \in G,\ \text{no seed diverged}}
    \ \frac{1}{S} \sum_{s=1}^{S} \mathrm{acc}_{\mathrm{val}}(\eta, s),
    \qquad G = \{\eta_0\,10^{k/2}\}_{k=0}^{6}

for :math:`S` seeds and a grid :math:`G` in steps of :math:`\sqrt{10}` that holds the
default rate.
"""

# %%
# Setup
# -----
# The sweep goes through :func:`fashion_optim.experiments.run_sweep`, the full-budget
# runs through :func:`~fashion_optim.experiments.run_outcomes`: both train what the
# cache lacks and keep a diverged seed as such. The profile
# (``FASHION_OPTIM_PROFILE``) sets the seeds and the data sizes.

# sphinx_gallery_thumbnail_number = 1
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator
from scipy import stats as scipy_stats

from fashion_optim import experiments, plotting, stats
from fashion_optim.training import resolve_device

profile = experiments.current_profile()
torch.manual_seed(profile.seeds[0])
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
print(f"profile {profile.name!r}, seeds {list(profile.seeds)}, device {device}")

KEYS = ("sgd", "momentum", "nesterov", "adam")
NAMES = {key: experiments.NAMED[key].name for key in KEYS}

# %%
# The sweep
# ---------
# Each optimizer of the note, with its settings (momentum 0.9, Adam's betas), on seven
# rates :data:`~fashion_optim.experiments.SWEEP_GRIDS` from where a short training
# barely moves to where it diverges, on the short budget
# :data:`~fashion_optim.experiments.SHORT_BUDGET`:

budget = experiments.SHORT_BUDGET.resolve(profile)
sweep = experiments.run_sweep(KEYS)
runs_per_point = len(profile.seeds)
print(f"{budget.train_subset:,} training images x {budget.epochs} epochs,")
n_rates = sum(len(points) for points in sweep.points.values())
print(f"{n_rates} rates x {runs_per_point} seeds")

# %%
# Validation accuracy (top) and loss (bottom) after the last epoch against the rate.
# Bands: ±1 std over seeds; ``x``: seeds that diverged, with their count; rings: the
# rate each optimizer chooses.

fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 7.6), sharex=True)
plotting.sweep_curves(top, sweep, KEYS, "val_acc", labels=NAMES)
plotting.sweep_curves(bottom, sweep, KEYS, "val_loss", labels=NAMES)
top.set_ylim(0, 1.05)
top.legend(loc="upper left", fontsize="small")
plt.show()

# %%
# The chosen rates beside the defaults. "Next rate up" is the sweep's rate above the
# chosen one: its validation accuracy says how close the choice sits to the rates that
# stop training.


def _acc(point) -> str:
    if point.diverged:
        return f"{len(point.diverged)} diverged"
    return plotting.mean_std(point.results.final("val_acc"))


def _row(key: str) -> dict:
    default, best = experiments.NAMED[key].lr, sweep.best_rate(key)
    grid = list(sweep.rates(key))
    i = grid.index(best)
    return {
        "optimizer": NAMES[key],
        "default rate": f"{default:g}",
        "val acc, default": _acc(sweep.points[key][default]),
        "chosen rate": f"{best:g}",
        "val acc, chosen": _acc(sweep.points[key][best]),
        "next rate up": "none" if i + 1 == len(grid) else _acc(sweep.points[key][grid[i + 1]]),
    }


pd.DataFrame([_row(key) for key in KEYS]).set_index("optimizer")

# %%
# How flat is the top? The rates whose mean validation accuracy is within one standard
# deviation (over seeds) of the chosen one are as good as it at this number of seeds:


def _near_best(key: str) -> list[float]:
    curve, best = sweep.curve(key), sweep.best_rate(key)
    i = int(np.flatnonzero(curve["lr"] == best)[0])
    close = curve["mean"] >= curve["mean"][i] - curve["std"][i]
    return [float(lr) for lr in curve["lr"][close & (curve["diverged"] == 0)]]


for key in KEYS:
    near = _near_best(key)
    span = max(near) / min(near)
    print(f"{NAMES[key]}: {len(near)} rate(s), a span of x{span:.3g}")

# %%
# Momentum as a larger step, across the whole range
# -------------------------------------------------
# Chapter 2 found that in the long run heavy-ball momentum steps like SGD at
# :math:`\eta/(1-\mu)`. Drawn against that *effective* rate, the curves of SGD,
# momentum and Nesterov should fall on one another where the claim holds, and part
# where it does not:

fig, ax = plt.subplots(figsize=(6.4, 4.2))
plotting.sweep_curves(ax, sweep, KEYS[:3], "val_acc", effective=True, labels=NAMES)
ax.set_ylim(0, 1)
ax.legend(loc="lower center", fontsize="small")
plt.show()

# %%
# Where each variant does best and where its loss first blows up (a diverged seed), in
# effective rate, and how far apart the curves are at the effective rates they share:

for key in KEYS[:3]:
    spec = sweep.points[key][sweep.largest_stable_rate(key)].spec
    best = sweep.points[key][sweep.best_rate(key)].spec
    print(f"{NAMES[key]}: best at an effective rate of {experiments.effective_lr(best):.3g};")
    print(f"  no seed diverged up to {experiments.effective_lr(spec):.3g}")
sgd = sweep.curve("sgd")
for key in ("momentum", "nesterov"):
    c = sweep.curve(key)
    # the momentum grid times 10 is the SGD grid shifted: match the rates they share
    shared = np.isin(np.round(c["lr"] * 10, 8), np.round(sgd["lr"], 8))
    at_sgd = np.isin(np.round(sgd["lr"], 8), np.round(c["lr"] * 10, 8))
    gap = np.abs(c["mean"][shared] - sgd["mean"][at_sgd])
    gap = gap[np.isfinite(gap)]
    print(f"{NAMES[key]} vs SGD at equal effective rates: mean |gap| {gap.mean():.3f}")
    print(f"  over {gap.size} rates")

# %%
# The full budget, at the default and at the chosen rate
# ------------------------------------------------------
# Each optimizer is retrained on the full budget (the shared runs' 10 epochs on the whole
# training split in the full profile) at its chosen rate, over the same seeds.
# :func:`~fashion_optim.experiments.tuned_specs` keeps everything else of the shared
# runs, so a chosen rate equal to the default is the same run. A tuned rate sits near
# the edge of stability, so a seed may diverge on the longer budget; it is reported as
# such.

tuned = experiments.tuned_specs(sweep, KEYS)
specs = {
    **{("default", k): experiments.NAMED[k] for k in KEYS},
    **{("tuned", k): tuned[k] for k in KEYS},
}
full = experiments.run_outcomes(specs)
done = {k: full[("tuned", k)].results for k in KEYS}
done = {k: res for k, res in done.items() if res is not None}
fig, ax = plt.subplots(figsize=(6.4, 4.2))
labels = {k: f"{NAMES[k]}, tuned" for k in done}
plotting.learning_curves(ax, done, "val_acc", labels=labels)
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend(loc="lower right", fontsize="small")
plt.show()

# %%
# The test set, once per configuration (mean ± std over seeds; a configuration with a
# diverged seed reports how many):


def _test(outcome) -> str:
    if outcome.diverged:
        return f"{len(outcome.diverged)} of {len(profile.seeds)} seeds diverged"
    return plotting.mean_std(outcome.results.test_acc)


table = pd.DataFrame(
    {
        "default rate": [f"{experiments.NAMED[k].lr:g}" for k in KEYS],
        "test acc, default": [_test(full[("default", k)]) for k in KEYS],
        "chosen rate": [f"{tuned[k].lr:g}" for k in KEYS],
        "test acc, tuned": [_test(full[("tuned", k)]) for k in KEYS],
    },
    index=pd.Index([NAMES[k] for k in KEYS], name="optimizer"),
)
table

# %%
# Paired differences
# ------------------
# Runs with the same seed start from the same weights and see the same mini-batches
# whichever the optimizer, so the optimizers are compared seed by seed: the mean
# difference of test accuracy with a 95 % Student-t interval over the seeds. The
# reference is the tuned optimizer with the best validation accuracy on the full budget.

N_TEST = len(experiments.get_splits().test_labels)
complete = {k: full[("tuned", k)].results for k in KEYS if full[("tuned", k)].complete}
ref = experiments.best_on_validation(complete)
se = stats.binomial_se(complete[ref].test_acc[0], N_TEST)
pairs = {
    f"{NAMES[ref]} − {NAMES[k]}": stats.paired_difference(
        complete[ref].per_seed("test_acc"), complete[k].per_seed("test_acc")
    )
    for k in complete
    if k != ref
}
pd.DataFrame(
    {
        "mean difference": [f"{d.mean:+.4f}" for d in pairs.values()],
        "95 % interval": [f"[{d.low:+.4f}, {d.high:+.4f}]" for d in pairs.values()],
        "excludes 0": ["yes" if d.excludes_zero else "no" for d in pairs.values()],
    },
    index=pd.Index(list(pairs), name="tuned, test accuracy"),
)

# %%
# With :math:`n` seeds the interval uses Student's :math:`t` with :math:`n-1` degrees
# of freedom: with three seeds its half-width is 4.3 standard errors, so only large or
# very consistent differences exclude zero. Whatever the seeds, the test set itself has
# a sampling error: the binomial standard error of the reference's accuracy on the test
# images is

print(f"sqrt(p (1 - p) / n) = {se:.4f} (p = {complete[ref].test_acc[0]:.4f}, n = {N_TEST:,})")

# %%
# Does the short budget predict the full one?
# -------------------------------------------
# The sweep chose on a short budget, assuming that what ranks well there ranks well on
# the full one. Every configuration trained both ways (each optimizer at its default and
# at its chosen rate) tests that assumption: their validation accuracy on the short
# budget against the full one, and the rank correlation of the two orders.

short_full = {
    (which, k): (
        sweep.points[k][specs[(which, k)].lr].results.final("val_acc")[0],
        full[(which, k)].results.final("val_acc")[0],
    )
    for (which, k) in specs
    if full[(which, k)].complete
}
xs, ys = np.array(list(short_full.values())).T
rho = scipy_stats.spearmanr(xs, ys).statistic
fig, ax = plt.subplots(figsize=(5.6, 4.2))
for (which, k), (x, y) in short_full.items():
    ax.plot(
        x,
        y,
        "o" if which == "tuned" else "s",
        color=plotting.color_for(k),
        mfc="none" if which == "default" else None,
        ms=8,
        label=f"{NAMES[k]}, {which}",
    )
ax.set(
    xlabel="validation accuracy, short budget (fraction)",
    ylabel="validation accuracy, full budget (fraction)",
)
ax.legend(fontsize="x-small", loc="lower right")
plt.show()

# %%
# The numbers behind the figure, in words:

at_rate = {k: sweep.points[k][tuned[k].lr].results for k in complete}
order_short = experiments.rank_on_validation(at_rate)  # the short budget's order
order_full = experiments.rank_on_validation(complete)
same = "the same" if order_short == order_full else "a different"
print(f"Spearman rank correlation over {len(xs)} configurations: {rho:.2f}")
print(f"tuned optimizers ranked on validation: {same} order on both budgets")
print("short: " + " > ".join(order_short))
print("full:  " + " > ".join(order_full))
gains = {
    k: short_full[("tuned", k)][1] - short_full[("default", k)][1]
    for k in KEYS
    if ("tuned", k) in short_full and ("default", k) in short_full
}
better = [k for k, g in gains.items() if g > 0]
print(f"tuning raised full-budget validation accuracy for {len(better)} of {len(gains)}")

# %%
# Takeaways
# ---------
# - A comparison at default rates ranks rates as much as optimizers: the tables above
#   put each optimizer's default and chosen rate side by side, and the figures show how
#   far from its best each default sits.
# - Every choice is made on validation data over several seeds; the test set reports
#   the chosen configurations, once each, and its own standard error bounds how small a
#   difference it can resolve.
# - Drawn against the effective rate :math:`\eta/(1-\mu)`, SGD with and without
#   momentum can be compared over the whole range, not only at one rate; the printed
#   gaps say how closely they agree here.
# - The chosen rates sit near the edge of stability on the short budget; whether the
#   short budget's order holds on the full one is measured above, not assumed.
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
# - :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py`: momentum as a larger step.
# - :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`: a faster guess of the rate.
# - :func:`fashion_optim.experiments.run_sweep`,
#   :func:`fashion_optim.experiments.best_on_validation`,
#   :func:`fashion_optim.stats.paired_difference`.
