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
rate chosen at the full budget falls on them, and at how far each tool's rule reads
from it.

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
# Adam's steps have size about :math:`\eta` whatever the gradient, SGD's are :math:`\eta`
# times the gradient, so the two ranges need not line up. Medians over the seeds, on a
# log scale (:func:`~fashion_optim.plotting.log_median`):

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
# the lowest one up to it, says whether ``lr_max`` is even past the blow-up, and reads the
# ratio: well above one, the smoothed minimum marks where the rise outweighed the lagging
# average, not the best learning rate.

age = ewma.ewma_age(1 - SMOOTH)
print(f"smoothing β = {1 - SMOOTH:g}: average age {age:.0f} mini-batches")
plotting.range_test_lag_table(
    tests, SEEDS, names, ramps=RAMPS, num_iter=NUM_ITER, age=age
)

# %%
# The suggestion scorecard
# ------------------------
# Should we trust the suggestion? The issue trackers of the tools people use are full of
# users asking just that, and no tool or paper we know of checks it against a sweep;
# here we measure it. :mod:`fashion_optim.suggest` reads a rate from each seed's raw
# losses by each rule of :data:`~fashion_optim.suggest.RULES`: ours (``steepest``, the
# dots above), fastai's ``valley``, ``minimum/10`` and ``steep``
# (https://docs.fast.ai/callback.schedule.html), and torch-lr-finder's ``min_gradient``
# (https://github.com/davidtvs/pytorch-lr-finder). Each rule runs under both smoothings of
# :data:`~fashion_optim.suggest.SMOOTHINGS`: fastai's bias-corrected EWMA and
# torch-lr-finder's EWMA seeded with the first loss, uncorrected. fastai's own default is
# :math:`\beta = 0.98`; we use the range test's :math:`\beta = 1 - 0.05 = 0.95` (that is
# torch-lr-finder's ``smooth_f = 0.05``) for both, so that only the convention differs.
# fastai's rules skip a tenth of the *planned* mini-batches, so they get ``NUM_ITER``.
#
# The scorecard: per optimizer, rule and smoothing, the suggested rate (median over the
# seeds) and its distance from the rate chosen at the full budget in factors of two,
# :math:`\log_2(\text{suggested} / \text{chosen})`, median and per seed: +1 is twice the
# chosen rate, -1 half of it (a seed's rate is the chosen one times :math:`2^{\log_2}`).
# The grid steps by :math:`\sqrt{10}`, about 1.66 factors of two, so a distance
# below about 0.8 is within the grid's resolution; "within" counts the seeds whose
# suggestion lies that close (:math:`|\log_2| \le 0.83`, half a step).

BETA = 1 - SMOOTH
rows = []
for key in KEYS:
    for seed, res in zip(SEEDS, tests[key], strict=True):
        found = suggest.suggest_all(
            res.lrs, res.losses, beta=BETA, num_iter=NUM_ITER
        )
        for (rule, smoothing), rate in found.items():
            log2 = np.log2(rate / chosen[key])
            rows.append({"optimizer": names[key], "rule": rule,
                         "smoothing": smoothing, "seed": seed, "lr": rate,
                         "log2": log2})  # fmt: skip
scores = pd.DataFrame(rows)
HALF_STEP = np.log2(np.sqrt(10)) / 2
scores["within"] = scores["log2"].abs() <= HALF_STEP
plotting.suggestion_scorecard(scores, len(SEEDS))

# %%
# What switching the smoothing convention moves, and on how many seeds each rule lands
# within half a grid step of the chosen rate (with the bias-corrected smoothing), from
# :func:`~fashion_optim.plotting.scorecard_sentences`:

for sentence in plotting.scorecard_sentences(scores, len(SEEDS)):
    say(sentence)

# %%
# The seeded EWMA puts weight :math:`\beta^i` on the first loss at point :math:`i`, so it
# differs from the corrected one over the first :math:`1/(1-\beta) = 20` points or so,
# and only a rule that reads that early part can move.
#
# Takeaways
# ---------
# - A range test costs one ramp of mini-batches (about an epoch's worth, printed at the
#   start) and maps where the loss falls and where it blows up; the first table shows
#   how much each end moves from seed to seed. Adam's steps have size about :math:`\eta`
#   whatever the gradient, so its range need not line up with SGD's.
# - Whole trainings over the same seeds say which rate trains best on validation at the
#   full budget and where seeds start to fail; the lines under "Where training stops"
#   set each range test's blow-up against the first rung's.
# - Check a suggestion before trusting it: the scorecard gives each rule's distance from
#   the rate chosen at the full budget, the lines under it which rules fall within the
#   grid's resolution and what the smoothing convention changes.
# - The smoothing lags by :math:`\beta/(1-\beta)` mini-batches, a fixed factor of
#   learning rate on a geometric ramp: ``lr_max`` can come after the raw curve's lowest
#   losses, even after its blow-up (the lag table). Read the upper end from the raw
#   curve too, or use more mini-batches per decade.
#
# References
# ----------
# The range test is from :cite:t:`smith2017cyclical` and :cite:t:`smith2018disciplined`;
# the suggestion rules are those of fastai's ``lr_find``
# (https://docs.fast.ai/callback.schedule.html) and of torch-lr-finder
# (https://github.com/davidtvs/pytorch-lr-finder). Adam is :cite:t:`kingma2015adam`,
# momentum as in :cite:t:`sutskever2013importance`. The data set is Fashion-MNIST
# :cite:p:`xiao2017fashion`; the smoothing and its lag follow :cite:t:`godoy2022deep`.
# See the :doc:`bibliography </references>` for full entries.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_01_ewma_bias_correction.py`: the bias-corrected EWMA
#   that smooths the curve, and its age.
# - :ref:`sphx_glr_auto_gallery_plot_03_adam_adapted_gradients.py`: why Adam's steps
#   have size :math:`\eta`.
# - :ref:`sphx_glr_auto_gallery_plot_05_lr_schedulers.py`: schedules built on the
#   tuned rate.
# - :ref:`sphx_glr_auto_gallery_plot_06_tuned_comparison.py`: the tuning of every
#   optimizer, and the comparison at the rates it chooses.
# - :mod:`fashion_optim.suggest` and :func:`fashion_optim.plotting.range_test_with_sweep`.
