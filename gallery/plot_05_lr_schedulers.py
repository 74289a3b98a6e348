# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
==========================================
Learning-rate schedulers on a short budget
==========================================

A scheduler changes the learning rate while the network trains. We train SGD with
momentum under seven schedules of :mod:`torch.optim.lr_scheduler` on a deliberately
short budget, compare validation curves and test accuracy over seeds, then make the
classic mistake on purpose: a step schedule that decays so fast that learning stops.
Look at each rate on a log axis, and at how many steps it takes at a useful rate.

.. math::

    \eta_e^{\mathrm{step}} = \eta_0\,\gamma^{\lfloor e / s \rfloor}, \qquad
    \eta_e^{\mathrm{cosine}} = \eta_{\min} + \tfrac12\,(\eta_0 - \eta_{\min})
    \bigl(1 + \cos(\pi e / T)\bigr)

for epoch :math:`e = 0, 1, \dots`, step size :math:`s`, decay :math:`\gamma` and a run
of :math:`T` epochs.
"""

# %%
# Setup
# -----
# Every run goes through :func:`fashion_optim.experiments.run_specs`, which trains what
# the cache lacks, several runs at a time. The profile (``FASHION_OPTIM_PROFILE``) sets
# the seeds; the first one also seeds the range test and the pitfall's runs.

# sphinx_gallery_thumbnail_number = 1
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator

from fashion_optim import experiments, lr, plotting
from fashion_optim.training import resolve_device, scheduler_interval

profile = experiments.current_profile()
SEED = profile.seeds[0]
torch.manual_seed(SEED)
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
print(f"profile {profile.name!r}, seeds {list(profile.seeds)}, device {device}")

# %%
# The budget and the peak rate
# ----------------------------
# SGD with momentum 0.9 at the base rate of ``NAMED["momentum"]``, on this chapter's
# short budget (:data:`~fashion_optim.experiments.SHORT_BUDGET`): 20,000 training images
# and 6 epochs in the full profile, 5,000 and 3 in the quick one. OneCycleLR needs a peak
# rate: the suggestion of the range test of
# :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py` :cite:p:`smith2017cyclical`.

MOMENTUM, BASE = experiments.NAMED["momentum"], experiments.SHORT_BUDGET
cfg = BASE.resolve(profile)
EPOCHS, LR0 = cfg.epochs, cfg.lr
MAX_LR = float(experiments.run_range_test(MOMENTUM, seed=SEED).suggested_lr)
print(f"base lr {LR0}, {cfg.train_subset:,} training images, {EPOCHS} epochs")
print(f"the range test's suggestion, OneCycleLR's max_lr: {MAX_LR:.3g}")

# %%
# Seven schedules, and every run of the page
# ------------------------------------------
# :func:`~fashion_optim.experiments.schedule_specs` names a scheduler of
# :func:`fashion_optim.lr.make_scheduler` and its arguments per schedule; step sizes and
# milestones follow the number of epochs, so that every schedule acts within the budget,
# and ReduceLROnPlateau gets an eager ``patience=1``. One call trains them all, with the
# runs of the later sections (the pitfall pair on one seed, the full-budget pair).

specs = experiments.schedule_specs(MAX_LR)  # name -> Spec
PITFALL = {"step_size": 3, "gamma": 0.1}
long_base = BASE.replace(
    name="momentum, long run on a small subset",
    epochs=experiments.PerProfile(full=20, quick=12),
    train_subset=experiments.PerProfile(full=5000, quick=2000),
    val_subset=experiments.PerProfile(full=2000, quick=1000),
)
pitfall_specs = {
    "pitfall constant": long_base.replace(scheduler="constant"),
    "pitfall step": long_base.replace(scheduler="step", scheduler_kwargs=PITFALL),
}
full_specs = {"full constant": MOMENTUM, "full onecycle": experiments.full_budget_onecycle(MAX_LR)}
seeds = {key: [SEED] for key in pitfall_specs}  # the others: the profile's seeds
every = experiments.run_specs({**specs, **pitfall_specs, **full_specs}, seeds=seeds)
results = {name: every[name] for name in specs}
first = {name: res.results[0] for name, res in results.items()}  # the first seed's runs
SPE = int(first["constant"].meta["steps_per_epoch"])
print(f"{SPE} mini-batches per epoch; validation on", end=" ")
print(f"{first['constant'].meta['val_size']:,} images after each epoch")

# %%
# Each schedule's arguments, when it is stepped (per epoch or mini-batch, from
# :func:`~fashion_optim.training.scheduler_interval`) and the rates of the first seed's
# run (``History.batch_lr``): how many distinct ones, first, highest (max) and last.

dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR0, momentum=0.9)
rows = {}
for name, spec in specs.items():
    kw = dict(spec.scheduler_kwargs)
    shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items())
    if "lr_lambda" in kw:  # a spec names its LambdaLR factor; torch needs the function
        kw["lr_lambda"] = experiments.LR_LAMBDAS[kw["lr_lambda"]]
    sched = lr.make_scheduler(name, dummy, epochs=EPOCHS, steps_per_epoch=SPE, **kw)
    rates = np.asarray(first[name].history.batch_lr)
    ends = {"first": rates[0], "max": rates.max(), "last": rates[-1]}
    rows[spec.name] = {
        "arguments": shown or "-",
        "per": scheduler_interval(sched),
        "rates": np.unique(rates).size,
        **{k: f"{v:.2g}" for k, v in ends.items()},
    }
pd.DataFrame.from_dict(rows, orient="index").rename_axis("schedule")

# %%
# The learning rate of every mini-batch
# -------------------------------------
# :class:`~fashion_optim.training.Trainer` records the rate of each mini-batch in
# ``History.batch_lr``; the panels show it for the first seed's run of each schedule, on
# log axes (a decay by ten is the same drop wherever it happens). A scheduler stepped per
# epoch gives a staircase; OneCycleLR, stepped per mini-batch, a smooth curve. The dashed
# line over CosineAnnealingLR is the same cosine stepped per mini-batch
# (CosineAnnealingWarmRestarts with :math:`T_0` the whole run), and the last panel is
# CosineAnnealingWarmRestarts with restarts: both are traces of
# :func:`fashion_optim.lr.trace_lr`, which steps a scheduler exactly as the Trainer does,
# without a model. OneCycleLR starts at ``max_lr / 25``, climbs to ``max_lr`` over 30 % of
# the steps, then anneals to ``max_lr / 25 / 10,000`` :cite:p:`smith2018disciplined`.

T_0 = max(1, EPOCHS // 2)
restarts = lr.trace_lr("cosine_warm_restarts", EPOCHS, SPE, lr=LR0, T_0=T_0)
smooth_cosine = lr.trace_lr("cosine_warm_restarts", EPOCHS, SPE, lr=LR0, T_0=EPOCHS)
x_batches = np.arange(1, EPOCHS * SPE + 1) / SPE  # in epochs, one point per mini-batch
fig, axes = plt.subplots(4, 2, figsize=(7.5, 8.8), sharex=True, sharey=True)
panels = [(name, specs[name].name, r.history.batch_lr) for name, r in first.items()]
panels.append(("cosine_warm_restarts", f"WarmRestarts, T_0={T_0} (trace only)", restarts))
for ax, (name, title, rates) in zip(axes.flat, panels, strict=True):
    ax.plot(x_batches, rates, color=plotting.color_for(name))
    if name == "cosine":
        ax.plot(x_batches, smooth_cosine, "--", color=plotting.color_for("cosine_warm_restarts"))
    ax.set_title(title, fontsize=10.5)
    ax.set_yscale("log")
    ax.set_xticks(range(EPOCHS + 1))  # the grid marks the epoch boundaries
for ax in axes[:, 0]:
    ax.set_ylabel("learning rate (log)")
for ax in axes[-1]:
    ax.set_xlabel("epoch (one point per mini-batch)")
fig.suptitle(f"Learning rate per mini-batch, {EPOCHS} epochs of {SPE} mini-batches")
plt.show()

# %%
# Validation curves
# -----------------
# Left: validation accuracy per epoch, mean over the seeds. Right: each schedule's
# accuracy minus the constant rate's, seed by seed (same initial weights and batches),
# mean ± one standard deviation: above zero, the schedule is ahead. ReduceLROnPlateau is
# dashed: until it lowers the rate, its run *is* the constant run.

x_epochs = np.arange(1, EPOCHS + 1)
const_acc = results["constant"].stack("val_acc")  # seeds x epochs
fig, (ax_acc, ax_diff) = plt.subplots(1, 2, figsize=(9.5, 4.4))
for name, res in results.items():
    kw = {"color": plotting.color_for(name), "marker": "o", "ms": 3.5, "label": res.spec.name}
    kw["linestyle"] = "--" if name == "plateau" else "-"
    ax_acc.plot(x_epochs, res.stack("val_acc").mean(axis=0), **kw)
    if name != "constant":
        plotting.band(ax_diff, x_epochs, res.stack("val_acc") - const_acc, alpha=0.12, **kw)
ax_diff.axhline(0.0, color=plotting.color_for("constant"), lw=1.2)
ax_acc.set(xlabel="epoch", ylabel="validation accuracy (fraction, mean)", xticks=x_epochs)
ax_diff.set(xlabel="epoch", ylabel="minus the constant rate's (fraction)", xticks=x_epochs)
fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside lower center", ncols=4)
plt.show()

# %%
# The final numbers, mean ± std over the seeds, ranked by validation accuracy (a choice
# is made on validation, never on the test set), with the accuracy and loss on the
# 10,000 held-out test images. The lines under the table say whether the best schedule
# leads the runner-up by more than their spread, and how many of the schedules that only
# lower the base rate end above the constant rate on the test images.

ranked = sorted(results, key=lambda name: -results[name].final("val_acc")[0])
metrics = ("val_acc", "test_acc", "test_loss")
table = plotting.results_table({specs[n].name: results[n] for n in ranked}, metrics=metrics)
best, second = (results[name].final("val_acc") for name in ranked[:2])
gap, spread = best[0] - second[0], max(best[1], second[1])
print(f"best on validation: {specs[ranked[0]].name}, ahead of {specs[ranked[1]].name}")
print(f"  by {gap:.4f}, {'more' if gap > spread else 'less'} than their larger std {spread:.4f}")
DECAYING = ("step", "multistep", "cosine")  # only ever lower the rate, on a fixed plan
constant_test = results["constant"].test_acc[0]
above = [specs[n].name for n in DECAYING if results[n].test_acc[0] > constant_test]
print(f"decaying schedules above the constant rate on test: {len(above)} of 3")
print(f"  {', '.join(above) or 'none'}")
table.rename_axis("schedule")

# %%
# Did ReduceLROnPlateau trigger?
# ------------------------------
# ReduceLROnPlateau lowers the rate after more than ``patience`` epochs in a row without a
# better validation loss. Fed one that never improves, :func:`fashion_optim.lr.trace_lr`
# gives the earliest epoch at a lower rate, with torch's default patience and the eager
# one. The table gives each seed's validation losses and the drops in its ``History.lr``
# (:func:`fashion_optim.plotting.rate_drops`): without drops, a run is bit for bit the
# constant run of the same seed (last column).

default = torch.optim.lr_scheduler.ReduceLROnPlateau(dummy)
print(f"torch's defaults: patience {default.patience}, threshold {default.threshold}")
stalled = np.ones(30)  # a validation loss that never improves
for patience in (default.patience, specs["plateau"].scheduler_kwargs["patience"]):
    trace = lr.trace_lr("plateau", len(stalled), 1, lr=LR0, metrics=stalled, patience=patience)
    print(f"patience {patience}: first lower rate in epoch {int(np.argmax(trace < LR0)) + 1}")
pd.DataFrame(
    {
        r.seed: {
            **{f"val loss {e}": f"{v:.4f}" for e, v in enumerate(r.history.val_loss, 1)},
            "lr drops": plotting.rate_drops(r.history.lr),
            "same as constant": r.history.same_as(c.history),
        }
        for r, c in zip(results["plateau"].results, results["constant"].results, strict=True)
    }
).T.rename_axis("seed")

# %%
# A validation loss that keeps falling never stalls, and a drop decided after the last
# epoch changes no mini-batch: on a short budget ReduceLROnPlateau is a safety net.
#
# The pitfall: decaying too fast
# ------------------------------
# ``StepLR(step_size=3, gamma=0.1)`` divides the rate by ten every three epochs: over 20
# epochs, six divisions. The study this project grew from used exactly this schedule and
# saw learning freeze after epoch 10. Left: the schedule over 20 epochs from
# :func:`~fashion_optim.lr.trace_lr`. Middle and right: one seed trained with it and
# with the constant rate, on 5,000 training images for 20 epochs (2,000 for 12 in the
# quick profile), so that many epochs fit the budget.

TRACE_EPOCHS = 20
trace20 = lr.trace_lr("step", TRACE_EPOCHS, SPE, lr=LR0, **PITFALL)
pitfall = {name: every[f"pitfall {name}"].results[0] for name in ("constant", "step")}
N_LONG = pitfall["step"].config.epochs
print(f"trace: the last of {TRACE_EPOCHS} epochs at {trace20[-1] / LR0:.0e} x the base rate")
LABELS = {"constant": "constant", "step": "StepLR(step_size=3, gamma=0.1)"}
fig, axes = plt.subplots(1, 3, figsize=(11.0, 4.0))
axes[0].plot(np.arange(1, TRACE_EPOCHS * SPE + 1) / SPE, trace20, color=plotting.color_for("step"))
axes[0].axhline(LR0, color=plotting.color_for("constant"), lw=1.2)
axes[0].set(xlabel="epoch", xlim=(0, TRACE_EPOCHS), title="Schedule (trace_lr)")
plotting.label_lr_axis(axes[0], "y")
for ax, field in zip(axes[1:], ("train_loss", "val_acc"), strict=True):
    for name, r in pitfall.items():
        ax.plot(np.arange(1, N_LONG + 1), getattr(r.history, field), color=plotting.color_for(name),
                marker="o", ms=3, label=LABELS[name])  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for e in range(PITFALL["step_size"], N_LONG, PITFALL["step_size"]):
        ax.axvline(e + 0.5, color=plotting.NEUTRAL, lw=0.7, ls=":")  # the rate drops here
fig.legend(*axes[2].get_legend_handles_labels(), loc="outside lower center", ncols=2)
axes[1].set(xlabel="epoch", ylabel="training loss (nat)", title="Training loss")
axes[2].set(xlabel="epoch", ylabel="validation accuracy (fraction)", title="Validation accuracy")
plt.show()

# %%
# How much each run still changed once the step schedule's rate had fallen a
# thousandfold (over the epochs the columns name), with the test accuracy at
# the end; below it, the epoch from which StepLR's validation accuracy stays within
# ``FLAT`` of its final value.

hist = {name: r.history for name, r in pitfall.items()}
frozen = int(np.argmax(np.asarray(hist["step"].lr) <= 1e-3 * LR0))  # 0-based epoch
span = f"epochs {frozen + 1}-{N_LONG}"
changes = pd.DataFrame(
    {
        LABELS[name]: {
            f"train loss change, {span}": f"{h.train_loss[-1] - h.train_loss[frozen - 1]:+.4f}",
            f"val acc change, {span}": f"{h.val_acc[-1] - h.val_acc[frozen - 1]:+.4f}",
            "test acc (end)": f"{pitfall[name].test_acc:.4f}",
        }
        for name, h in hist.items()
    }
).T
FLAT = 0.005
step_val = np.asarray(hist["step"].val_acc)
moving = np.flatnonzero(np.abs(step_val - step_val[-1]) > FLAT)
flat_from = int(moving[-1]) + 1 if moving.size else 0  # 0-based epoch
when = "before" if flat_from < frozen else "as" if flat_from == frozen else "after"
print(f"StepLR's val acc is within {FLAT} of its final value from epoch {flat_from + 1},")
print(f"  {when} its rate falls a thousandfold (epoch {frozen + 1})")
changes

# %%
# One cycle on the full budget
# ----------------------------
# Does the schedule still matter on the full budget? The note's run of SGD with
# momentum (``NAMED["momentum"]``: every training image, the profile's epochs, as in
# :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py`) against the same run with
# OneCycleLR peaking at the suggested rate
# (:func:`~fashion_optim.experiments.full_budget_onecycle`): same data, epochs, seeds and
# initial weights, only the schedule differs. Mean ± one standard deviation over seeds;
# below, when the one-cycle run leads on validation, and whether its gain on the test
# images is larger than the seeds' spread.

full = {"constant": every["full constant"], "onecycle": every["full onecycle"]}
full_labels = {"constant": "constant rate", "onecycle": f"OneCycleLR, max_lr={MAX_LR:.3g}"}
fig, ax = plt.subplots(figsize=(7.0, 4.0))
plotting.learning_curves(ax, full, "val_acc", labels=full_labels)
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend(title=f"SGD + momentum, {full['onecycle'].config.epochs} epochs")
plt.show()
val_mean = {name: res.stack("val_acc").mean(axis=0) for name, res in full.items()}
ahead = np.flatnonzero(val_mean["onecycle"] > val_mean["constant"])
lead = f"from epoch {ahead[0] + 1}" if ahead.size else "never"
print(f"OneCycleLR leads the constant rate on mean validation accuracy: {lead}")
gain = full["onecycle"].test_acc[0] - full["constant"].test_acc[0]
spread = max(full["onecycle"].test_acc[1], full["constant"].test_acc[1])
verdict = "larger" if abs(gain) > 2 * spread else "not larger"
print(f"test accuracy, OneCycleLR minus constant: {gain:+.4f},")
print(f"  {verdict} than twice the larger std over seeds ({spread:.4f})")
plotting.results_table({full_labels[k]: res for k, res in full.items()}, index_name="schedule")

# %%
# Takeaways
# ---------
# - A scheduler is stepped once an epoch (a staircase) or once a mini-batch (a smooth
#   curve: OneCycleLR, CyclicLR, CosineAnnealingWarmRestarts); the
#   :class:`~fashion_optim.training.Trainer` decides from its class.
# - :func:`fashion_optim.lr.trace_lr` draws a schedule before any training, as the
#   Trainer records it: look at the whole trace, on a log axis, before spending compute.
# - On a short budget what counts is how many steps are taken at a useful rate: the
#   ranking (on validation) says which schedules gained in this build.
# - Decay compounds: ``StepLR(step_size=3, gamma=0.1)`` over 20 epochs ends at a
#   millionth of the base rate; the pitfall section prints how much training still
#   moved once the rate had fallen a thousandfold, and how much the constant rate did.
# - ReduceLROnPlateau acts only after ``patience + 1`` stalled epochs (with torch's
#   default patience, more than a short run has); until it acts, it is the constant run.
#
# References
# ----------
# The learning-rate range test and cyclical schedules are :cite:t:`smith2017cyclical`;
# the one-cycle policy and its cycled momentum follow :cite:t:`smith2018disciplined`.
# The data set is Fashion-MNIST :cite:p:`xiao2017fashion`. See the
# :doc:`bibliography </references>` for full entries.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`: OneCycleLR's peak rate.
# - :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py`: the momentum optimizer.
# - :func:`fashion_optim.lr.make_scheduler`, :func:`fashion_optim.lr.trace_lr`,
#   :func:`fashion_optim.training.scheduler_interval`,
#   :func:`fashion_optim.plotting.rate_drops` and
#   :func:`fashion_optim.experiments.schedule_specs`.
# - :class:`torch.optim.lr_scheduler.StepLR`, :class:`torch.optim.lr_scheduler.OneCycleLR`,
#   :class:`torch.optim.lr_scheduler.ReduceLROnPlateau`: torch's documentation.
