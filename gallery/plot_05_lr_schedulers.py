# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
==========================================
Learning-rate schedulers on a short budget
==========================================

A scheduler changes the learning rate while the network trains. We train SGD with
momentum under seven schedules of :mod:`torch.optim.lr_scheduler` on a deliberately
short budget (a subset of the training images, a few epochs), look at the rate each one
gives every mini-batch, and compare validation curves and test accuracy over seeds.
Then we make the classic mistake on purpose: a step schedule that decays so fast that
learning stops.

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
# Every run goes through :func:`fashion_optim.experiments.run_specs`, which trains the
# runs the cache lacks several at a time and caches every result. The profile
# (``FASHION_OPTIM_PROFILE``) sets the seeds; the first one also seeds the
# learning-rate range test and the single-seed runs below.

# sphinx_gallery_thumbnail_number = 1
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from fashion_optim import experiments, lr, plotting
from fashion_optim.training import resolve_device, scheduler_interval

profile = experiments.current_profile()
SEED = profile.seeds[0]
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
print(f"profile {profile.name!r} ({profile.description})")
print(f"seeds {list(profile.seeds)}")
print(f"device {device}")

# %%
# The base run and the budget
# ---------------------------
# The optimizer is the note's SGD with momentum 0.9 at the same base learning rate as
# ``NAMED["momentum"]``, but on this chapter's own short budget: a stratified subset of
# the training images and a few epochs, without recorded probes. Short runs are where a
# schedule matters most, and where its mistakes cost the most.

MOMENTUM = experiments.NAMED["momentum"]
BASE = experiments.SHORT_BUDGET  # shared with the note, so each run trains once
cfg = BASE.resolve(profile)
EPOCHS, LR0 = cfg["epochs"], cfg["lr"]
print(f"{'optimizer':<18}{cfg['optimizer']}, {cfg['optimizer_kwargs']}, base lr {LR0}")
print(f"{'training images':<18}{cfg['train_subset']:,} (batch {cfg['batch_size']})")
print(f"{'epochs':<18}{EPOCHS}")

# %%
# OneCycleLR needs a peak learning rate. We take the suggestion of the learning-rate
# range test of :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`, the same cached
# test on the same model, optimizer and seed :cite:p:`smith2017cyclical`.

range_test = experiments.run_range_test(MOMENTUM, seed=SEED)
MAX_LR = float(range_test.suggested_lr)
stop = "stopped when the loss diverged" if range_test.diverged else "no divergence"
print(f"range test: {len(range_test.lrs)} mini-batches ({stop}), seed {SEED}")
print(f"suggested learning rate (OneCycleLR's max_lr): {MAX_LR:.3g}")

# %%
# Seven schedules
# ---------------
# Each entry names a scheduler of :func:`fashion_optim.lr.make_scheduler` and its
# arguments; a spec stays JSON-serialisable, so LambdaLR's factor is a name from
# :data:`fashion_optim.experiments.LR_LAMBDAS`. The step sizes and milestones are
# set from the number of epochs, so that every schedule acts within the budget.
# ReduceLROnPlateau gets an eager ``patience=1``: it lowers the rate after two epochs in
# a row without a better validation loss.

specs = experiments.schedule_specs(MAX_LR)  # name -> Spec, step sizes from EPOCHS
SCHEDULES = {  # name: (torch's class, scheduler_kwargs)
    name: (spec.name, dict(spec.scheduler_kwargs)) for name, spec in specs.items()
}
LABELS = {name: label for name, (label, _) in SCHEDULES.items()}


def torch_kwargs(kwargs):
    """The spec's scheduler arguments, with a named LambdaLR factor made a function."""
    out = dict(kwargs)
    if "lr_lambda" in out:
        out["lr_lambda"] = experiments.LR_LAMBDAS[out["lr_lambda"]]
    return out


