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
Fashion-MNIST, then train briefly at the suggested learning rate and ten times below and
above it. Look at where the smoothed loss falls fastest, and at how far its minimum lags
behind the raw loss.

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
# The range tests go through :func:`fashion_optim.experiments.run_range_test` and the
# training runs through :func:`fashion_optim.experiments.run_many`: both are cached, so
# they run once per build. The seed fixes the initial weights (the range test starts from
# the weights that training would start from) and the order of the mini-batches.

# sphinx_gallery_thumbnail_number = 1
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from fashion_optim import ewma, experiments, plotting
from fashion_optim.experiments import PerProfile
from fashion_optim.training import TrainingDivergedError, resolve_device

profile = experiments.current_profile()
SEED = profile.seeds[0]  # the range tests; the short runs use all of profile.seeds
torch.manual_seed(SEED)
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
print(f"profile {profile.name!r} ({profile.description})")
print(f"seeds {list(profile.seeds)}; range tests: seed {SEED}, device {device}")

# %%
# Run the test
# ------------
# The note's SGD with momentum (:math:`\mu = 0.9`) and Adam, each from its own ramp: Adam
# divides by the gradient's RMS, so its learning rates are on another scale. The ramp has
# ``NUM_ITER`` mini-batches of 128 of the profile's training images (300 in the full
# profile, 100 in the quick one); the test stops early once the smoothed loss exceeds five
# times its lowest value. The table gives each test's useful range and suggestion.

RAMPS = {"momentum": (1e-6, 10.0), "adam": (1e-7, 1.0)}  # start_lr, end_lr
NUM_ITER = PerProfile(full=300, quick=100)
SMOOTH = 0.05  # weight of the newest loss: beta = 0.95
tests = {
    key: experiments.run_range_test(
        experiments.NAMED[key], SEED, start_lr=start, end_lr=end, num_iter=NUM_ITER, smooth=SMOOTH
    )
    for key, (start, end) in RAMPS.items()
}
names = {key: experiments.NAMED[key].name for key in tests}
pd.DataFrame(
    {
        "ramp": [f"{start:.0e} to {end:g}" for start, end in RAMPS.values()],
        "mini-batches": [len(res.lrs) for res in tests.values()],
        "lr_min": [f"{res.lr_min:.2g}" for res in tests.values()],
        "suggested": [f"{res.suggested_lr:.2g}" for res in tests.values()],
        "lr_max": [f"{res.lr_max:.2g}" for res in tests.values()],
        "note's default lr": [f"{experiments.NAMED[key].lr:g}" for key in tests],
    },
    index=pd.Index(names.values(), name="optimizer"),
)

# %%
# Adam's steps have size about :math:`\eta` whatever the gradient, SGD's are :math:`\eta`
# times the gradient, so the two ranges need not line up. In this build:

adam, sgdm = tests["adam"], tests["momentum"]
for what in ("lr_min", "suggested_lr"):
    a, s = getattr(adam, what), getattr(sgdm, what)
    side = "lower" if a < s else "higher"
    ratio = max(a, s) / min(a, s)
    print(f"Adam's {what} {a:.2g} is {ratio:.3g} x {side} than SGD + momentum's {s:.2g}")

# %%
# The loss against the learning rate
# ----------------------------------
# The raw loss of each mini-batch (grey) and its smoothed curve, against the learning
# rate on a log axis, drawn by :func:`fashion_optim.plotting.range_test_panel`. The
# shaded span is the useful range the library reports, from where the smoothed loss has
# covered 10 % of its drop (``lr_min``) to its lowest point (``lr_max``); the dashed line
# is the suggestion, the steepest descent of the smoothed curve per decade of learning
# rate; the dotted line is the learning rate the note's runs use. The cross on the bottom
# edge marks the blow-up (:func:`~fashion_optim.plotting.range_test_blow_up`): after its
# lowest point, the first mini-batch from which the raw loss stays above its starting
# value for five mini-batches in a row (or to the end), so that a lone spike does not
# count. Raw losses above the clipping line at the top are drawn as triangles on it.

fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.6), layout="constrained")
for ax, (key, res) in zip(axes, tests.items(), strict=True):
    plotting.range_test_panel(
        ax,
        res,
        color=plotting.color_for(key),
        default_lr=experiments.NAMED[key].lr,
        title=names[key],
    )
    ax.set_xlim(RAMPS[key])
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="outside lower center", ncols=4)
plt.show()

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


def reading(rise, past):
    """What the ratio of the raw loss at lr_max to its low says about the upper end."""
    if past:
        return "past the blow-up: read the raw curve"
    if rise > 1.2:
        return "climbing: the smoothed minimum lags"
    return "slightly above its low" if rise > 1.02 else "at its low: no visible lag"


