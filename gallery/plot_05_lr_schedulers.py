# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
==========================================
Learning-rate schedulers on a short budget
==========================================

A scheduler changes the learning rate while the network trains. Every schedule here
starts from the rate that the tuning (chapter 6) chose for SGD with momentum on
full-budget validation, so it is compared with a tuned rate, not a default one. We take
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
# what the cache lacks and keeps a failed seed (diverged, or collapsed to chance) as
# such. The profile (``FASHION_OPTIM_PROFILE``) sets the seeds. Runs with the same seed
# start from the same weights and see the same mini-batches, so comparisons pair them by
# seed: a mean difference with its 95 % Student-t interval, ``+0.0123 [+0.0010, +0.0236]``.

# sphinx_gallery_thumbnail_number = 1
import inspect

import matplotlib.pyplot as plt
import numpy as np
import torch

from fashion_optim import experiments, plotting, stats
from fashion_optim.device import resolve_device
from fashion_optim.plotting import say

profile = experiments.current_profile()
SEEDS = list(profile.seeds)
torch.manual_seed(SEEDS[0])
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
print(f"profile {profile.name!r}, seeds {SEEDS}, device {device}")


def paired(a, b, metric="val_acc"):
    """``a - b`` by seed for two runs of ``every`` (trained below)."""
    return stats.paired_by_seed(every[a].results, every[b].results, metric)


# %%
# Two rates from the tuning
# -------------------------
# The tuning of chapter 6 (:func:`~fashion_optim.experiments.run_tuning`) trained SGD
# with momentum 0.9 at seven rates, steps of :math:`\sqrt{10}`, by successive halving up
# to the full budget; the **base rate** is the one it chose on full-budget validation.
# OneCycleLR's **peak** is the grid's next rate up, unless a seed failed there (diverged
# or collapsed) at any rung, then the base rate: a one-cycle schedule stays near its
# peak only briefly, so it may peak above the best constant rate
# :cite:p:`smith2018disciplined`, but not where a constant rate fails. Where the peak
# sits on the first rung and against each seed's range test
# (:ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`): its suggestion, where the
# smoothed loss falls fastest, and ``lr_max``, where it is lowest; then every rate after
# the first rung (:func:`~fashion_optim.plotting.rung_table`).

tuning = experiments.run_tuning(["momentum"])
base, peak = experiments.schedule_rates(tuning)
curve = tuning.rungs[0].curve("momentum", "val_acc")
MOMENTUM = experiments.NAMED["momentum"]
tests = [experiments.run_range_test(MOMENTUM, seed=seed) for seed in SEEDS]
by_seed = {
    what: ", ".join(f"{peak / getattr(t, what):.2f}x" for t in tests)
    for what in ("suggested_lr", "lr_max")
}
inside = sum(t.lr_min <= peak <= t.lr_max for t in tests)
acc = dict(zip(curve["lr"], curve["mean"], strict=True))
where = (
    f"Base rate and peak are both {base:g}: a seed failed at the grid's next "
    "rate up, or there is none."
    if peak == base
    else f"Base rate {base:g}, peak {peak:g} ({peak / base:.3g}x); after the "
    "first rung the peak's mean validation accuracy is "
    f"{acc[base] - acc[peak]:+.4f} below the base rate's."
)
say(
    f"{where} Seed by seed, the peak is {by_seed['suggested_lr']} the range "
    f"test's suggestion and {by_seed['lr_max']} its lr_max; it lies in the "
    f"useful range [lr_min, lr_max] on {inside} of {len(SEEDS)} seeds."
)
role = {base: "base", peak: "peak"} if base != peak else {base: "base and peak"}
plotting.rung_table(curve, role)

# %%
# Every run of the page
# ---------------------
# :func:`~fashion_optim.experiments.schedule_specs` names each schedule's torch class and
# arguments from the base rate and the peak (step sizes follow the epochs;
# ReduceLROnPlateau gets an eager ``patience=1``). Two calls train them all, with the
# later sections' runs: the StepLR pitfall and the full budget.

