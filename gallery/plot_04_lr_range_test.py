# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
=============================
The learning-rate range test
=============================

Which learning rate should we train with? Leslie Smith's range test
:cite:p:`smith2017cyclical,smith2018disciplined` answers in one short run: train one
mini-batch per learning rate on a geometric ramp, from far too small to far too large,
and watch the loss. Where it falls fastest is a good learning rate; where it blows up is
too much. We run the test for SGD with momentum and for Adam on the LeNet-like CNN and
Fashion-MNIST, on every seed, and check it against the rates chapter 6's tuning trained
on the same seeds. Look at how much the curves move from seed to seed, at where the
rate chosen at the full budget falls on them, and at what following each tool's rule
costs in validation accuracy.

Over :math:`N` mini-batches, batch :math:`i = 0, \dots, N-1` uses the learning rate
:math:`\eta_i` and gives the loss :math:`\ell_i`, smoothed by a bias-corrected EWMA
(:ref:`chapter 1 <sphx_glr_auto_gallery_plot_01_ewma_bias_correction.py>`) with
:math:`\beta = 0.95`:

.. math::

    \eta_i &= \eta_\text{start}\left(\frac{\eta_\text{end}}{\eta_\text{start}}\right)^{i/(N-1)},
    \\
    m_i &= \beta\, m_{i-1} + (1-\beta)\,\ell_i, \qquad
    \hat\ell_i = \frac{m_i}{1-\beta^{i+1}}.