rows = {}
for key, res in tests.items():
    start, end = RAMPS[key]
    at_max = int(np.argmin(np.abs(np.log(res.lrs / res.lr_max))))
    rise = res.losses[at_max] / res.losses[: at_max + 1].min()
    i = plotting.range_test_blow_up(res)
    past = i is not None and res.lr_max > res.lrs[i]
    rows[names[key]] = {
        "lag (x lr)": f"{(end / start) ** (age / (NUM_ITER(profile) - 1)):.1f}",
        "lr_max": f"{res.lr_max:.2g}",
        "blow-up lr": "none" if i is None else f"{res.lrs[i]:.2g}",
        "raw at lr_max / its low": f"{rise:.2f}",
        "reading": reading(rise, past),
    }
pd.DataFrame.from_dict(rows, orient="index").rename_axis("optimizer")

# %%
# Train at, below and above the suggestion
# ----------------------------------------
# Is the suggestion a good learning rate? We train SGD with momentum from scratch,
# briefly (three epochs on the 50,000 training images in the full profile, two epochs on
# 10,000 in the quick one), at the suggestion rounded to two significant digits, ten
# times below it and ten times above it, over the profile's seeds. A run whose loss
# becomes NaN or infinite, or exceeds :data:`~fashion_optim.experiments.DIVERGE_THRESHOLD`
# times its first value, stops with :class:`~fashion_optim.training.TrainingDivergedError`:
# that is a result, and comes back in place of the run. The note's default runs
# (``NAMED["momentum"]``, shared with chapters 2 and 3) train in the same batch.

SHORT_EPOCHS = PerProfile(full=3, quick=2)
FACTORS = (0.1, 1.0, 10.0)
suggested = float(f"{sgdm.suggested_lr:.2g}")
base = experiments.NAMED["momentum"]
specs = {
    factor: base.replace(
        name=f"lr {rate:g}", lr=rate, epochs=SHORT_EPOCHS, record=experiments.Record()
    )
    for factor in FACTORS
    for rate in [float(f"{factor * suggested:.2g}")]
}
jobs = [(spec, seed) for spec in [*specs.values(), base] for seed in profile.seeds]
outcomes = iter(experiments.run_many(jobs, return_exceptions=True))
short, diverged = {}, {}
for factor, spec in specs.items():
    done = [next(outcomes) for _ in profile.seeds]
    diverged[factor] = [o for o in done if isinstance(o, TrainingDivergedError)]
    ok = [o for o in done if not isinstance(o, TrainingDivergedError)]
    short[factor] = experiments.SeedResults(spec, ok) if ok else None
default = experiments.SeedResults(base, [next(outcomes) for _ in profile.seeds])
n_epochs, meta = SHORT_EPOCHS(profile), default.results[0].meta
print(f"suggestion {suggested:g}; {n_epochs} epochs on {meta['train_size']:,} images")
print(f"the range test's ramp of {NUM_ITER(profile)} mini-batches is", end=" ")
print(f"{NUM_ITER(profile) / meta['steps_per_epoch']:.2f} epochs' worth")

# %%
# The validation accuracy after each epoch, one line per seed that did not diverge (the
# ten-times-above seeds can split between chance level and learning, which a band would
# hide); the dotted line is the note's default learning rate, read from the first epochs
# of its longer runs (same seeds, same data, constant learning rate: the same numbers).

epoch_axis = np.arange(1, n_epochs + 1)
factor_colors = dict(zip(FACTORS, plotting.TOL_MUTED[::3], strict=True))
fig, ax = plt.subplots(figsize=(6.8, 4.2), layout="constrained")
for factor, res in short.items():
    label = f"{factor:g} x suggestion, {specs[factor].name}"
    if diverged[factor]:
        label += f" ({len(diverged[factor])} of {len(profile.seeds)} seeds diverged)"
    curves = res.stack("val_acc") if res else np.empty((0, n_epochs))
    ax.plot([], [], color=factor_colors[factor], marker="o", ms=3, label=label)
    ax.plot(epoch_axis, curves.T, color=factor_colors[factor], marker="o", ms=3, alpha=0.85)
default_val = default.stack("val_acc")[:, :n_epochs]
plotting.band(ax, epoch_axis, default_val, f"note's default, lr {base.lr:g} (mean)", "0.3", ls=":")
ax.set(xlabel="epoch", ylabel="validation accuracy (fraction)", xticks=epoch_axis, ylim=(0, 1))
ax.set_title("SGD + momentum, trained from scratch")
fig.legend(loc="outside lower center", ncols=2, fontsize=8.5)
plt.show()

# %%
# The same runs in numbers: the validation accuracy after the last epoch, and the test
# accuracy and loss on the 10,000 held-out test images, mean ± std over the seeds that
# did not diverge. The note's default was trained longer, so only its validation accuracy
# at this epoch compares.