specs = experiments.schedule_specs(base, peak)  # key -> Spec
PITFALL = {"step_size": 3, "gamma": 0.1}
long_base = experiments.SHORT_BUDGET.replace(
    name="momentum, long run on a small subset",
    epochs=experiments.PerProfile(full=20, quick=12),
    train_subset=experiments.PerProfile(full=5000, quick=2000),
    val_subset=experiments.PerProfile(full=2000, quick=1000),
)
pitfall = {
    "pitfall constant": long_base.replace(scheduler="constant"),
    "pitfall step": long_base.replace(
        scheduler="step", scheduler_kwargs=PITFALL
    ),
}
every = experiments.run_outcomes({**specs, **pitfall})
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
# :func:`fashion_optim.plotting.trace_schedules` steps each scheduler as the
# :class:`~fashion_optim.training.Trainer` does, without a model (ReduceLROnPlateau is
# fed the first seed's validation losses). Left: the schedules stepped once an epoch, a
# staircase. Right: OneCycleLR, stepped every mini-batch, from ``max_lr / 25`` up to the
# peak over 30 % of the steps, then down to ``max_lr / 25 / 10,000``. A variant is dashed
# in the colour of the schedule it rewrites.

losses = {"plateau": every["plateau"].finished[0].history.val_loss}
traces = plotting.trace_schedules(specs, EPOCHS, SPE, lr=base, metrics=losses)
names = {key: spec.name for key, spec in specs.items()}
plotting.schedule_traces(traces, names, SPE)
plt.show()

# %%
# StepLR and LambdaLR
# -------------------
# ``StepLR(k, 0.1)`` multiplies the rate by 0.1 after every k-th epoch; ``LambdaLR`` sets
# it to the base rate times :math:`f(e)`, a function of the epoch that we give. With
# :math:`f(e) = 0.1^{\lfloor e/k \rfloor}` both give the same rates (a LambdaLR writes
# any per-epoch schedule), so the same seed should give the same runs, bit for bit.

trace_gap = np.abs(traces["step"] - traces["lambda_step"]).max()
step, lam = runs["step"], runs["lambda_step"]
curve_gap = np.abs(step.stack("val_acc") - lam.stack("val_acc")).max()
twins = zip(step.results, lam.results, strict=True)
same = all(a.history.same_as(b.history) for a, b in twins)
say(
    f"Largest difference between the two traces over {traces['step'].size} "
    f"mini-batches: {trace_gap:.3g}. Largest difference between their "
    f"validation curves over {len(step.seeds)} seeds: {curve_gap:.3g}; their "
    "histories are "
    + ("bit-identical on every seed" if same else "not bit-identical")
    + "."
)

# %%
# What a drop does to the validation curve: a tenfold drop divides every step by ten, so
# the gradients' noise moves the weights ten times less and the network settles deeper
# into its valley; but it also moves ten times slower along it. Early in a run, while
# the constant rate still gains every epoch, the second effect can win. Left: the mean
# over seeds; right: each schedule minus the constant rate, seed by seed, mean ± std.

plotting.schedule_curves(runs, "val_acc", reference="constant")
plt.show()

k = specs["step"].scheduler_kwargs["step_size"]
mean = {key: res.stack("val_acc").mean(axis=0) for key, res in runs.items()}
gain = {key: mean[key][k] - mean[key][k - 1] for key in ("step", "constant")}
say(
    f"In epoch {k + 1}, the first at a tenth of the rate, StepLR's mean "
    f"validation accuracy changed by {gain['step']:+.4f}, the constant rate's "
    f"by {gain['constant']:+.4f}. At the end, StepLR minus the constant rate: "
    f"{paired('step', 'constant')}."
)

# %%
# A warm-up, then :math:`1/\sqrt{t}`
# ----------------------------------
# The ``"lambda"`` schedule is the Transformer's :cite:p:`vaswani2017attention`, counted
# in epochs: a linear warm-up over :math:`w = 2` epochs, which :cite:t:`goyal2017accurate`
# use so that large-batch SGD reaches a large rate without blowing up in its first,
# poorly conditioned steps; then a decay as :math:`1/\sqrt{t}`, the step size of robust
# stochastic approximation :cite:p:`nemirovski2009robust`, slower than the :math:`1/t` of
# classical stochastic approximation :cite:p:`robbins1951stochastic`.

factors = traces["lambda"][::SPE] / base
say(
    f"Factors per epoch: {', '.join(f'{f:.3g}' for f in factors)}. After "
    f"epoch 1, at {factors[0]:.3g}x the base rate, the mean validation "
    f"accuracy is {mean['lambda'][0]:.4f} against {mean['constant'][0]:.4f} "
    "for the constant rate; at the end, minus the constant rate: "
    f"{paired('lambda', 'constant')}."
)