# The full-budget OneCycleLR runs of the last section train in the same batch as the
# seven schedules, so that no core waits for the longest run (the cache serves them there).
FULL_ONECYCLE = experiments.full_budget_onecycle(MAX_LR)
batch = [*specs.values(), FULL_ONECYCLE]
experiments.run_many([(spec, seed) for spec in batch for seed in profile.seeds])
results = experiments.run_specs(specs)  # from the cache now
first = {name: res.results[0] for name, res in results.items()}  # the first seed's runs
SPE = int(first["constant"].meta["steps_per_epoch"])

dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR0, momentum=0.9)
print(
    f"{SPE} mini-batches per epoch, {EPOCHS * SPE} in a run;\n"
    f"validation on {first['constant'].meta['val_size']:,} images after each epoch\n"
)
print(f"{'schedule':<19}{'steps per':<10}{'arguments'}")
for name, (label, kwargs) in SCHEDULES.items():
    sched = lr.make_scheduler(
        name, dummy, epochs=EPOCHS, steps_per_epoch=SPE, **torch_kwargs(kwargs)
    )
    shown = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in kwargs.items()]
    print(f"{label:<19}{scheduler_interval(sched):<10}{', '.join(shown) or '-'}")
wall = sum(r.meta["wall_time"] for res in results.values() for r in res.results)
print(f"\n{sum(len(res.results) for res in results.values())} runs, {wall:.0f} s of training")

# %%
# The learning rate of every mini-batch
# -------------------------------------
# :class:`~fashion_optim.training.Trainer` records the rate used by each mini-batch in
# ``History.batch_lr`` (:class:`~fashion_optim.training.History`); the panels show it for the
# first seed's run of each schedule (vertical grid lines: epoch boundaries). The last panel is
# CosineAnnealingWarmRestarts, not trained here, drawn by
# :func:`fashion_optim.lr.trace_lr`, which steps a scheduler exactly as the Trainer
# does, without a model. The vertical axes are logarithmic: a decay by ten is the
# same drop wherever it happens.