"""

# %%
# Setup
# -----
# The range tests go through :func:`fashion_optim.experiments.run_many` (as
# :class:`~fashion_optim.experiments.RangeTestJob`, all in one batch) and the tuning
# through :func:`fashion_optim.experiments.run_tuning`, both cached. A seed fixes
# the initial weights (a range test starts from the weights that training with that seed
# starts from) and the order of the mini-batches; every range test and every rate of
# the tuning runs on each of the profile's seeds.

# sphinx_gallery_thumbnail_number = 1
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from fashion_optim import ewma, experiments, plotting, suggest
from fashion_optim.device import resolve_device
from fashion_optim.models import make_model
from fashion_optim.plotting import say

profile = experiments.current_profile()
SEEDS = profile.seeds
torch.manual_seed(SEEDS[0])
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
print(f"profile {profile.name!r} ({profile.description})")
print(f"seeds {list(SEEDS)}, device {device}")

# %%
# Run the test on every seed
# --------------------------
# The note's SGD with momentum (:math:`\mu = 0.9`) and Adam, each from its own ramp: Adam
# divides by the gradient's RMS, so its learning rates are on another scale. The ramp has
# ``NUM_ITER`` mini-batches of 128 of the profile's training images; the test stops
# early once the smoothed loss exceeds five times its lowest value. Then, per seed
# (:func:`~fashion_optim.plotting.range_test_table`), each test's useful range, from
# where the smoothed loss has covered 10 % of its drop (``lr_min``) to its lowest point
# (``lr_max``), its suggestion (the steepest descent of the smoothed loss per decade of
# rate, before its lowest point) and its blow-up (defined with the figure below).

KEYS = ("momentum", "adam")
RAMPS = {"momentum": (1e-6, 10.0), "adam": (1e-7, 1.0)}  # start_lr, end_lr
NUM_ITER = experiments.RANGE_TEST_ITERS(profile)  # planned mini-batches
SMOOTH = 0.05  # weight of the newest loss: beta = 0.95
names = {key: experiments.NAMED[key].name for key in KEYS}
settings = {"num_iter": NUM_ITER, "smooth": SMOOTH}  # the same for every test
jobs = [  # every test in one batch: the cores share them
    experiments.RangeTestJob(experiments.NAMED[key], seed, a, b, **settings)
    for key, (a, b) in RAMPS.items()
    for seed in SEEDS
]
done = iter(experiments.run_many(jobs))
tests = {key: [next(done) for _ in SEEDS] for key in RAMPS}
cfg = experiments.NAMED["momentum"].resolve(profile)
n_train = cfg.train_subset or len(experiments.get_splits().train_labels)
epochs = NUM_ITER * cfg.batch_size / n_train
print(f"a ramp of {NUM_ITER} mini-batches of {cfg.batch_size}, ", end="")
print(f"{n_train:,} images: {epochs:.2f} epochs' worth")
plotting.range_test_table(tests, SEEDS, names)

# %%
# SGD's step is :math:`\eta` times the gradient. Adam's is :math:`\eta` times the
# adapted gradient :math:`\hat m_t/(\sqrt{\hat v_t}+\epsilon)`, the gradient's running
# mean over its running RMS: near one where the gradient keeps its sign, near zero where
# noise dominates, whatever the gradient's scale (chapter 3): a signal-to-noise ratio,
# not a gradient's size. The shared Adam run records each layer's median adapted step (its
# ``adam_quantiles``, chapter 3's run, cached); at the end of training:

adam = experiments.run_seeds(experiments.NAMED["adam"]).results
mid = int(np.abs(adam[0].adam_quantile_levels - 0.5).argmin())
layers = [n for n, _ in make_model("lenet").named_parameters() if "weight" in n]
step = [[r.adam_quantiles("adapted", n)[-1, mid] for n in layers] for r in adam]
say(
    f"Over {len(layers)} layers and {len(adam)} seeds, the median adapted step "
    f"is {np.min(step):.2g} to {np.max(step):.2g}: Adam's typical step is that "
    "many times η, not η; SGD's is η times a gradient of whatever size the "
    "loss gives, so the two ranges need not line up."
)

# %%
# Medians over the seeds, on a log scale (:func:`~fashion_optim.plotting.log_median`):

for what in ("lr_min", "suggested_lr"):
    a, s = (
        plotting.log_median([getattr(r, what) for r in tests[k]])
        for k in ("adam", "momentum")
    )
    side = "lower" if a < s else "higher"
    print(
        f"Adam's {what} {a:.2g} is {max(a, s) / min(a, s):.3g} x {side}",
        end=" ",
    )
    print(f"than SGD + momentum's {s:.2g}")

# %%
# The range test against the tuning
# ---------------------------------
# :func:`~fashion_optim.experiments.run_tuning` (chapter 6) trains each optimizer at
# seven rates in steps of :math:`\sqrt{10}` for one epoch over the same seeds (its first
# rung, the ``sweep`` below), carries the best on by successive halving, and chooses the
# rate with the best mean validation accuracy at the full budget among those where no
# seed failed: the ``chosen`` rate every rule is scored against.

tuning = experiments.run_tuning(KEYS)
sweep = tuning.rungs[0]  # every rate of the grid, after the first rung
chosen = {key: tuning.best_rate(key) for key in KEYS}
run = sweep.points["momentum"][chosen["momentum"]].finished[0]
size = run.meta["train_size"]
print(f"first rung: {run.config.epochs} epoch(s) on {size:,} images")
for key, rates in ((key, sweep.rates(key)) for key in KEYS):
    early = tuning.first_rung_choice(key)
    print(f"  {names[key]}: {rates[0]:.3g} to {rates[-1]:.3g}")
    print(f"    first rung's best {early:.3g}, full budget's {chosen[key]:.3g}")

# %%
# Top: each seed's range test, drawn by
# :func:`fashion_optim.plotting.range_test_with_sweep`: the raw loss of each mini-batch
# (grey, clipped at the top of the panel), its smoothed curve (colour: the optimizer,
# line style: the seed), the suggestion as a dot on it and the blow-up as a cross on the
# bottom edge: after the lowest raw loss, the first mini-batch from which the raw loss
# stays above its starting value for five mini-batches in a row
# (:func:`~fashion_optim.plotting.range_test_blow_up`).
# Bottom: the first rung's validation accuracy on the same rate axis
# (:func:`~fashion_optim.plotting.sweep_curves`): mean ± std over the seeds that
# finished, an ``x`` on the top edge with the number of seeds that diverged, a ``v`` on
# the bottom edge with the number that collapsed, the first rung's best rate ringed. The
# dash-dotted line carries the rate chosen at the full budget up through the range
# tests. :func:`~fashion_optim.plotting.range_tests_against_sweep` draws a column per
# optimizer; the axes start a decade below the sweep's lowest rate (the ramps start
# lower, at ``RAMPS``) and end where the last test stopped.

plotting.range_tests_against_sweep(
    tests, sweep, seeds=SEEDS, chosen=chosen, titles=names
)
plt.show()

# %%
# Where training stops
# --------------------
# The top of the useful range is where training stops being stable. The first rung
# measures it over a whole epoch and every seed: the largest rate at which no seed
# failed, and the first at which one diverged or collapsed (chapter 6 gives the rule).
# We set each seed's range-test blow-up against the largest stable rate, in factors of
# two (:math:`\log_2` of their ratio).

for key in KEYS:
    curve, stable = sweep.curve(key, "val_acc"), sweep.largest_stable_rate(key)
    # the first failure above the stable rate (below it, a rate too small
    # to leave chance in one epoch also counts as collapsed)
    failed = curve["diverged"] + curve["collapsed"] > 0
    lost = np.flatnonzero(failed & (curve["lr"] > stable))
    if lost.size:
        lr, i = curve["lr"][lost[0]], lost[0]
        print(f"{names[key]}: stable up to {stable:.3g}; at {lr:.3g}, ", end="")
        print(
            f"{curve['diverged'][i]} of {len(SEEDS)} seeds diverged, ", end=""
        )
        print(f"{curve['collapsed'][i]} collapsed")
    else:
        print(
            f"{names[key]}: no seed failed, up to the grid's top {stable:.3g}"
        )
    for seed, res in zip(SEEDS, tests[key], strict=True):
        i = plotting.range_test_blow_up(res)
        d = np.log2(res.lrs[i] / stable) if i is not None else 0.0
        side = "above" if d > 0 else "below"
        side = f"{abs(d):.1f} factors of two {side} {stable:.3g}"
        where = "none" if i is None else f"at {res.lrs[i]:.3g}, {side}"
        print(f"  seed {seed}, the range test's blow-up: {where}")

# %%
# How far the smoothed curve lags
# -------------------------------
# The smoothing that makes the curve readable also delays it: the EWMA's average age is
# :math:`\beta/(1-\beta)` mini-batches (:func:`fashion_optim.ewma.ewma_age`), and on a
# geometric ramp that is a fixed factor of learning rate, larger when the ramp has fewer
# mini-batches per decade. So ``lr_max``, the lowest point of the smoothed curve, can
# come after the lowest raw losses. The table compares the raw loss at ``lr_max`` with
# the lowest one up to it and reads the ratio: well above one, the smoothed minimum
# marks where the rise outweighed the lagging average, not the best learning rate (the
# reading says "past the blow-up" where ``lr_max`` lies beyond the blow-up).

age = ewma.ewma_age(1 - SMOOTH)
print(f"smoothing β = {1 - SMOOTH:g}: average age {age:.0f} mini-batches")
lag = plotting.range_test_lag_table(
    tests, SEEDS, names, ramps=RAMPS, num_iter=NUM_ITER, age=age
)
lag

# %%

rise = lag["raw at lr_max / its low"].astype(float)
past = int(lag["reading"].str.startswith("past").sum())
say(
    f"On {int((rise > 1.2).sum())} of {len(lag)} tests the raw loss at lr_max "
    f"is over 1.2 times its low (up to {rise.max():.2f} times); on "
    f"{past or 'none'}, lr_max lies past the blow-up."
)

# %%
# The suggestion scorecard
# ------------------------
# Should we trust the suggestion? The issue trackers of the tools people use are full of
# users asking just that; here we measure it. :mod:`fashion_optim.suggest` reads a rate
# from each seed's raw losses by each rule of :data:`~fashion_optim.suggest.RULES`: ours
# (``steepest``, the dots above), fastai's ``valley`` (its default), ``slide``,
# ``minimum/10`` and ``steep`` (https://docs.fast.ai/callback.schedule.html), and
# torch-lr-finder's ``min_gradient``, the steepest gradient its plot marks
# (https://github.com/davidtvs/pytorch-lr-finder). Ours reads a constant rate; fastai
# designed its four to give the peak of ``fit_one_cycle``, not a constant rate, so for
# SGD + momentum they are also scored against the one-cycle peak the note uses
# (:func:`~fashion_optim.experiments.schedule_rates`, chapter 5).
#
# Each tool also runs its test its own way (:data:`~fashion_optim.suggest.CONVENTIONS`):
# this page smooths with :math:`\beta = 0.95`, stops at 5 times the lowest smoothed loss
# and ramps by :math:`i/(N-1)`; fastai uses :math:`\beta = 0.98`, 4 times and
# :math:`i/\text{num\_it}`; torch-lr-finder uses ours, but with an EWMA seeded with
# the first loss and not corrected. :func:`~fashion_optim.suggest.replay` re-reads each stored
# test under each convention post hoc: it re-smooths the raw losses and cuts them where
# that tool would have stopped; fastai's ramp with ``num_it`` :math:`= N-1` trains
# exactly our first :math:`N-1` rates, so dropping our last point reproduces it. Only a
# tool that would have trained past our own stop cannot be reproduced; the lines below
# say whether that happened.

BASE, PEAK = "this package", experiments.schedule_rates(tuning)[1]
ONE_CYCLE = {"valley", "slide", "minimum/10", "steep"}  # fastai's
for name, conv in suggest.CONVENTIONS.items():
    print(f"{name}: beta {conv.beta}, {conv.smoothing} EWMA, ", end="")
    print(f"stops at {conv.stop:g}x, ramp {conv.ramp}")
print(f"{names['momentum']}'s one-cycle peak: {PEAK:g}")

# %%
# Each suggestion gets two scores. Its distance from the rate chosen at the full budget
# in grid steps (:func:`~fashion_optim.suggest.grid_steps`; a step is
# :math:`\sqrt{10}`, so within half a step means the grid could not have done better),
# and its **regret**, the validation accuracy lost by following it
# (:func:`~fashion_optim.suggest.regret`): the best point of a sensitivity curve minus the
# curve at the suggestion, interpolated on the log-rate axis
# (:func:`~fashion_optim.plotting.sensitivity_curve`: mean over the seeds; a diverged
# seed counts at chance). The full budget trains only the rates successive halving kept,
# so a suggestion outside them gets no full-budget regret ("out": we do not
# extrapolate); the first rung trained all seven rates, so it scores every suggestion
# inside the grid, on a curve one epoch long. The count below says how many of the
# table's scores the full budget gives; the ranking uses the first rung.

curves = {"full budget": tuning.last, "first rung": sweep}
for key in KEYS:
    kept = ", ".join(f"{lr:.3g}" for lr in tuning.last.rates(key))
    print(f"{names[key]}: the full budget trained {kept}")
rows = []
for key in KEYS:
    xy = {c: plotting.sensitivity_curve(sw, key) for c, sw in curves.items()}
    for seed, res in zip(SEEDS, tests[key], strict=True):
        found = suggest.suggest_all(res.lrs, res.losses, num_iter=NUM_ITER)
        for (rule, conv), (lr, exact) in found.items():
            peak = key == "momentum" and rule in ONE_CYCLE
            regrets = {
                f"regret, {c}": suggest.regret(*v, lr, outside="nan")
                for c, v in xy.items()
            }
            rows.append({"optimizer": names[key], "rule": rule,
                         "convention": conv, "seed": seed, "lr": lr,
                         "exact": exact,
                         "steps": suggest.grid_steps(lr, chosen[key]),
                         **regrets,
                         "peak steps": suggest.grid_steps(lr, PEAK) if peak
                         else np.nan})  # fmt: skip
scores = pd.DataFrame(rows)
shown = scores[scores["convention"].isin((BASE, "fastai"))]
say(
    f"Of the table's {len(shown)} suggestions, "
    f"{shown['regret, full budget'].count()}"
    " fall inside the full-budget curve's rates and "
    f"{shown['regret, first rung'].count()} inside the first rung's, so the "
    "ranking below reads the first rung, not the full budget."
)
plotting.suggestion_scorecard(scores, conventions=(BASE, "fastai"))

# %%
# What the scorecard says (:func:`~fashion_optim.plotting.scorecard_sentences`): each
# rule's mean regret on the first rung and on how many seeds it lands within half a
# step of the chosen rate, with this page's convention. Only rules scored on every
# seed are ranked (averaging the other seeds would flatter a rule that left the grid);
# the others are listed apart, with what the first rung saw at the grid's end. Then
# what each other convention moves, and whether every replay was exact.

ends = {names[k]: (sweep.rates(k)[0], sweep.rates(k)[-1]) for k in KEYS}
for sentence in plotting.scorecard_sentences(scores, BASE, "first rung", ends):
    say(sentence)
for key in KEYS:
    c, mine = sweep.curve(key, "val_acc"), scores["optimizer"] == names[key]
    for i, side, beyond in ((-1, "above", np.greater), (0, "below", np.less)):
        n = int((mine & beyond(scores["lr"], c["lr"][i])).sum())
        bad = int(c["diverged"][i] + c["collapsed"][i])
        if n:
            say(
                f"{n} of {int(mine.sum())} suggestions for {names[key]} (every "
                f"convention) lie {side} the grid's rate {c['lr'][i]:.3g}, "
                f"where {bad} of {len(SEEDS)} seeds failed in the first rung."
            )
fastai = scores[
    scores["peak steps"].notna() & (scores["convention"] == "fastai")
]
for what, col in (("constant rate", "steps"), ("one-cycle peak", "peak steps")):
    say(
        f"fastai's rules for {names['momentum']} (its convention) lie a median "
        f"{fastai[col].abs().median():.2f} grid steps from the {what}."
    )

# %%
# The seeded EWMA puts weight :math:`\beta^i` on the first loss at point :math:`i`, so it
# differs from the corrected one over the first :math:`1/(1-\beta) = 20` points or so,
# and only a rule that reads that early part can move; :math:`\beta = 0.98` lags
# :math:`0.98/0.02 = 49` mini-batches where 0.95 lags 19, and fastai's 4 times stops
# where ours goes on to 5 times.
#
# Takeaways
# ---------
# - A range test costs one ramp of mini-batches (about an epoch's worth, printed at the
#   start) and maps where the loss falls and where it blows up; the first table shows
#   how much each end moves from seed to seed. Adam's steps are :math:`\eta` times its
#   adapted gradient, a running signal-to-noise ratio (its per-layer medians are
#   printed above), not :math:`\eta`, so its range need not line up with SGD's.
# - Whole trainings over the same seeds say which rate trains best on validation at the
#   full budget and where seeds start to fail; the lines under "Where training stops"
#   set each range test's blow-up against the first rung's largest stable rate.
# - Check a suggestion before trusting it: the scorecard gives what following each rule
#   costs in validation accuracy (its regret, on curves that trained the rate; never
#   extrapolated) beside its distance in grid steps from the rate chosen at the full
#   budget, under this page's convention and fastai's. A rule whose suggestion leaves
#   the grid on some seed is not ranked: its mean over the other seeds would flatter it.
#   fastai's rules aim at a one-cycle peak, not a constant rate: score them against
#   both.
# - The smoothing lags by :math:`\beta/(1-\beta)` mini-batches, a fixed factor of
#   learning rate on a geometric ramp: ``lr_max`` can come after the raw curve's lowest
#   losses (the lag table counts how often it did here). Read the upper end from the
#   raw curve too, or use more mini-batches per decade.
#
# References
# ----------
# The range test is from :cite:t:`smith2017cyclical` and :cite:t:`smith2018disciplined`;
# the suggestion rules are those of fastai's ``lr_find``
# (https://docs.fast.ai/callback.schedule.html; ``valley`` and ``slide`` come from its
# forum's automated learning-rate suggester thread) and of torch-lr-finder
# (https://github.com/davidtvs/pytorch-lr-finder). Adam is :cite:t:`kingma2015adam`,
# momentum as in :cite:t:`sutskever2013importance`. The data set is Fashion-MNIST
# :cite:p:`xiao2017fashion`; the smoothing and its lag follow :cite:t:`godoy2022deep`.
# See the :doc:`bibliography </references>` for full entries.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_01_ewma_bias_correction.py`: the bias-corrected EWMA
#   that smooths the curve, and its age.
# - :ref:`sphx_glr_auto_gallery_plot_03_adam_adapted_gradients.py`: Adam's adapted
#   step, layer by layer.
# - :ref:`sphx_glr_auto_gallery_plot_05_lr_schedulers.py`: schedules built on the
#   tuned rate, and the one-cycle peak.
# - :ref:`sphx_glr_auto_gallery_plot_06_tuned_comparison.py`: the tuning of every
#   optimizer, and the comparison at the rates it chooses.
# - :mod:`fashion_optim.suggest` and :func:`fashion_optim.plotting.range_test_with_sweep`.