labels = {f: f"{f:g} x suggestion" for f in FACTORS}
ran = {labels[f]: res for f, res in short.items() if res}
table = plotting.results_table(ran, metrics=("val_acc", "test_acc", "test_loss"), index_name="run")
table = table.reindex([*labels.values(), "note's default"])
table.insert(0, "lr", [f"{spec.lr:g}" for spec in specs.values()] + [f"{base.lr:g}"])
table.insert(1, "diverged", [len(diverged[f]) for f in FACTORS] + [0])
table["seeds"] = [len(r.results) if r else 0 for r in short.values()] + [len(default.results)]
table.loc["note's default", "validation accuracy"] = plotting.mean_std(default_val[:, -1])
table.fillna("-")

# %%
# Which learning rate is ahead after these few epochs? We choose on the validation
# accuracy (never on the test set), and count what happened to the seeds ten times above
# the suggestion: a seed can diverge (its loss explodes), end at chance level (10 %
# accuracy, a loss near :math:`\ln 10 \approx 2.30` nat) or learn anyway.

val_last = {f: r.final("val_acc")[0] for f, r in short.items() if r}
best = max(val_last, key=val_last.get)
print(f"best on validation: {best:g} x the suggestion (lr {specs[best].lr:g})")
for factor, err in ((f, e) for f, errs in diverged.items() for e in errs):
    why = "not finite" if err.limit is None else f"above {err.limit:.4g}"
    print(f"  lr {specs[factor].lr:g} diverged at epoch {err.epoch}, mini-batch {err.step}", end="")
    print(f": loss {err.loss:.4g} ({why})")
CHANCE = 0.2  # validation accuracy below this is chance level for ten balanced classes
above = short[10.0].results if short[10.0] else []
stalled = [r.seed for r in above if r.history.val_acc[-1] < CHANCE]
print(f"10 x suggestion, {len(profile.seeds)} seeds: {len(diverged[10.0])} diverged,", end=" ")
print(f"{len(stalled)} at chance level, {len(above) - len(stalled)} learned")
print(f"suggestion / note's default = {suggested / base.lr:.1f}")

# %%
# The range test's steepest descent is a starting point, not an optimum: it comes from
# one seed and a ramp that never trains for long at any one learning rate, and the last
# line compares it with the note's default.
#
# Takeaways
# ---------
# - A range test costs one ramp of mini-batches (about an epoch's worth: printed above
#   the first training figure) and maps where the loss falls and where it blows up.
#   Adam's range is on another scale than SGD with momentum's: its steps have size
#   about :math:`\eta` whatever the gradient.
# - Train at the suggestion and a decade either side, and choose on validation: the
#   lines above say which won in this build. Ten times above, a seed may diverge, end
#   at chance level or learn anyway.
# - The smoothing lags by :math:`\beta/(1-\beta)` mini-batches, a fixed factor of
#   learning rate on a geometric ramp: ``lr_max``, the smoothed minimum, can come after
#   the raw curve's lowest losses, even after its blow-up (the lag table says where it
#   lies in this build). Read the upper end from the raw curve too, or use more
#   mini-batches per decade.
# - :func:`fashion_optim.lr.range_test` restores the model, the optimizer, the
#   gradients, the random state and the loader (its tests check it bitwise), so it can
#   run on the very objects we then train.
# - Smith uses the range's two ends as the bounds of a cyclical or one-cycle schedule
#   :cite:p:`smith2017cyclical,smith2018disciplined`: see
#   :ref:`sphx_glr_auto_gallery_plot_05_lr_schedulers.py`.
#
# References
# ----------
# The range test is from :cite:t:`smith2017cyclical` and :cite:t:`smith2018disciplined`;
# Adam is :cite:t:`kingma2015adam`, momentum as in :cite:t:`sutskever2013importance`.
# The data set is Fashion-MNIST :cite:p:`xiao2017fashion`; the smoothing and its lag
# follow :cite:t:`godoy2022deep`. See the :doc:`bibliography </references>` for full
# entries.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_01_ewma_bias_correction.py`: the bias-corrected EWMA
#   that smooths the curve, and its age.
# - :ref:`sphx_glr_auto_gallery_plot_03_adam_adapted_gradients.py`: why Adam's steps
#   have size :math:`\eta`.
# - :ref:`sphx_glr_auto_gallery_plot_05_lr_schedulers.py`: schedules that use the range.
# - :func:`fashion_optim.lr.range_test`, :class:`fashion_optim.lr.RangeTestResult`,
#   :func:`fashion_optim.experiments.run_range_test`,
#   :func:`fashion_optim.plotting.range_test_panel` and
#   :class:`fashion_optim.training.TrainingDivergedError`.