# %%
# OneCycleLR, with and without its momentum cycle
# -----------------------------------------------
# OneCycleLR also cycles the momentum against the rate, from ``max_momentum`` down to
# ``base_momentum`` while the rate climbs, and back :cite:p:`smith2018disciplined`.
# ``"onecycle_flat"`` holds it at the optimizer's 0.9: the same rates, but not the same
# long-run step :math:`\eta/(1-\mu)` (:func:`~fashion_optim.experiments.effective_lr`).
# The table gives each seed's final validation accuracy.

OneCycleLR = torch.optim.lr_scheduler.OneCycleLR
low = inspect.signature(OneCycleLR).parameters["base_momentum"].default
held = specs["onecycle_flat"].optimizer_kwargs["momentum"]
cycled, flat = (experiments.effective_lr(peak, m) for m in (low, held))
say(
    f"At the peak rate {peak:g}, the long-run step is {cycled:.3g} with the "
    f"cycle (momentum {low}) and {flat:.3g} without it (momentum {held}). "
    "Final validation accuracy, cycled minus held: "
    f"{paired('onecycle', 'onecycle_flat')}; held minus the constant rate: "
    f"{paired('onecycle_flat', 'constant')}; cycled minus the constant rate: "
    f"{paired('onecycle', 'constant')}."
)
trio = ("constant", "onecycle", "onecycle_flat")
plotting.per_seed_table({names[k]: runs[k] for k in trio}, "val_acc")

# %%
# All the schedules, ranked on validation
# ---------------------------------------
# Ranked by mean validation accuracy (:func:`~fashion_optim.experiments.rank_on_validation`;
# a schedule with a failed seed is not eligible), each with its paired difference from
# the constant rate (the dotted line) and its accuracy on the 10,000 test images. Below
# the figure: which schedules that only ever lower the rate (read from their traces) end
# above the constant rate, and whether ReduceLROnPlateau lowered the rate at all.

eligible = {k: r if every[k].complete else None for k, r in runs.items()}
ranked = experiments.rank_on_validation(eligible)
fig, ax = plt.subplots(figsize=(7.0, 4.2))
plotting.schedule_ranking(ax, runs, ranked)
ax.set_title(f"After {EPOCHS} epochs, {len(SEEDS)} seeds, best at the top")
plt.show()
down = [k for k, t in traces.items() if all(np.diff(t) <= 0) and t[-1] < t[0]]
wins = [k for k in down if paired(k, "constant").mean > 0]
sure = [k for k in wins if paired(k, "constant").excludes_zero]
plateau = runs["plateau"].results
drops = sum(plotting.rate_drops(r.history.lr) for r in plateau)
twins = zip(plateau, runs["constant"].results, strict=False)
copies = sum(p.history.same_as(c.history) for p, c in twins)
say(
    f"Best on validation: {names[experiments.best_on_validation(eligible)]}. "
    f"Of the {len(down)} decaying schedules "
    f"({', '.join(names[k] for k in down)}), {len(wins)} end above the "
    "constant rate on mean validation accuracy "
    f"({', '.join(names[k] for k in wins) or 'none'}), {len(sure)} with an "
    f"interval above zero. ReduceLROnPlateau lowered the rate {drops} times; "
    f"{copies} of its runs are the constant run, bit for bit."
)
METRICS = ("val_acc", "test_acc")
table = plotting.results_table(
    {names[k]: runs[k] for k in ranked}, metrics=METRICS
)
diffs = [str(paired(k, "constant")) for k in ranked]
table.insert(1, "val acc minus constant", diffs)
table.rename_axis("schedule")

# %%
# The pitfall: decaying too fast
# ------------------------------
# ``StepLR(step_size=3, gamma=0.1)`` divides the rate by ten every three epochs: over 20
# epochs, six divisions, in a line that looks harmless. We train it and the constant
# rate from the note's default rate (``NAMED["momentum"]``), on every seed, on 5,000
# training images for 20 epochs (2,000 for 12 in the quick profile): the validation
# accuracy, mean ± std over seeds, dotted lines at the drops. Below: the epoch from which
# StepLR's rate is a thousandth of its start, and how much each run still changed from
# the epoch before it to the end.