T_0 = max(1, EPOCHS // 2)
restarts = lr.trace_lr("cosine_warm_restarts", EPOCHS, SPE, lr=LR0, T_0=T_0)
steps = np.arange(1, EPOCHS * SPE + 1)
# Four rows of two: wide enough panels to read at the page's width.
fig, axes = plt.subplots(4, 2, figsize=(7.5, 8.8), sharex=True, sharey=True)
panels = [(name, LABELS[name], r.history.batch_lr) for name, r in first.items()]
panels.append(("cosine_warm_restarts", f"WarmRestarts, T_0={T_0} (trace only)", restarts))
for ax, (name, title, rates) in zip(axes.flat, panels, strict=True):
    ax.plot(steps / SPE, rates, color=plotting.color_for(name))  # x in epochs
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
# Per epoch or per mini-batch
# ---------------------------
# Most schedulers are stepped once an epoch, after validation: the rate is constant
# within an epoch and jumps at its end. OneCycleLR and CosineAnnealingWarmRestarts are
# stepped after every mini-batch (the ``steps per`` column above, from
# :func:`fashion_optim.training.scheduler_interval`); ReduceLROnPlateau is stepped per
# epoch and receives the validation loss. The figure puts the same cosine side by side,
# stepped per epoch (CosineAnnealingLR) and per mini-batch (CosineAnnealingWarmRestarts
# with :math:`T_0` equal to the whole run, so it never restarts), with OneCycleLR.

smooth_cosine = lr.trace_lr("cosine_warm_restarts", EPOCHS, SPE, lr=LR0, T_0=EPOCHS)
epochs_x = steps / SPE
fig, ax = plt.subplots(figsize=(7.5, 4.2))
ax.plot(
    epochs_x,
    first["cosine"].history.batch_lr,
    color=plotting.color_for("cosine"),
    label="CosineAnnealingLR, per epoch",
)
ax.plot(
    epochs_x,
    smooth_cosine,
    "--",
    color=plotting.color_for("cosine_warm_restarts"),
    label=f"CosineAnnealingWarmRestarts (T_0={EPOCHS}), per mini-batch",
)
ax.plot(
    epochs_x,
    first["onecycle"].history.batch_lr,
    color=plotting.color_for("onecycle"),
    label="OneCycleLR, per mini-batch",
)
ax.set(xlabel="epoch", xlim=(0, EPOCHS))
plotting.label_lr_axis(ax, "y")
ax.legend(loc="lower left")
plt.show()

print(f"{'schedule':<19}{'distinct rates':>15}{'first':>10}{'highest':>10}{'last':>10}")
for name, r in first.items():
    rates = np.asarray(r.history.batch_lr)
    print(
        f"{LABELS[name]:<19}{np.unique(rates).size:>15}"
        f"{rates[0]:>10.2e}{rates.max():>10.2e}{rates[-1]:>10.2e}"
    )

# %%
# OneCycleLR starts at ``max_lr / 25``, climbs to ``max_lr`` over the first 30 % of the
# steps, then anneals to ``max_lr / 25 / 10,000`` :cite:p:`smith2018disciplined`; with
# momentum it also cycles the momentum between 0.95 and 0.85, opposite to the rate.
# Its peak is far above the base rate of the other schedules, which is the point of the
# "super-convergence" recipe: large steps in the middle, tiny ones at the end.
#
# Validation curves
# -----------------
# Left: validation accuracy after every epoch, mean over the seeds, on the held-out
# validation images (their number is printed with the runs above). Right: each
# schedule's accuracy minus the constant rate's, seed by seed (the same seed gives the
# same initial weights and batches), mean with a ±1 standard deviation band: above
# zero, the schedule is ahead. LambdaLR's factor
# (``warmup_inverse_sqrt``) is a warm-up: half the base rate in the first epoch, the full
# rate in the second, then a decay as one over the square root of the epoch:
# :math:`\sqrt{2/n}` times the base rate in epoch :math:`n = 2, 3, \dots`.
# ReduceLROnPlateau is dashed: until it lowers the rate, its run *is* the constant run,
# and the two curves lie on top of each other.

x_epochs = np.arange(1, EPOCHS + 1)
const_acc = results["constant"].stack("val_acc")  # seeds x epochs
fig, (ax_acc, ax_diff) = plt.subplots(1, 2, figsize=(9.5, 4.4))
for name, res in results.items():
    kw = {"color": plotting.color_for(name), "marker": "o", "ms": 3.5, "label": LABELS[name]}
    kw["linestyle"] = "--" if name == "plateau" else "-"
    ax_acc.plot(x_epochs, res.stack("val_acc").mean(axis=0), **kw)
    if name != "constant":
        plotting.band(ax_diff, x_epochs, res.stack("val_acc") - const_acc, alpha=0.12, **kw)
ax_diff.axhline(0.0, color=plotting.color_for("constant"), lw=1.2)
ax_acc.set(xlabel="epoch", ylabel="validation accuracy (fraction, mean)", xticks=x_epochs)
ax_diff.set(xlabel="epoch", ylabel="minus the constant rate's, same seed", xticks=x_epochs)
fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside lower center", ncols=4)
plt.show()

# %%
# Final test accuracy on the 10,000 held-out test images, mean ± std over the seeds,
# best first. OneCycleLR takes most of its steps at rates several times the base rate
# and anneals to almost nothing at the end. The schedules that only ever lower the base
# rate take finer steps at the end, but also smaller ones before the model has finished
# learning; the last line counts how many of them end above the constant rate. Read the
# ± column before ranking two of them: the line before it says whether the best
# schedule is ahead of the runner-up by more than their spread.

n_seeds = len(profile.seeds)
print(f"{'schedule':<19}{'test accuracy':>17}{'test loss':>17}   ({n_seeds} seeds)")
ranked = sorted(results.items(), key=lambda item: -item[1].test_acc[0])
for name, res in ranked:
    (am, asd), (lm, lsd) = res.test_acc, res.test_loss
    print(f"{LABELS[name]:<19}{am:>9.4f} ± {asd:.4f}{lm:>9.4f} ± {lsd:.4f}")
(best, best_res), (second, second_res) = ranked[0], ranked[1]
gap = best_res.test_acc[0] - second_res.test_acc[0]
spread = max(best_res.test_acc[1], second_res.test_acc[1])
verdict = "more" if gap > spread else "less"
print(f"best: {LABELS[best]}, ahead of {LABELS[second]} by {gap:.4f}, {verdict} than the")
print(f"larger of their standard deviations ({spread:.4f})")
DECAYING = ("step", "multistep", "cosine")  # only ever lower the rate, on a fixed plan
above = [LABELS[n] for n in DECAYING if results[n].test_acc[0] > results["constant"].test_acc[0]]
print(f"decaying schedules above the constant rate: {len(above)} of {len(DECAYING)}")
if above:
    print(f"  {', '.join(above)}")


# %%
# Did ReduceLROnPlateau trigger?
# ------------------------------
# ReduceLROnPlateau lowers the rate only after more than ``patience`` epochs in a row
# without a better validation loss (better by a relative ``threshold``). The first
# table feeds :func:`fashion_optim.lr.trace_lr` a validation loss that never improves:
# the earliest epoch that can train at a lower rate, with torch's default ``patience``
# and with the eager one used here. The second counts the drops in the recorded rates
# of every seed.

default = torch.optim.lr_scheduler.ReduceLROnPlateau(dummy)
print(
    f"torch's defaults: patience {default.patience}, factor {default.factor}, "
    f"threshold {default.threshold} ({default.threshold_mode})"
)
stalled = np.ones(30)  # a validation loss that never improves
print(f"\n{'patience':>8}  earliest epoch at a lower rate (these runs: {EPOCHS} epochs)")
for patience in (default.patience, SCHEDULES["plateau"][1]["patience"]):
    trace = lr.trace_lr("plateau", len(stalled), 1, lr=LR0, metrics=stalled, patience=patience)
    print(f"{patience:>8}  {int(np.argmax(trace < LR0)) + 1:>6}")

print(f"\n{'seed':>4}  {'validation loss per epoch':<{8 * EPOCHS}}{'lr drops':>9}")
plateau_drops = []
for r in results["plateau"].results:
    drops = int(np.sum(np.diff(r.history.batch_lr) < 0))
    plateau_drops.append(drops)
    losses = "".join(f"{v:8.4f}" for v in r.history.val_loss)
    print(f"{r.seed:>4}  {losses}{drops:>9}")
triggered = sum(d > 0 for d in plateau_drops)
print(f"ReduceLROnPlateau lowered the rate in {triggered} of {len(plateau_drops)} runs")

# %%
# A validation loss that keeps falling never stalls, and a drop decided after the last
# epoch changes no mini-batch; the original study saw its ReduceLROnPlateau never
# trigger in 10 epochs. A run in which it does not trigger is bitwise the constant run
# (the hidden checks of this page verify it), so on a short budget it is a safety net
# rather than a schedule.
#
# The pitfall: decaying too fast
# ------------------------------
# ``StepLR(step_size=3, gamma=0.1)`` divides the rate by ten every three epochs. Over
# 20 epochs that is six divisions: the last epochs train at a millionth of the base
# rate, and the weights stop moving long before. The study this project grew from used
# exactly this schedule and saw learning freeze after epoch 10. Left: the schedule
# over 20 epochs from :func:`fashion_optim.lr.trace_lr` (no training needed). Middle
# and right: one seed trained with it, and with the constant rate, on a small subset of
# the training images so that many epochs fit the budget (sizes printed below).

PITFALL = {"step_size": 3, "gamma": 0.1}
TRACE_EPOCHS = 20
trace20 = lr.trace_lr("step", TRACE_EPOCHS, SPE, lr=LR0, **PITFALL)
long_base = BASE.replace(
    name="momentum, long run on a small subset",
    epochs=experiments.PerProfile(full=20, quick=12),
    train_subset=experiments.PerProfile(full=5000, quick=2000),
    val_subset=experiments.PerProfile(full=2000, quick=1000),
)
pitfall_specs = {
    "constant": long_base.replace(scheduler="constant"),
    "step": long_base.replace(name="StepLR(3, 0.1)", scheduler="step", scheduler_kwargs=PITFALL),
}
pitfall = experiments.run_specs(pitfall_specs, seeds=[SEED])  # the two train at once
pitfall = {name: res.results[0] for name, res in pitfall.items()}
meta = pitfall["step"].meta
N_LONG = pitfall["step"].config["epochs"]
print(
    f"trace: {TRACE_EPOCHS} epochs; the last one at lr {trace20[-1]:.1e},\n"
    f"  {trace20[-1] / trace20[0]:.0e} x the base rate {trace20[0]}"
)
print(
    f"trained: {N_LONG} epochs on {meta['train_size']:,} images "
    f"({meta['steps_per_epoch']} mini-batches per epoch),\n"
    f"  validation on {meta['val_size']:,} images, seed {SEED}"
)

# %%

PITFALL_LABELS = {"constant": "constant", "step": "StepLR(step_size=3, gamma=0.1)"}
x_long = np.arange(1, N_LONG + 1)
fig, axes = plt.subplots(1, 3, figsize=(11.0, 4.0))
axes[0].plot(np.arange(1, TRACE_EPOCHS * SPE + 1) / SPE, trace20, color=plotting.color_for("step"))
axes[0].axhline(LR0, color=plotting.color_for("constant"), lw=1.2)
if N_LONG < TRACE_EPOCHS:  # the quick profile trains fewer epochs than the trace shows
    axes[0].axvspan(
        0, N_LONG, color=plotting.NEUTRAL, alpha=0.15, lw=0, label="trained (middle, right)"
    )
    axes[0].legend(loc="lower left")
axes[0].set(xlabel="epoch", xlim=(0, TRACE_EPOCHS), title="Schedule (trace_lr)")
plotting.label_lr_axis(axes[0], "y")
for name, r in pitfall.items():
    kw = {"color": plotting.color_for(name), "marker": "o", "ms": 3, "label": PITFALL_LABELS[name]}
    axes[1].plot(x_long, r.history.train_loss, **kw)
    axes[2].plot(x_long, r.history.val_acc, **kw)
axes[1].set(xlabel="epoch", ylabel="training loss (nat per image)", title="Training loss")
axes[2].set(xlabel="epoch", ylabel="validation accuracy (fraction)", title="Validation accuracy")
for ax in axes[1:]:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for e in range(PITFALL["step_size"], N_LONG, PITFALL["step_size"]):
        ax.axvline(e + 0.5, color=plotting.NEUTRAL, lw=0.7, ls=":")
fig.legend(*axes[2].get_legend_handles_labels(), loc="outside lower center", ncols=2)
plt.show()

# %%
# The table follows the two runs at the end of each three-epoch stage (dotted lines
# in the figure: the rate drops between them). Once the rate has fallen a thousandfold
# the training loss and the validation accuracy of the step schedule barely change,
# while the constant rate improves both overall. The last line gives the epoch from which
# the step schedule's validation accuracy stays within ``FLAT`` of its final value, and
# the rate it had by then: in this build it stops moving before the thousandfold drop.

hist = {name: r.history for name, r in pitfall.items()}
s, c = hist["step"], hist["constant"]
print(f"{'epoch':>5} {'lr (step)':>10} {'train loss':>21} {'val accuracy':>17}")
print(f"{'':>5} {'':>10} {'step':>10} {'constant':>10} {'step':>8} {'constant':>8}")
for e in sorted({1, *range(3, N_LONG + 1, 3), N_LONG}):
    i = e - 1
    print(
        f"{e:>5} {s.lr[i]:>10.0e} {s.train_loss[i]:>10.4f} {c.train_loss[i]:>10.4f}"
        f" {s.val_acc[i]:>8.4f} {c.val_acc[i]:>8.4f}"
    )
frozen = int(np.argmax(np.asarray(s.lr) <= 1e-3 * LR0))  # 0-based: the first frozen epoch
print(f"\nchange over epochs {frozen + 1} to {N_LONG} (StepLR at <= 1e-3 x base there):")
print(f"  {'':<31}{'train loss':>11}{'val acc':>9}{'test acc':>10}")
for name, h in hist.items():
    d_loss = h.train_loss[-1] - h.train_loss[frozen - 1]
    d_acc = h.val_acc[-1] - h.val_acc[frozen - 1]
    test = pitfall[name].test_acc
    print(f"  {PITFALL_LABELS[name]:<31}{d_loss:>+11.4f}{d_acc:>+9.4f}{test:>10.4f}")
print("  (test acc: at the end, not a change)")
FLAT = 0.005
step_val = np.asarray(s.val_acc)
moving = np.flatnonzero(np.abs(step_val - step_val[-1]) > FLAT)
flat_from = int(moving[-1]) + 1 if moving.size else 0  # 0-based epoch
# sphinx_gallery_start_ignore
if not flat_from < frozen:
    raise AssertionError(
        f"the text says StepLR's validation accuracy stops moving before the rate has "
        f"fallen a thousandfold: flat from epoch {flat_from + 1}, thousandfold at {frozen + 1}"
    )
# sphinx_gallery_end_ignore
print(
    f"StepLR's validation accuracy stays within {FLAT} of its final value from epoch "
    f"{flat_from + 1},\nwhen its rate is {s.lr[flat_from] / LR0:.0e} x the base rate"
)

# sphinx_gallery_start_ignore
# Sanity checks, hidden on the site. (1) What the Trainer records is what trace_lr
# predicts, for every schedule and seed (ReduceLROnPlateau fed the recorded validation
# losses). (2) The claims of the prose: per-epoch vs per-batch stepping, the 1e-6 of
# StepLR(3, 0.1) over 20 epochs, OneCycleLR first, a plateau scheduler that did not
# trigger is the constant run, and the frozen epochs of the pitfall.
for name, (_, kwargs) in SCHEDULES.items():
    for r in results[name].results:
        metrics = r.history.val_loss if name == "plateau" else None
        expected = lr.trace_lr(name, EPOCHS, SPE, lr=LR0, metrics=metrics, **torch_kwargs(kwargs))
        if not np.array_equal(np.asarray(r.history.batch_lr), expected):
            raise AssertionError(f"{name}, seed {r.seed}: History.batch_lr != trace_lr")
expected = lr.trace_lr("step", N_LONG, meta["steps_per_epoch"], lr=LR0, **PITFALL)
if not np.array_equal(np.asarray(s.batch_lr), expected):
    raise AssertionError("the pitfall run's History.batch_lr != trace_lr")
for name, r in first.items():
    distinct = np.unique(r.history.batch_lr).size
    per_batch = name == "onecycle"
    if per_batch != (distinct > EPOCHS) or (per_batch and distinct < EPOCHS * SPE - 1):
        raise AssertionError(f"{name}: {distinct} distinct rates in {EPOCHS} epochs")
np.testing.assert_allclose(trace20[-SPE:] / LR0, 1e-6, rtol=1e-9, err_msg="StepLR(3, .1), 20 ep")
if np.any(np.diff(smooth_cosine) > 0):
    raise AssertionError("CosineAnnealingWarmRestarts with T_0 = the run restarted")
for r, r_const in zip(results["plateau"].results, results["constant"].results, strict=True):
    drops = int(np.sum(np.diff(r.history.batch_lr) < 0))
    if drops == 0 and not r.history.same_as(r_const.history):
        raise AssertionError(f"seed {r.seed}: ReduceLROnPlateau without drops != constant run")
if frozen < 1 or frozen >= N_LONG:
    raise AssertionError(f"the pitfall run has no epoch at <= 1e-3 x base ({N_LONG} epochs)")
d_step = s.train_loss[-1] - s.train_loss[frozen - 1]
d_const = c.train_loss[-1] - c.train_loss[frozen - 1]
d_acc = s.val_acc[-1] - s.val_acc[frozen - 1]
if not (d_const < 0 and abs(d_step) < 0.1 * abs(d_const) and abs(d_acc) <= 0.01):
    raise AssertionError(
        f"pitfall: StepLR changed train loss by {d_step:+.4f} and val accuracy by {d_acc:+.4f} "
        f"in its frozen epochs, the constant rate train loss by {d_const:+.4f}"
    )
# sphinx_gallery_end_ignore

# %%
# One cycle on the full budget
# ----------------------------
# Does the schedule still matter once the budget is not short? We train the note's
# shared run of SGD with momentum (:data:`~fashion_optim.experiments.NAMED`
# ``["momentum"]``: every training image, the profile's full number of epochs) once more
# with OneCycleLR peaking at the same suggested rate
# (:func:`~fashion_optim.experiments.full_budget_onecycle`). Same data, epochs, seeds and
# initial weights: the two differ only in the schedule. The constant-rate runs are the
# ones :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py` trained, and the
# OneCycleLR runs trained with the seven schedules above: both come from the cache.

full = experiments.run_specs({"momentum": MOMENTUM, "onecycle": FULL_ONECYCLE})  # cached
full_labels = {"momentum": "constant rate", "onecycle": f"OneCycleLR, max_lr={MAX_LR:.3g}"}
SCHEDULE_OF = {"momentum": "constant", "onecycle": "onecycle"}
one_run = full["onecycle"].results[0]  # its config and sizes are every seed's
print(
    f"{one_run.config['epochs']} epochs on {one_run.meta['train_size']:,} images, "
    f"{len(full['onecycle'].results)} seeds\n"
)
print(f"{'schedule':<31}{'test accuracy':<18}test loss (nat)")
for name, res in full.items():
    (am, asd), (lm, lsd) = res.test_acc, res.test_loss
    print(f"{full_labels[name]:<31}{am:.4f} ± {asd:.4f}   {lm:.4f} ± {lsd:.4f}")
gain = full["onecycle"].test_acc[0] - full["momentum"].test_acc[0]
spread = max(full["onecycle"].test_acc[1], full["momentum"].test_acc[1])
verdict = "larger" if abs(gain) > 2 * spread else "not larger"
print(
    f"\nOneCycleLR minus constant: {gain:+.4f} in mean test accuracy, {verdict} than\n"
    f"twice the larger standard deviation over seeds ({spread:.4f})"
)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
x_full = np.arange(1, one_run.config["epochs"] + 1)
spe_full = int(one_run.meta["steps_per_epoch"])
for name, res in full.items():
    # The constant rate is black, as in every schedule figure of this chapter.
    kw = {"color": plotting.color_for(SCHEDULE_OF[name]), "label": full_labels[name]}
    plotting.band(axes[0], x_full, res.stack("val_acc"), **kw)
    rates = res.results[0].history.batch_lr  # the same for every seed
    axes[1].plot(np.arange(1, len(rates) + 1) / spe_full, rates, **kw)
axes[0].set(xlabel="epoch", ylabel="validation accuracy (fraction)", title="Validation accuracy")
axes[1].set(
    xlabel="epoch (one point per mini-batch)", ylabel="learning rate (log)", title="Learning rate"
)
axes[1].set_yscale("log")
axes[0].legend()
axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
plt.show()

# %%
# The band is the mean ± one standard deviation over seeds. The one-cycle run climbs
# to a peak several times the constant rate, then anneals far below it. When does it
# lead, and where is its rate then?

val_mean = {name: res.stack("val_acc").mean(axis=0) for name, res in full.items()}
ahead = np.nonzero(val_mean["onecycle"] > val_mean["momentum"])[0]
oc_rates = np.asarray(full["onecycle"].results[0].history.batch_lr)
below = np.nonzero(oc_rates < LR0)[0]
below = below[below > np.argmax(oc_rates)]  # after the peak
if len(ahead):
    e = int(ahead[0]) + 1
    rate_then = oc_rates[e * spe_full - 1]
    print(
        f"OneCycleLR's mean validation accuracy first leads after epoch {e},\n"
        f"when its rate is {rate_then:.3g} ({rate_then / LR0:.1f} x the constant {LR0:g})"
    )
else:
    print("OneCycleLR's mean validation accuracy never leads the constant rate's")
if len(below):
    print(f"its rate falls below the constant rate from epoch {below[0] / spe_full:.1f} on")
print(
    f"leads after the last epoch: {val_mean['onecycle'][-1] > val_mean['momentum'][-1]} "
    f"(validation {val_mean['onecycle'][-1]:.4f} against {val_mean['momentum'][-1]:.4f})"
)

# %%
# The printed gain above says whether the difference on the test images is resolved by
# the seeds; the note's :doc:`results table </note/results>` lists both runs with the
# rest.

# %%
# Takeaways
# ---------
# - A scheduler is stepped once an epoch (the rate is a staircase) or once a mini-batch
#   (a smooth curve). The :class:`~fashion_optim.training.Trainer` decides from its
#   class: OneCycleLR, CyclicLR and CosineAnnealingWarmRestarts per mini-batch, the
#   others per epoch, ReduceLROnPlateau with the validation loss.
# - :func:`fashion_optim.lr.trace_lr` draws a schedule before any training, and it is
#   exactly what the Trainer records in ``History.batch_lr``: look at the whole trace,
#   on a log axis, before spending compute on a schedule.
# - On a short budget what counts is how many steps are taken at a useful rate.
#   OneCycleLR, peaking at the rate the range test suggests, gave the best test accuracy
#   here. Schedules that only lower the base rate take smaller steps before the model
#   has finished learning; whether their finer last steps make up for it is the count
#   under the test table.
# - Decay compounds: ``StepLR(step_size=3, gamma=0.1)`` over 20 epochs ends at a
#   millionth of the base rate, and once the rate has fallen a thousandfold training
#   stops, whatever the number of epochs left (validation accuracy can stop moving
#   sooner: the pitfall section prints from which epoch).
# - ReduceLROnPlateau acts only after ``patience + 1`` stalled epochs; with torch's
#   default patience it cannot act within a short run, and a run in which it never
#   triggers is the constant run.
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
# - :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`: where OneCycleLR's peak rate
#   comes from.
# - :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py`: the momentum optimizer
#   every run here uses.
# - :func:`fashion_optim.lr.make_scheduler`, :func:`fashion_optim.lr.trace_lr` and
#   :func:`fashion_optim.training.scheduler_interval`: the schedules by name, their
#   traces without training, and how each one is stepped.
# - :func:`fashion_optim.experiments.run_specs` and
#   :func:`fashion_optim.experiments.run_range_test`: the cached runs behind every
#   number on this page.
# - :class:`torch.optim.lr_scheduler.StepLR`,
#   :class:`torch.optim.lr_scheduler.OneCycleLR`,
#   :class:`torch.optim.lr_scheduler.ReduceLROnPlateau`: torch's documentation of the
#   schedules.
