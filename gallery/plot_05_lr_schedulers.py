# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
==========================================
Learning-rate schedulers on a short budget
==========================================

A scheduler changes the learning rate while the network trains. Every schedule here
starts from one rate, the one that the tuning (chapter 6) chose for SGD with momentum on
full-budget validation, so that the schedules differ in their shape alone. We take StepLR
and LambdaLR apart, run OneCycleLR at that rate and at a higher peak, with and without
its momentum cycle, to separate what its peak, its annealing and its cycle each do, rank
the schedules on validation and report the winner on test; then, on the full budget, set
OneCycleLR against a cosine annealed from the same peak. Look at each rate on a log axis.

.. math::

    \eta_e^{\mathrm{StepLR}} = \eta_0\,\gamma^{\lfloor e / k \rfloor}, \qquad
    \eta_e^{\mathrm{LambdaLR}} = \eta_0\,f(e),

    f_{\text{warm-up}, 1/\sqrt{t}}(e) = \min\Bigl(\frac{t}{w}, \sqrt{\frac{w}{t}}\Bigr),
    \quad t = e + 1,

    \eta_i^{\mathrm{cosine}} = \frac{\eta_0}{2}\Bigl(1 + \cos\frac{\pi i}{T}\Bigr),

for epoch :math:`e = 0, 1, \dots`, step size :math:`k`, decay :math:`\gamma`, base rate
:math:`\eta_0`, a function :math:`f` of our choice, :math:`w = 2` warm-up epochs, and
mini-batch :math:`i` of the run's :math:`T`.
"""

# %%
# Setup
# -----
# Every run goes through :func:`fashion_optim.experiments.run_outcomes`, which trains
# what the cache lacks and keeps a failed seed (diverged, or collapsed to chance) as
# such. The profile (``FASHION_OPTIM_PROFILE``) sets the seeds. Runs with the same seed
# start from the same weights and see the same mini-batches, so comparisons pair them by
# seed: a mean difference with its Student-t interval, 95 % for a pair alone; a table of
# m pairs, at the Bonferroni level :math:`1 - 0.05/m` (all hold at once with probability
# 0.95), its header says which.

# sphinx_gallery_thumbnail_number = 1
import inspect

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
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
    """``a - b`` by seed for two runs of ``every`` (trained below), 95 %."""
    d = stats.paired_by_seed(every[a].results, every[b].results, metric)
    return f"{d} (95 %)"


def level(tests):  # the Bonferroni level of a family of stats.paired_tests
    t = next(iter(tests.values()))
    return f"{100 * (1 - t.alpha / t.m):.4g} %"


# %%
# Two rates from the tuning
# -------------------------
# The tuning of chapter 6 (:func:`~fashion_optim.experiments.run_tuning`) trained SGD
# with momentum 0.9 at seven rates, steps of :math:`\sqrt{10}`, by successive halving up
# to the full budget; the **base rate** is the one it chose on full-budget validation.
# OneCycleLR's own **peak** is the grid's next rate up, unless a seed failed there
# (diverged or collapsed) at any rung, then the base rate
# (:func:`~fashion_optim.experiments.schedule_rates`): a one-cycle schedule stays near
# its peak only briefly, so it may peak above the best constant rate
# :cite:p:`smith2018disciplined`, but not where a constant rate fails. We take it rather
# than a range test's suggestion because it is one rate for every seed (the runs are
# paired by seed), on the grid the tuning checked at every rung. Where it sits on the
# first rung and against each seed's range test
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
diff = acc[peak] - acc[base]
side = "above" if diff > 0 else "below"
where = (
    f"Base rate and peak are both {base:g}: a seed failed at the grid's next "
    "rate up, or there is none."
    if peak == base
    else f"Base rate {base:g}, peak {peak:g} ({peak / base:.3g}x); after the "
    f"first rung the peak's mean validation accuracy is {abs(diff):.4f} "
    f"{side} the base rate's."
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
# ReduceLROnPlateau gets ``patience=0``: it cuts the rate tenfold after the first epoch
# whose validation loss does not improve). The full-budget runs go through
# :func:`~fashion_optim.experiments.compared_outcomes`, with the other chapters' runs of
# the tuning: OneCycleLR from the peak and a cosine annealed from the same peak
# (:func:`~fashion_optim.experiments.full_budget_annealed`) join the tuned rate over the
# profile's compared seeds.

specs = experiments.schedule_specs(base, peak)  # key -> Spec
every = experiments.run_outcomes(specs)
extra = {
    ("tuned", "onecycle"): experiments.full_budget_onecycle(peak),
    ("tuned", "cosine"): experiments.full_budget_annealed(peak),
}
compared = experiments.compared_outcomes(tuning, ["momentum"], extra)
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
# staircase. Right: those stepped every mini-batch: the cosine, from the base rate to
# zero over the whole run, and OneCycleLR, from ``max_lr / 25`` up to its peak over 30 %
# of the steps, then down to ``max_lr / 25 / 10,000``. A variant is drawn in the colour
# of the schedule it rewrites, in a line of its own.

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
# any per-epoch schedule) up to rounding: StepLR multiplies its last rate by 0.1,
# LambdaLR the base rate by :math:`f(e)`. A rounding apart, the same seed gives the same
# runs; the histories say whether the last bits agree too.

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
# over seeds of the schedules that never raise the rate (and the warm-up); right: each
# minus the constant rate, seed by seed, mean ± std.

DECAYS = ("constant", "step", "multistep", "lambda", "cosine", "plateau")
plotting.schedule_curves({k: runs[k] for k in DECAYS}, "val_acc")
plt.show()

k = specs["step"].scheduler_kwargs["step_size"]
ms = specs["multistep"].scheduler_kwargs
per_epoch = ", ".join(f"{f:.3g}" for f in traces["multistep"][::SPE] / base)
say(
    f"MultiStepLR(milestones={ms['milestones']}, gamma={ms['gamma']}): the "
    f"rate per epoch, as a multiple of the base rate: {per_epoch}."
)
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
# OneCycleLR: its peak, its annealing, its momentum cycle
# --------------------------------------------------------
# OneCycleLR also cycles the momentum against the rate, from ``max_momentum`` down to
# ``base_momentum`` while the rate climbs, and back :cite:p:`smith2018disciplined`; a
# "momentum held" run keeps the optimizer's 0.9: the same rates, but not the same
# long-run step :math:`\eta/(1-\mu)` (:func:`~fashion_optim.experiments.effective_lr`).
# Each effect below is the paired difference in test accuracy between two runs that
# differ in it alone, with Holm's correction over the effects: the cycle at each peak,
# the higher peak (momentum held), the one-cycle shape at the base rate (a warm-up,
# then an annealing), and annealing alone (the cosine).

OneCycleLR = torch.optim.lr_scheduler.OneCycleLR
low = inspect.signature(OneCycleLR).parameters["base_momentum"].default
held = specs["onecycle_flat"].optimizer_kwargs["momentum"]
cycled, flat = (experiments.effective_lr(peak, m) for m in (low, held))
EFFECTS = {  # effect -> (with it, without it)
    f"momentum cycle, peak {base:g}": ("onecycle_base", "onecycle_base_flat"),
}
if peak != base:  # a higher peak: its cycle, and the peak itself
    EFFECTS[f"momentum cycle, peak {peak:g}"] = ("onecycle", "onecycle_flat")
    EFFECTS[f"peak {peak:g}, not {base:g}"] = (
        "onecycle_flat",
        "onecycle_base_flat",
    )
EFFECTS["one cycle, peak at the base rate"] = ("onecycle_base_flat", "constant")
EFFECTS["cosine annealing"] = ("cosine", "constant")
values = stats.paired_by_seed_values
effects = stats.paired_tests(
    {e: values(runs[a], runs[b]) for e, (a, b) in EFFECTS.items()}
)
found = [e for e, t in effects.items() if t.resolved]
n = min(t.difference.n for t in effects.values())
say(
    f"At the peak rate {peak:g}, the long-run step is {cycled:.3g} with the "
    f"cycle (momentum {low}) and {flat:.3g} without it (momentum {held}). "
    + f"Resolved after Holm's correction over {len(effects)} effects: "
    + (plotting.join_names(found) if found else "none")
    + (
        f" (with {n} seeds no interval is drawn)."
        if n < stats.MIN_PAIRS
        else "."
    )
)
pd.DataFrame(
    {
        "with it": [names[a] for a, _ in EFFECTS.values()],
        "without it": [names[b] for _, b in EFFECTS.values()],
        f"test acc., with minus without [{level(effects)}]": [
            str(t) for t in effects.values()
        ],
        "Holm p": [
            f"{t.pvalue_holm:.3g}".replace("nan", "—") for t in effects.values()
        ],
    },
    index=list(EFFECTS),
).rename_axis("effect")

# %%
# All the schedules, ranked on validation
# ---------------------------------------
# Ranked by mean validation accuracy (:func:`~fashion_optim.experiments.rank_on_validation`;
# :func:`~fashion_optim.experiments.schedule_candidates` leaves out a schedule with a
# failed seed, a repeated configuration, and ReduceLROnPlateau where it never lowered
# the rate: it is then the constant run under another name), each with its
# accuracy on the 10,000 test images. The LambdaLR twin of StepLR is the same schedule by
# definition (:data:`~fashion_optim.experiments.SAME_SCHEDULE`): StepLR alone is ranked.
# The winner on validation is then set against every other on the test set, paired by
# seed, with Holm's correction (:func:`~fashion_optim.plotting.leader_verdict`): the
# ranking's own validation numbers do not measure its gap. The table's intervals are at
# the Bonferroni level over those comparisons, stated in its header.

eligible, left_out = experiments.schedule_candidates(every)
ranked = experiments.rank_on_validation(eligible)
when = experiments.lowered_epochs(runs["plateau"])
drops = ", ".join(f"seed {s}: {e or 'never'}" for s, e in when.items())
say(
    f"ReduceLROnPlateau's epochs at a lowered rate, by seed: {drops}. Left "
    "out of the ranking: "
    + (
        "; ".join(f"{names[k]} ({why})" for k, why in left_out.items())
        or "none"
    )
    + "."
)
fig, ax = plt.subplots(figsize=(7.0, 4.6))
plotting.schedule_ranking(ax, runs, ranked)
ax.set_title(f"After {EPOCHS} epochs, {len(SEEDS)} seeds, best at the top")
plt.show()
top, verdict, gaps = plotting.leader_verdict(eligible, names)
say(verdict[:1].upper() + verdict[1:])
METRICS = ("val_acc", "test_acc")
table = plotting.results_table(
    {names[k]: runs[k] for k in ranked}, metrics=METRICS
)
gap = ["—"] + [str(gaps[k]) for k in ranked[1:]]
at = f" [{level(gaps)}]" if gaps else ""
table.insert(1, f"test acc., {names[top]} minus{at}", gap)
table.rename_axis("schedule")

# %%
# One cycle on the full budget
# ----------------------------
# With every training image and the note's epochs, four runs of SGD with momentum that
# differ only in rate and schedule: the default rate (``NAMED["momentum"]``), the tuned
# constant rate, OneCycleLR peaking at the peak above
# (:func:`~fashion_optim.experiments.full_budget_onecycle`), and a cosine annealed from
# the same peak to zero (:func:`~fashion_optim.experiments.full_budget_annealed`): so
# one-cycle is set against an annealed run, not only against a rate that never anneals.
# The default rate runs over the tuning's seeds, the others over the profile's compared
# seeds; a failed seed is counted, never hidden. Paired differences on the test images
# with Holm's correction for the three pairs, and each seed's McNemar test over the
# images (:func:`~fashion_optim.plotting.paired_test_lines`):

KINDS = {"default": "momentum", "tuned": "momentum"}
KINDS |= {"onecycle": "onecycle", "cosine": "cosine"}
full = {
    k: compared[("default" if k == "default" else "tuned", v)]
    for k, v in KINDS.items()
}
for key, o in full.items():
    print(f"{key}: {o.spec.name}, {o.failure_note() or 'no seed failed'}")
PAIRS = [("onecycle", "cosine"), ("onecycle", "tuned"), ("cosine", "tuned")]
labels = experiments.get_splits().test_labels.numpy()
for line in plotting.paired_test_lines(full, PAIRS, labels):
    print(line)
plotting.results_table(
    {
        f"{o.spec.name}, {plotting.rate_label(o.spec)}": o.results
        for o in full.values()
        if o.finished
    },
    metrics=METRICS,
)

# %%
# Takeaways
# ---------
# - Start every schedule from one tuned rate; choose among schedules on validation, and
#   let the test set (or unseen seeds) report the choice.
# - ``LambdaLR`` with :math:`0.1^{\lfloor e/k \rfloor}` is ``StepLR(k, 0.1)``; it writes
#   any per-epoch schedule, the Transformer's included.
# - OneCycleLR changes the peak, the shape and the momentum at once: run it at the
#   constant rate's peak and with the momentum held before crediting any one of them,
#   and set it against an annealed schedule from the same peak.
# - Trace a schedule before training with it: a cosine stepped once an epoch, or a
#   plateau rule whose patience outlasts the run, is not the schedule its name suggests.
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