pit = {k: every[f"pitfall {k}"].results for k in ("constant", "step")}
LR0 = pit["step"].config.lr
labels = {"constant": "constant", "step": "StepLR(step_size=3, gamma=0.1)"}
fig, ax = plt.subplots(figsize=(7.0, 4.0))
plotting.step_decay_curves(
    ax, pit, step_size=PITFALL["step_size"], labels=labels
)
ax.set_title(f"{len(SEEDS)} seeds, base rate {LR0:g}")
plt.show()
frozen = {  # by seed, the epoch from which the rate is a thousandth of LR0
    r.seed: np.argmax(np.less_equal(r.history.lr, 1e-3 * LR0))
    for r in pit["step"].results
}
before = {seed: epoch - 1 for seed, epoch in frozen.items()}
FIELDS = ("val_acc", "train_loss")
moved = {
    k: plotting.largest_change(res.results, before, FIELDS)
    for k, res in pit.items()
}
when = " or ".join(str(f + 1) for f in sorted(set(frozen.values())))
(acc_s, loss_s), (acc_c, loss_c) = moved["step"], moved["constant"]
say(
    f"StepLR's rate falls a thousandfold in epoch {when} on the {len(frozen)} "
    "seeds. From the epoch before to the end, on any seed, its validation "
    f"accuracy moved by at most {acc_s:.4f} and its training loss by "
    f"{loss_s:.4f} nat; the constant rate's by up to {acc_c:.4f} and "
    f"{loss_c:.4f} nat."
)

# %%
# One cycle on the full budget
# ----------------------------
# With every training image and the note's epochs, three runs of SGD with momentum that
# differ only in rate and schedule: the default rate (``NAMED["momentum"]``), the tuned
# rate (:func:`~fashion_optim.experiments.tuned_specs`) and OneCycleLR peaking at the
# peak above (:func:`~fashion_optim.experiments.full_budget_onecycle`), over the
# profile's compared seeds; a failed seed is counted, never hidden. Paired differences on
# the test images with Holm's correction for the three pairs, and each seed's McNemar
# test over the images (:func:`~fashion_optim.plotting.paired_test_lines`):

full = {k: every[f"full {k}"] for k in ("default", "tuned", "onecycle")}
for key, o in full.items():
    print(f"{key}: {o.spec.name}, {o.failure_note() or 'no seed failed'}")
PAIRS = [("onecycle", "default"), ("onecycle", "tuned"), ("tuned", "default")]
labels = experiments.get_splits().test_labels.numpy()
for line in plotting.paired_test_lines(full, PAIRS, labels):
    print(line)
plotting.results_table(
    {o.spec.name: o.results for o in full.values() if o.finished},
    metrics=METRICS,
)

# %%
# Takeaways
# ---------
# - Start every schedule from a tuned rate; choose among schedules on validation, and let
#   the test set report the choice.
# - ``LambdaLR`` with :math:`0.1^{\lfloor e/k \rfloor}` is ``StepLR(k, 0.1)``; it writes
#   any per-epoch schedule, the Transformer's included.
# - OneCycleLR changes the rate and the momentum: compare it with and without the cycle
#   before crediting the rate, since :math:`\eta/(1-\mu)` sets the step.
# - ``StepLR(step_size=3, gamma=0.1)`` ends 20 epochs at a millionth of its base rate:
#   trace a schedule before training with it.
#
# References
# ----------
# The range test and cyclical rates are :cite:t:`smith2017cyclical`; the one-cycle policy,
# its momentum cycle and its peak above the best constant rate,
# :cite:t:`smith2018disciplined`; the warm-up, :cite:t:`goyal2017accurate`; the
# Transformer's schedule, :cite:t:`vaswani2017attention`; step sizes of stochastic
# approximation, :cite:t:`robbins1951stochastic` and :cite:t:`nemirovski2009robust`. The
# data set is Fashion-MNIST :cite:p:`xiao2017fashion` (:doc:`bibliography </references>`).
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_04_lr_range_test.py`: the range test and the sweep.
# - :ref:`sphx_glr_auto_gallery_plot_06_tuned_comparison.py`: the tuning behind the rates.
# - :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py`: the momentum optimizer.
# - :func:`fashion_optim.lr.trace_lr`, :func:`fashion_optim.experiments.schedule_specs`,
#   :func:`fashion_optim.experiments.schedule_rates`, :mod:`fashion_optim.plotting`.
# - :class:`torch.optim.lr_scheduler.StepLR`, :class:`torch.optim.lr_scheduler.LambdaLR`,
#   :class:`torch.optim.lr_scheduler.OneCycleLR`: torch's documentation.
