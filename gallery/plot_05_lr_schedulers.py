# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
==========================================
Learning-rate schedulers on a short budget
==========================================

A scheduler changes the learning rate while the network trains. Every schedule here
starts from the constant rate that the tuning (chapter 6) chose for SGD with momentum
on full-budget validation, so a schedule is compared with a tuned rate, not a default one. We take
StepLR and LambdaLR apart, separate OneCycleLR's rate from its momentum cycle, rank the
schedules on validation, and repeat a classic mistake on purpose: a step schedule whose
rate is a thousandth of its start by epoch 10. Look at each rate on a log axis.

.. math::

    \eta_e^{\mathrm{StepLR}} = \eta_0\,\gamma^{\lfloor e / k \rfloor}, \qquad
    \eta_e^{\mathrm{LambdaLR}} = \eta_0\,f(e),

    f_{\text{warm-up}, 1/\sqrt{t}}(e) = \min\Bigl(\frac{t}{w}, \sqrt{\frac{w}{t}}\Bigr),
    \quad t = e + 1,

for epoch :math:`e = 0, 1, \dots`, step size :math:`k`, decay :math:`\gamma`, base rate
:math:`\eta_0`, a function :math:`f` of our choice, and :math:`w = 2` warm-up epochs.
"""

# %%
# Setup
# -----
# Every run goes through :func:`fashion_optim.experiments.run_outcomes`, which trains
# what the cache lacks, several runs at a time, and keeps a failed seed (diverged, or
# collapsed to chance) as such. The profile (``FASHION_OPTIM_PROFILE``) sets the seeds.
# Runs with the same seed start from the same weights and see the same mini-batches,
# so every comparison pairs them by seed: a mean difference with its 95 % Student-t
# interval, written ``+0.0123 [+0.0010, +0.0236]``.

# sphinx_gallery_thumbnail_number = 1
import inspect

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from fashion_optim import experiments, lr, plotting, stats
from fashion_optim.plotting import say
from fashion_optim.training import resolve_device

profile = experiments.current_profile()
SEEDS = list(profile.seeds)
torch.manual_seed(SEEDS[0])
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()


def paired(a, b, metric="val_acc"):
    """``a - b`` seed by seed for two of the page's runs (``every``, trained below), over
    the seeds at which both finished."""
    return stats.paired_by_seed(every[a].results, every[b].results, metric)


print(f"profile {profile.name!r}, seeds {SEEDS}, device {device}")

# %%
# Two rates from the tuning
# -------------------------
# The tuning of chapter 6 (:func:`~fashion_optim.experiments.run_tuning`) trained SGD
# with momentum 0.9 at seven rates, steps of :math:`\sqrt{10}`, by successive halving up
# to the full budget. The **base rate** is the one it chose on full-budget validation.
# OneCycleLR's **peak** is the grid's next rate above it (:math:`\sqrt{10}` times
# higher) unless a seed failed there (diverged or collapsed) at any rung, in which case
# it is the base rate: a one-cycle schedule stays near its peak only briefly and anneals from it,
# so it may peak above the best constant rate :cite:p:`smith2018disciplined`, but not
# where a constant rate already fails. The table: every rate after the first rung.

tuning = experiments.run_tuning(["momentum"])
base, peak = experiments.schedule_rates(tuning)
curve = tuning.rungs[0].curve("momentum", "val_acc")
role = {base: "base", peak: "peak"} if base != peak else {base: "base and peak"}
pd.DataFrame(
    {
        "validation accuracy": [
            plotting.mean_std(pair)
            for pair in zip(curve["mean"], curve["std"], strict=True)
        ],
        "diverged seeds": curve["diverged"],
        "collapsed seeds": curve["collapsed"],
        "chosen as": [role.get(rate, "") for rate in curve["lr"]],
    },
    index=pd.Index([f"{rate:g}" for rate in curve["lr"]], name="learning rate"),
)

# %%
# Where the peak sits on the first rung, and against each seed's range test
# (:ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`): its suggestion, where the
# smoothed loss falls fastest, and ``lr_max``, where it is lowest.

MOMENTUM = experiments.NAMED["momentum"]
tests = [experiments.run_range_test(MOMENTUM, seed=seed) for seed in SEEDS]
ratios = {
    "suggestion": ", ".join(f"{peak / t.suggested_lr:.2f}x" for t in tests),
    "lr_max": ", ".join(f"{peak / t.lr_max:.2f}x" for t in tests),
}
acc = dict(zip(curve["lr"], curve["mean"], strict=True))
say(
    (
        f"Base rate and peak are both {base:g}: a seed failed at the grid's next rate "
        "up, or there is none. "
        if peak == base
        else f"Base rate {base:g}, peak {peak:g} ({peak / base:.3g}x); after the first "
        f"rung the peak's mean validation accuracy is {acc[base] - acc[peak]:+.4f} "
        "below the base rate's. "
    )
    + f"Seed by seed, the peak is {ratios['suggestion']} the range test's suggestion and "
    f"{ratios['lr_max']} its lr_max; it lies in the useful range [lr_min, lr_max] on "
    f"{sum(t.lr_min <= peak <= t.lr_max for t in tests)} of {len(SEEDS)} seeds."
)

# %%
# Every run of the page
# ---------------------
# :func:`~fashion_optim.experiments.schedule_specs` names each schedule's torch class and
# arguments, from the base rate and the peak; step sizes and milestones follow the
# number of epochs, and ReduceLROnPlateau gets an eager ``patience=1``. One call trains
# them all with the runs of the later sections: the StepLR pitfall and the full budget.

specs = experiments.schedule_specs(base, peak)  # key -> Spec
PITFALL = {"step_size": 3, "gamma": 0.1}
long_base = experiments.SHORT_BUDGET.replace(
    name="momentum, long run on a small subset",
    epochs=experiments.PerProfile(full=20, quick=12),
    train_subset=experiments.PerProfile(full=5000, quick=2000),
    val_subset=experiments.PerProfile(full=2000, quick=1000),
)
every = experiments.run_outcomes(
    {
        **specs,
        "pitfall constant": long_base.replace(scheduler="constant"),
        "pitfall step": long_base.replace(
            scheduler="step", scheduler_kwargs=PITFALL
        ),
    }
)
full_specs = {
    "full default": MOMENTUM,
    "full tuned": experiments.tuned_specs(tuning, ["momentum"])["momentum"],
    "full onecycle": experiments.full_budget_onecycle(peak),
}  # compared at the full budget: over the profile's compared seeds
every |= experiments.run_outcomes(full_specs, seeds=profile.compare_seeds)
runs = {key: every[key].results for key in specs}  # the seeds that finished
EPOCHS = specs["constant"].resolve(profile).epochs
SPE = int(runs["constant"].results[0].meta["steps_per_epoch"])
print(f"short budget: {EPOCHS} epochs of {SPE} mini-batches of 128 images")


# %%
# What each schedule does to the rate
# -----------------------------------
# :func:`fashion_optim.lr.trace_lr` steps each scheduler exactly as the
# :class:`~fashion_optim.training.Trainer` does, without a model (ReduceLROnPlateau is
# fed the first seed's validation losses). Left: the schedules stepped once an epoch, a
# staircase. Right: OneCycleLR, stepped every mini-batch, from ``max_lr / 25`` up to the
# peak over 30 % of the steps, then down to ``max_lr / 25 / 10,000``. A variant is dashed
# in the colour of the schedule it rewrites.


def trace(key):
    kw = dict(specs[key].scheduler_kwargs)
    if (
        "lr_lambda" in kw
    ):  # a spec names its LambdaLR factor; torch needs the function
        kw["lr_lambda"] = experiments.LR_LAMBDAS[kw["lr_lambda"]]
    if specs[key].scheduler == "plateau":
        kw["metrics"] = every[key].finished[0].history.val_loss
    return lr.trace_lr(
        specs[key].scheduler or "constant", EPOCHS, SPE, lr=base, **kw
    )


traces = {key: trace(key) for key in specs}
x = np.arange(1, EPOCHS * SPE + 1) / SPE  # in epochs, one point per mini-batch
fig, axes = plt.subplots(1, 2, figsize=(9.5, 5.8))
for key, rates in traces.items():
    side = axes[1] if key.startswith("onecycle") else axes[0]
    wide = (
        {"lw": 5, "alpha": 0.3} if key == "constant" else {}
    )  # visible under the others
    for ax in axes if key == "constant" else [side]:
        ax.plot(
            x,
            rates,
            label=specs[key].name,
            **plotting.schedule_style(key),
            **wide,
        )
for ax, title in zip(
    axes, ("stepped once an epoch", "stepped every mini-batch"), strict=True
):
    plotting.label_lr_axis(ax, "y")
    ax.set(xlabel="epoch", title=title, xticks=range(EPOCHS + 1))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=10.5)
plt.show()

# %%
# StepLR and LambdaLR
# -------------------
# ``StepLR(k, 0.1)`` multiplies the optimizer's current rate by 0.1 after every k-th
# epoch; ``LambdaLR`` sets it to the base rate times :math:`f(e)`, a function of the
# epoch that we give it. With :math:`f(e) = 0.1^{\lfloor e/k \rfloor}` both give the same
# rates: a LambdaLR writes any StepLR, and any schedule that depends on the epoch alone.
# Same rates and same seed should give the same runs, bit for bit.

trace_gap = np.abs(traces["step"] - traces["lambda_step"]).max()
step, lam = runs["step"], runs["lambda_step"]
curve_gap = np.abs(step.stack("val_acc") - lam.stack("val_acc")).max()
same = all(
    a.history.same_as(b.history)
    for a, b in zip(step.results, lam.results, strict=True)
)
say(
    f"Largest difference between the two traces over {traces['step'].size} mini-batches: "
    f"{trace_gap:.3g}. Largest difference between their validation curves over "
    f"{len(step.seeds)} seeds: {curve_gap:.3g}; their histories are "
    f"{'bit-identical on every seed' if same else 'not bit-identical'}."
)

# %%
# What a drop does to the validation curve: a tenfold drop divides every step by ten.
# The noise of the mini-batch gradients then moves the weights ten times less, so the
# network settles deeper into the valley it is in; but it also moves ten times slower
# along the valley. Early in a run, while the constant rate still gains every epoch,
# the second effect can win. Left: the mean over seeds; right: each schedule minus the
# constant rate, seed by seed, mean ± one standard deviation.

x_ep = np.arange(1, EPOCHS + 1)
const_acc = runs["constant"].stack("val_acc")
fig, (ax_acc, ax_diff) = plt.subplots(1, 2, figsize=(9.5, 4.4))
for key, res in runs.items():
    style = {
        **plotting.schedule_style(key),
        "marker": "o",
        "ms": 3.5,
        "label": res.spec.name,
    }
    ax_acc.plot(x_ep, res.stack("val_acc").mean(axis=0), **style)
    if key != "constant" and res.seeds == runs["constant"].seeds:
        plotting.band(
            ax_diff, x_ep, res.stack("val_acc") - const_acc, alpha=0.1, **style
        )
ax_diff.axhline(0.0, color=plotting.color_for("constant"), lw=1.2)
ax_acc.set(xlabel="epoch", ylabel="validation accuracy (fraction)", xticks=x_ep)
ax_diff.set(
    xlabel="epoch", ylabel="minus the constant rate's (fraction)", xticks=x_ep
)
fig.legend(
    *ax_acc.get_legend_handles_labels(), loc="outside lower center", ncols=3
)
plt.show()

k = specs["step"].scheduler_kwargs["step_size"]
mean = {
    key: runs[key].stack("val_acc").mean(axis=0)
    for key in ("constant", "step", "lambda")
}
say(
    f"In epoch {k + 1}, the first at a tenth of the rate, StepLR's mean validation accuracy "
    f"changed by {mean['step'][k] - mean['step'][k - 1]:+.4f}, the constant rate's by "
    f"{mean['constant'][k] - mean['constant'][k - 1]:+.4f}. At the end, StepLR minus the "
    f"constant rate: {paired('step', 'constant')}."
)

# %%
# A warm-up, then :math:`1/\sqrt{t}`
# ----------------------------------
# The ``"lambda"`` schedule is the Transformer's :cite:p:`vaswani2017attention`, counted
# in epochs: a linear warm-up over :math:`w = 2` epochs, which :cite:t:`goyal2017accurate`
# use so that large-batch SGD reaches a large rate without blowing up in its first,
# poorly conditioned steps; then a decay as :math:`1/\sqrt{t}`, the step size of robust
# stochastic approximation :cite:p:`nemirovski2009robust`. It decays more slowly than the
# :math:`1/t` of classical stochastic approximation :cite:p:`robbins1951stochastic`,
# whose fast rate needs strong convexity and a well-chosen constant.

factors = traces["lambda"][::SPE] / base
say(
    f"Factors per epoch: {', '.join(f'{f:.3g}' for f in factors)}. After epoch 1, at "
    f"{factors[0]:.3g}x the base rate, the mean validation accuracy is "
    f"{mean['lambda'][0]:.4f} against {mean['constant'][0]:.4f} for the "
    f"constant rate; at the end, minus the constant rate: {paired('lambda', 'constant')}."
)

# %%
# OneCycleLR, with and without its momentum cycle
# -----------------------------------------------
# OneCycleLR also cycles the momentum against the rate, from ``max_momentum`` down to
# ``base_momentum`` while the rate climbs, and back :cite:p:`smith2018disciplined`.
# ``"onecycle_flat"`` holds it at the optimizer's 0.9: the same rates, but not the same
# step in the long run, :math:`\eta/(1-\mu)`
# (:func:`~fashion_optim.experiments.effective_lr`). The table gives each seed's final
# validation accuracy.

low = (
    inspect.signature(torch.optim.lr_scheduler.OneCycleLR)
    .parameters["base_momentum"]
    .default
)
held = specs["onecycle_flat"].optimizer_kwargs["momentum"]
say(
    f"At the peak rate {peak:g}, the long-run step is {experiments.effective_lr(peak, low):.3g}"
    f" with the cycle (momentum {low}) and {experiments.effective_lr(peak, held):.3g} "
    f"without it (momentum {held}). Final validation accuracy, cycled minus held: "
    f"{paired('onecycle', 'onecycle_flat')}; held minus the constant rate: "
    f"{paired('onecycle_flat', 'constant')}; cycled minus the constant rate: "
    f"{paired('onecycle', 'constant')}."
)
trio = ("constant", "onecycle", "onecycle_flat")
per_seed = {
    specs[k].name: pd.Series(runs[k].per_seed("val_acc"), runs[k].seeds)
    for k in trio
}
pd.DataFrame(per_seed).rename_axis("seed").map("{:.4f}".format)

# %%
# All the schedules, ranked on validation
# ---------------------------------------
# Ranked by mean validation accuracy with
# :func:`~fashion_optim.experiments.rank_on_validation` (a schedule with a failed seed
# is not eligible), each with its paired difference from the constant rate (the dotted
# line) and, once per schedule, its accuracy on the 10,000 test images. Below the figure:
# which schedules that only ever lower the rate (read from their traces) end above the
# constant rate, and whether ReduceLROnPlateau lowered the rate at all.

eligible = {
    key: res if every[key].complete else None for key, res in runs.items()
}
ranked = experiments.rank_on_validation(eligible)
fig, ax = plt.subplots(figsize=(7.0, 4.2))
plotting.schedule_ranking(ax, runs, ranked)
ax.set_title(f"After {EPOCHS} epochs, {len(SEEDS)} seeds, best at the top")
plt.show()
decaying = [
    k for k, t in traces.items() if np.all(np.diff(t) <= 0) and t[-1] < t[0]
]
wins = [k for k in decaying if paired(k, "constant").mean > 0]
sure = [k for k in wins if paired(k, "constant").excludes_zero]
twins = zip(runs["plateau"].results, runs["constant"].results, strict=False)
say(
    f"Best on validation: {specs[experiments.best_on_validation(eligible)].name}. Of the "
    f"{len(decaying)} decaying schedules ({', '.join(specs[k].name for k in decaying)}), "
    f"{len(wins)} end above the constant rate on mean validation accuracy "
    f"({', '.join(specs[k].name for k in wins) or 'none'}), {len(sure)} with an interval "
    f"above zero. ReduceLROnPlateau lowered the rate "
    f"{sum(plotting.rate_drops(r.history.lr) for r in runs['plateau'].results)} times; "
    f"{sum(p.history.same_as(c.history) for p, c in twins)} of its runs are the constant "
    f"run, bit for bit."
)
METRICS = ("val_acc", "test_acc")
table = plotting.results_table(
    {specs[k].name: runs[k] for k in ranked}, metrics=METRICS
)
table.insert(
    1, "val acc minus constant", [str(paired(k, "constant")) for k in ranked]
)
table.rename_axis("schedule")

# %%
# The pitfall: decaying too fast
# ------------------------------
# ``StepLR(step_size=3, gamma=0.1)`` divides the rate by ten every three epochs: over 20
# epochs, six divisions: a setting that looks harmless in code. We train it and the
# constant rate from the note's default rate (``NAMED["momentum"]``), on every seed, on
# 5,000 training images for 20
# epochs (2,000 for 12 in the quick profile), so that many epochs fit the budget: the
# validation accuracy, mean ± std over seeds; the dotted lines mark the drops.

pit = {k: every[f"pitfall {k}"].results for k in ("constant", "step")}
N_LONG, LR0 = pit["step"].config.epochs, pit["step"].config.lr
labels = {"constant": "constant", "step": "StepLR(step_size=3, gamma=0.1)"}
fig, ax = plt.subplots(figsize=(7.0, 4.0))
plotting.learning_curves(ax, pit, "val_acc", labels=labels, marker="o", ms=3)
for e in range(PITFALL["step_size"], N_LONG, PITFALL["step_size"]):
    ax.axvline(e + 0.5, color=plotting.NEUTRAL, lw=0.7, ls=":")
ax.set(
    xticks=range(0, N_LONG + 1, 3),
    title=f"{len(SEEDS)} seeds, base rate {LR0:g}",
)
ax.legend(loc="lower right")
plt.show()

# %%
# The epoch from which StepLR's rate is a thousandth of the base rate, on each seed, and
# how much each run still changed from the epoch before it to the end:

frozen = {
    r.seed: np.argmax(np.less_equal(r.history.lr, 1e-3 * LR0))
    for r in pit["step"].results
}


def since(
    r, field
):  # the change from the epoch before the thousandfold fall to the end
    return (
        getattr(r.history, field)[-1]
        - getattr(r.history, field)[frozen[r.seed] - 1]
    )


FIELDS = ("val_acc", "train_loss")
moved = {
    k: [max(abs(since(r, f)) for r in res.results) for f in FIELDS]
    for k, res in pit.items()
}
say(
    f"StepLR's rate falls a thousandfold in epoch "
    f"{' or '.join(str(f + 1) for f in sorted(set(frozen.values())))} on the {len(frozen)} "
    f"seeds. From the epoch before to the end, on any seed, its validation accuracy moved "
    f"by at most {moved['step'][0]:.4f} and its training loss by {moved['step'][1]:.4f} "
    f"nat; the constant rate's by up to {moved['constant'][0]:.4f} and "
    f"{moved['constant'][1]:.4f} nat."
)

# %%
# One cycle on the full budget
# ----------------------------
# With every training image and the note's epochs, three runs of SGD with momentum that
# differ only in rate and schedule: the default rate (``NAMED["momentum"]``), the tuned
# rate (:func:`~fashion_optim.experiments.tuned_specs`) and OneCycleLR peaking at the
# peak above (:func:`~fashion_optim.experiments.full_budget_onecycle`), each over the
# profile's compared seeds. A failed seed is counted, never hidden. Paired differences
# on the test images, read once per configuration, with Holm's correction for the three
# pairs (:func:`~fashion_optim.stats.paired_tests`), and each seed's McNemar test over
# the images (:func:`~fashion_optim.stats.mcnemar`):

full = {k: every[f"full {k}"] for k in ("default", "tuned", "onecycle")}
for key, o in full.items():
    print(f"{key}: {o.spec.name}, {o.failure_note() or 'no seed failed'}")
PAIRS = [("onecycle", "default"), ("onecycle", "tuned"), ("tuned", "default")]
ok = [(a, b) for a, b in PAIRS if full[a].finished and full[b].finished]
values = {a: full[a].results for a in full}
pairs = {
    f"{a} minus {b}": stats.paired_by_seed_values(values[a], values[b])
    for a, b in ok
}
tests = stats.paired_tests(pairs)
labels = experiments.get_splits().test_labels.numpy()
for (a, b), (name, t) in zip(ok, tests.items(), strict=True):
    by_seed = {r.seed: r.test_predictions for r in full[b].finished}
    mc = [
        stats.mcnemar(r.test_predictions, by_seed[r.seed], labels)
        for r in full[a].finished
        if r.seed in by_seed
    ]
    print(
        f"test acc., {name}: {t}, {'resolved' if t.resolved else 'not resolved'}"
    )
    print(f"  McNemar p per seed: {', '.join(f'{m.pvalue:.2g}' for m in mc)}")
plotting.results_table(
    {o.spec.name: o.results for o in full.values() if o.finished},
    metrics=METRICS,
)

# %%
# Takeaways
# ---------
# - Start every schedule from a tuned rate; choose among schedules on validation, and let
#   the test set report the choice.
# - ``LambdaLR`` with :math:`0.1^{\lfloor e/k \rfloor}` is ``StepLR(k, 0.1)``; a
#   LambdaLR writes any per-epoch schedule, the Transformer's included.
# - OneCycleLR changes the rate and the momentum: compare it with and without the cycle
#   before crediting the rate, since :math:`\eta/(1-\mu)` sets the step.
# - ``StepLR(step_size=3, gamma=0.1)`` ends 20 epochs at a millionth of its base rate:
#   trace a schedule before training with it.
#
# References
# ----------
# The range test and cyclical rates are :cite:t:`smith2017cyclical`; the one-cycle
# policy, its momentum cycle and its peak above the best constant rate,
# :cite:t:`smith2018disciplined`; the warm-up, :cite:t:`goyal2017accurate`; the
# Transformer's schedule, :cite:t:`vaswani2017attention`; step sizes of stochastic
# approximation, :cite:t:`robbins1951stochastic` and :cite:t:`nemirovski2009robust`.
# The data set is Fashion-MNIST :cite:p:`xiao2017fashion`. See the
# :doc:`bibliography </references>` for full entries.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`: the range test and the sweep.
# - :ref:`sphx_glr_auto_gallery_plot_06_tuned_comparison.py`: the tuning these rates
#   come from.
# - :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py`: the momentum optimizer.
# - :func:`fashion_optim.lr.trace_lr`, :func:`fashion_optim.experiments.schedule_specs`,
#   :func:`fashion_optim.experiments.schedule_rates`,
#   :func:`fashion_optim.plotting.schedule_ranking`.
# - :class:`torch.optim.lr_scheduler.StepLR`, :class:`torch.optim.lr_scheduler.LambdaLR`,
#   :class:`torch.optim.lr_scheduler.OneCycleLR`: torch's documentation.
