r"""
=============================
The learning-rate range test
=============================

Which learning rate should we train with? Leslie Smith's range test
:cite:p:`smith2017cyclical,smith2018disciplined` answers in one short run: train one
mini-batch per learning rate on a geometric ramp, from far too small to far too large,
and watch the loss. Where it falls fastest is a good learning rate; where it blows up is
too much. We run the test for SGD with momentum and for Adam on the LeNet-like CNN and
Fashion-MNIST, check that it leaves the model untouched, and then train briefly at the
suggested learning rate and ten times below and above it.

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
# they run once per build. The seed fixes the initial weights (the range test starts from the
# weights that training would start from) and the order of the mini-batches.

# sphinx_gallery_thumbnail_number = 1
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from torch import nn

from fashion_optim import ewma, experiments, lr, plotting
from fashion_optim.experiments import PerProfile
from fashion_optim.models import make_model
from fashion_optim.training import TrainingDivergedError, resolve_device

profile = experiments.current_profile()
SEED = profile.seeds[0]  # the range tests; the short runs use all of profile.seeds
torch.manual_seed(SEED)
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
print(f"profile {profile.name!r} ({profile.description})")
print(f"seeds {list(profile.seeds)}")
print(f"range tests: seed {SEED}, device {device}")

# %%
# Run the test
# ------------
# The note's SGD with momentum (:math:`\mu = 0.9`) and Adam, each from its own ramp: Adam
# divides by the gradient's RMS, so its learning rates are on another scale. The ramp has
# ``NUM_ITER`` mini-batches of the profile's training data; the test stops early once
# the smoothed loss exceeds five times its lowest value.

RAMPS = {"momentum": (1e-6, 10.0), "adam": (1e-7, 1.0)}  # start_lr, end_lr
NUM_ITER = PerProfile(full=300, quick=100)
SMOOTH = 0.05  # weight of the newest loss: beta = 0.95
tests = {
    key: experiments.run_range_test(
        experiments.NAMED[key], SEED, start_lr=start, end_lr=end, num_iter=NUM_ITER, smooth=SMOOTH
    )
    for key, (start, end) in RAMPS.items()
}
num_iter = NUM_ITER(profile)
batch_size = experiments.NAMED["momentum"].batch_size
train = experiments.get_splits().loader("train", batch_size, seed=SEED, subset=profile.train_subset)
epochs_worth = num_iter / len(train)
print(f"ramp of {num_iter} mini-batches of {batch_size} from {train.dataset_size:,} images", end="")
print(f" ({epochs_worth:.2f} epochs' worth)")
print(
    f"{'optimizer':<15} {'ramp':>14} {'batches':>7} {'lr_min':>8} {'suggested':>9} "
    f"{'lr_max':>8} {'default lr':>10}"
)
for key, res in tests.items():
    start, end = RAMPS[key]
    spec = experiments.NAMED[key]
    ramp = f"{start:.0e} to {end:g}"
    row = f"{res.lr_min:8.2g} {res.suggested_lr:9.2g} {res.lr_max:8.2g} {spec.lr:10g}"
    print(f"{spec.name:<15} {ramp:>14} {len(res.lrs):7d} {row}")

# %%
# The loss against the learning rate
# ----------------------------------
# The raw loss of each mini-batch (grey) and its smoothed curve, against the learning
# rate on a log axis. The shaded span is the useful range the library reports, from
# where the smoothed loss has covered 10 % of its drop (``lr_min``) to its lowest point
# (``lr_max``); the dashed line is the suggestion, the steepest descent of the smoothed
# curve per decade of learning rate; the dotted line is the learning rate the note's
# runs use. The cross on the bottom edge marks the blow-up: after its lowest point, the
# first mini-batch from which the raw loss stays above its starting value for
# ``BLOW_UP_RUN`` mini-batches in a row (or to the end of the test), so that a lone
# spike does not count. Raw losses above the clipping line at the top are drawn as
# triangles on it.

BLOW_UP_RUN = 5


def blow_up(res):
    """Index where the raw loss, after its lowest point, climbs above its starting value
    and stays there for BLOW_UP_RUN mini-batches or to the end (None if it never does)."""
    above = res.losses > res.losses[0]
    for j in range(int(np.argmin(res.losses)), len(above)):
        if above[j : j + BLOW_UP_RUN].all():
            return j
    return None


fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.4), layout="constrained")
for ax, (key, res) in zip(axes, tests.items(), strict=True):
    color = plotting.color_for(key)
    top = 1.3 * res.smoothed[0]
    clipped = res.losses > top
    ax.plot(res.lrs, np.minimum(res.losses, top), color=plotting.NEUTRAL, lw=0.8)
    ax.plot(res.lrs[clipped], np.full(clipped.sum(), top), "^", color=plotting.NEUTRAL, ms=5)
    ax.plot(res.lrs, res.smoothed, color=color)
    ax.axvspan(res.lr_min, res.lr_max, color=color, alpha=0.18, lw=0)
    ax.axvline(res.suggested_lr, color="black", ls="--", lw=1.2)
    ax.axvline(experiments.NAMED[key].lr, color="0.3", ls=":", lw=1.4)
    ax.axhline(top, color=plotting.NEUTRAL, lw=0.6, ls=(0, (1, 3)))
    if (i := blow_up(res)) is not None:
        # On the bottom edge, where it does not hide the triangles or the suggestion.
        ax.plot(
            res.lrs[i],
            0.04,
            "X",
            color="black",
            ms=8,
            zorder=5,
            clip_on=False,
            transform=ax.get_xaxis_transform(),
        )
    bottom = 0.9 * res.losses.min()
    ax.set(title=experiments.NAMED[key].name, ylim=(bottom, top * 1.08), xlim=RAMPS[key])
    ax.set_ylabel("training loss (nat)")
    plotting.label_lr_axis(ax)
handles = [
    Line2D([], [], color=plotting.NEUTRAL, label="raw loss"),
    Line2D([], [], color="0.2", label="smoothed (optimizer's colour)"),
    Patch(color="0.2", alpha=0.18, label="useful range"),
    Line2D([], [], color="black", ls="--", lw=1.2, label="suggestion"),
    Line2D([], [], color="0.3", ls=":", lw=1.4, label="note's default"),
    Line2D([], [], color="black", marker="X", ls="", label="blow-up: raw stays above start"),
    Line2D([], [], color=plotting.NEUTRAL, marker="^", ls="", label="raw, clipped"),
]
fig.legend(handles=handles, loc="outside lower center", ncols=4)
plt.show()

# %%
# How far the smoothed curve lags
# -------------------------------
# The smoothing that makes the curve readable also delays it: the EWMA's average age is
# :math:`\beta/(1-\beta)` mini-batches (:func:`fashion_optim.ewma.ewma_age`), and on a
# geometric ramp that is a fixed factor of learning rate, larger when the ramp has fewer
# mini-batches per decade. So ``lr_max``, the lowest point of the smoothed curve, can
# come after the lowest raw losses: the table compares the raw loss at ``lr_max`` with the
# lowest one before it, and says whether ``lr_max`` is even past the blow-up (the cross).

age = ewma.ewma_age(1 - SMOOTH)
print(f"smoothing β = {1 - SMOOTH:g}: average age {age:.0f} mini-batches")
header = f"{'raw@lr_max':>10} {'raw low':>8} {'blow-up':>8} {'past?':>5}"
print(f"{'optimizer':<15} {'lag x lr':>8} {'lr_max':>7} {header}")
raw_rise, past_blow_up = {}, {}
for key, res in tests.items():
    start, end = RAMPS[key]
    factor = (end / start) ** (age / (num_iter - 1))
    at_max = int(np.argmin(np.abs(np.log(res.lrs / res.lr_max))))
    raw_at_max, raw_low = res.losses[at_max], res.losses[: at_max + 1].min()
    i = blow_up(res)
    lr_blow = res.lrs[i] if i is not None else np.nan
    past = "yes" if i is not None and res.lr_max > lr_blow else "no"
    name = experiments.NAMED[key].name
    raw_rise[key] = raw_at_max / raw_low
    past_blow_up[key] = past == "yes"
    row = f"{raw_at_max:10.3f} {raw_low:8.3f} {lr_blow:8.2g} {past:>5}"
    print(f"{name:<15} {factor:8.1f} {res.lr_max:7.2g} {row}")

# %%
# ``raw@lr_max`` against ``raw low`` (the lowest raw loss up to ``lr_max``) says how far
# the raw loss had already risen when the smoothed curve reached its minimum. A ratio
# well above one means the smoothed minimum marks where the rise outweighed the lagging
# average, not the best learning rate: read the upper end of the useful range against
# the raw curve too. Per optimizer, in this build:

for key, rise in raw_rise.items():
    if past_blow_up[key]:
        verdict = "past the blow-up: read the upper end from the raw curve"
    elif rise > 1.2:
        verdict = "already climbing: the smoothed minimum lags behind the raw one"
    elif rise > 1.02:
        verdict = "slightly above its low"
    else:
        verdict = "at its low: no visible lag here"
    print(f"{experiments.NAMED[key].name}: the raw loss at lr_max is {rise:.2f} x its low,")
    print(f"  {verdict}")

# %%
# The test leaves no trace
# ------------------------
# :func:`fashion_optim.lr.range_test` trains the model it is given, then puts everything
# back: weights, gradients, optimizer state and learning rates, torch's random state and
# the loader's epoch. We check it on a fresh model whose optimizer has already taken one
# step (so there is a momentum buffer to lose), with a short ramp on a small loader that
# runs out and is cycled: every tensor must be bitwise equal afterwards.

CHECK_IMAGES, CHECK_ITER = 640, 20  # 5 mini-batches of 128, cycled 4 times
loader = experiments.get_splits().loader("train", 128, seed=SEED, subset=CHECK_IMAGES)
loss_fn = nn.CrossEntropyLoss()
torch.manual_seed(SEED)
model = make_model("lenet")
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x, y = next(iter(loader))
loss_fn(model(x), y).backward()
optimizer.step()  # now there are gradients and a momentum buffer

before = {
    "model": copy.deepcopy(model.state_dict()),
    "optimizer": copy.deepcopy(optimizer.state_dict()),
    "grads": [p.grad.clone() for p in model.parameters()],
    "rng": torch.get_rng_state(),
    "epoch": loader.epoch,
}
check = lr.range_test(
    model,
    loss_fn,
    optimizer,
    loader,
    start_lr=1e-4,
    end_lr=0.1,
    num_iter=CHECK_ITER,
    progress=False,
)


def optimizer_tensors(state_dict):
    """The optimizer's per-parameter state tensors (here the momentum buffers)."""
    return [t for entry in state_dict["state"].values() for t in entry.values()]


def hyper_parameters(state_dict):
    """The optimizer's hyper-parameters (learning rate, momentum...) by group."""
    return [{k: v for k, v in g.items() if k != "params"} for g in state_dict["param_groups"]]


after = {
    "model": model.state_dict(),
    "optimizer": optimizer.state_dict(),
    "grads": [p.grad for p in model.parameters()],
    "rng": torch.get_rng_state(),
    "epoch": loader.epoch,
}
pairs = {  # what: (tensors before, tensors after)
    "model state_dict": (list(before["model"].values()), list(after["model"].values())),
    "optimizer state": tuple(optimizer_tensors(d["optimizer"]) for d in (before, after)),
    "gradients (.grad)": (before["grads"], after["grads"]),
    "torch RNG state": ([before["rng"]], [after["rng"]]),
}
rows = [
    (what, len(a), len(a) == len(b) and all(map(torch.equal, a, b)))
    for what, (a, b) in pairs.items()
]
rows.append(
    ("optimizer hyper-parameters", len(after["optimizer"]["param_groups"]),
     hyper_parameters(before["optimizer"]) == hyper_parameters(after["optimizer"]))
)  # fmt: skip
rows.append(("loader epoch", 1, before["epoch"] == after["epoch"]))
print(f"the test ran {len(check.lrs)} mini-batches, lr {check.lrs[0]:.0e} to {check.lrs[-1]:g},")
print(f"loss {check.losses[0]:.3f} -> {check.losses.min():.3f} at its lowest; afterwards:")
print(f"{'what':<28} {'entries':>7} {'unchanged':>10}")
for what, count, unchanged in rows:
    print(f"{what:<28} {count:7d} {unchanged!s:>10}")

# sphinx_gallery_start_ignore
# Hidden check: the range test restored everything, and it did train meanwhile.
changed = [what for what, _, unchanged in rows if not unchanged]
if changed:
    raise AssertionError(f"lr.range_test did not restore: {', '.join(changed)}.")
if not len(check.lrs) > 1 or np.ptp(check.losses) == 0:
    raise AssertionError("the check's range test did not train: nothing was restored.")
# sphinx_gallery_end_ignore

# %%
# Train at, below and above the suggestion
# ----------------------------------------
# Is the suggestion a good learning rate? We train SGD with momentum from scratch,
# briefly, at the suggestion rounded to two significant digits, ten times below it
# and ten times above it, over the profile's seeds. A run whose loss becomes NaN or
# infinite, or exceeds :data:`~fashion_optim.experiments.DIVERGE_THRESHOLD` times its
# first value, stops with :class:`~fashion_optim.training.TrainingDivergedError`: that
# is a result, and the table reports it.

SHORT_EPOCHS = PerProfile(full=3, quick=2)
FACTORS = (0.1, 1.0, 10.0)
suggested = float(f"{tests['momentum'].suggested_lr:.2g}")
base = experiments.NAMED["momentum"]
specs = {}
for factor in FACTORS:
    rate = float(f"{factor * suggested:.2g}")
    specs[factor] = base.replace(
        name=f"lr {rate:g}", lr=rate, epochs=SHORT_EPOCHS, record=experiments.Record()
    )
jobs = [(spec, seed) for spec in specs.values() for seed in profile.seeds]
# All nine runs train together (several at a time); a diverged run comes back as its
# error instead of a result.
outcomes = iter(experiments.run_many(jobs, return_exceptions=True))
short = {}
for factor, spec in specs.items():
    done, diverged = [], []
    for seed in profile.seeds:
        outcome = next(outcomes)
        if isinstance(outcome, TrainingDivergedError):
            diverged.append((seed, outcome))
        else:
            done.append(outcome)
    short[factor] = (spec, experiments.SeedResults(spec, done), diverged)
n_epochs = SHORT_EPOCHS(profile)
print(f"SGD + momentum, {n_epochs} epochs, {len(profile.seeds)} seeds, suggestion {suggested:g}")

# %%
# The validation accuracy after each epoch, one line per seed that did not diverge;
# the dotted line is the note's default learning rate, read from
# the first epochs of its longer shared runs (same seeds, same data, constant learning
# rate: the same numbers).

default = experiments.run_seeds(base)  # shared with chapters 2 and 3: cached
epoch_axis = np.arange(1, n_epochs + 1)
factor_colors = dict(zip(FACTORS, plotting.TOL_MUTED[::3], strict=True))
fig, ax = plt.subplots(figsize=(6.8, 4.2), layout="constrained")
for factor, (spec, res, diverged) in short.items():
    label = f"{factor:g} x suggestion, {spec.name}"
    if diverged:
        label += f" ({len(diverged)} of {len(profile.seeds)} seeds diverged)"
    if res.results:
        for j, curve in enumerate(res.stack("val_acc")):  # one line per seed: the 10x
            # seeds can split between chance level and learning, which a band would hide
            ax.plot(epoch_axis, curve, color=factor_colors[factor], marker="o", ms=3,
                    alpha=0.85, label=label if j == 0 else None)  # fmt: skip
    else:
        ax.plot([], [], color=factor_colors[factor], marker="x", ls="", label=label)
default_val = default.stack("val_acc")[:, :n_epochs]
plotting.band(ax, epoch_axis, default_val, f"note's default, lr {base.lr:g} (mean)", "0.3", ls=":")
ax.set(xlabel="epoch", ylabel="validation accuracy (fraction)", xticks=epoch_axis, ylim=(0, 1))
ax.set_title("SGD + momentum, trained from scratch")
fig.legend(loc="outside lower center", ncols=2, fontsize=8.5)  # below: it hides no line
plt.show()

# %%
# The same runs in numbers: the mean validation accuracy after the last epoch, and the
# test accuracy and loss on the held-out test images (mean ± std over the seeds that
# did not diverge; the note's default was trained longer, so only its validation
# accuracy at this epoch compares).


def mean_std(pair, n):
    return f"{pair[0]:.4f} ± {pair[1]:.4f}" if n > 1 else f"{pair[0]:.4f} (1 seed) "


header = f"{'val acc':>7} {'test accuracy':>16} {'test loss':>16}"
print(f"{'lr':>7} {'x sugg.':>7} {'diverged':>8} {header}")
for factor, (spec, res, diverged) in short.items():
    n_done = len(res.results)
    if n_done:
        val = f"{res.stack('val_acc')[:, -1].mean():7.4f}"
        test = f"{mean_std(res.test_acc, n_done):>16} {mean_std(res.test_loss, n_done):>16}"
    else:
        val, test = f"{'-':>7}", f"{'diverged':>16} {'diverged':>16}"
    n_diverged = f"{len(diverged)} of {len(profile.seeds)}"
    print(f"{spec.lr:7g} {factor:7g} {n_diverged:>8} {val} {test}")
print(f"{base.lr:7g} {'default':>7} {'':8} {default_val[:, -1].mean():7.4f}")
for spec, _, diverged in short.values():
    for seed, err in diverged:
        why = "not finite" if err.limit is None else f"above the limit {err.limit:.4g}"
        where = f"epoch {err.epoch}, mini-batch {err.step}"
        print(f"lr {spec.lr:g}, seed {seed} diverged at {where}:")
        print(f"  loss {err.loss:.4g} ({why})")
print(f"suggestion / note's default = {suggested / base.lr:.1f}")

# sphinx_gallery_start_ignore
# Hidden checks of the claims below.
val_last = {f: r.stack("val_acc")[:, -1].mean() for f, (_, r, _) in short.items() if r.results}
if not val_last.get(1.0, 0) > val_last.get(0.1, 1):
    raise AssertionError(
        f"the text says the suggestion trains faster than ten times below it; mean "
        f"validation accuracy after {n_epochs} epochs: {val_last}."
    )
test_mean = {f: r.test_acc[0] for f, (_, r, _) in short.items() if r.results}
if not test_mean.get(1.0, 0) > test_mean.get(0.1, 1):
    raise AssertionError(f"the suggestion is not ahead on test accuracy either: {test_mean}.")
if not all(test_mean[1.0] > acc for f, acc in test_mean.items() if f != 1.0):
    raise AssertionError(f"the text says the suggestion is the best of the three: {test_mean}.")
adam, sgdm = tests["adam"], tests["momentum"]
if not (adam.lr_min < sgdm.lr_min and adam.suggested_lr < sgdm.suggested_lr):
    raise AssertionError(
        "the text says Adam's useful range starts lower, and its suggestion is lower, than "
        f"SGD + momentum's: lr_min {adam.lr_min:.3g} vs {sgdm.lr_min:.3g}, suggestion "
        f"{adam.suggested_lr:.3g} vs {sgdm.suggested_lr:.3g}."
    )
# sphinx_gallery_end_ignore

# %%
# What the comparison shows: ten times below the suggestion, SGD with momentum learns,
# but more slowly, and after these few epochs it is behind the suggestion on validation
# and test accuracy. Ten times above, a seed can diverge (its loss explodes; such seeds
# are listed under the table), end at chance level (10 % accuracy and a loss near
# :math:`\ln 10 \approx 2.30` nat), or learn anyway; which happened to each seed here:

spec_above, above, above_diverged = short[10.0]
CHANCE = 0.2  # test accuracy below this is chance level for ten balanced classes
stalled = [r.seed for r in above.results if r.test_acc < CHANCE]
learned = {r.seed: r.test_acc for r in above.results if r.test_acc >= CHANCE}
print(
    f"lr {spec_above.lr:g} (10 x suggestion), {len(profile.seeds)} seeds: "
    f"{len(above_diverged)} diverged, {len(learned)} learned,\n"
    f"{len(stalled)} ended at chance level (test accuracy < {CHANCE})"
)
worst_at_suggestion = min(r.test_acc for r in short[1.0][1].results)
for seed, acc in learned.items():
    print(
        f"  seed {seed} reached test accuracy {acc:.4f};\n"
        f"  the worst seed at the suggestion reached {worst_at_suggestion:.4f}"
    )

# %%
# The suggestion is the best of the three; the last rows of the table above compare it
# with the note's default learning rate. The range test's steepest descent is a starting point,
# not an optimum: it comes from one seed and a ramp that never trains for long at any
# one learning rate.
#
# Takeaways
# ---------
# - A range test costs a few hundred mini-batches (the first table) and maps where the
#   loss falls and where it blows up. Adam's range starts lower and its suggestion is
#   lower than SGD with momentum's: Adam's steps have size about :math:`\eta` whatever
#   the gradient, SGD's are :math:`\eta` times the gradient.
# - Its suggestion (steepest descent of the smoothed loss) trained better than ten times
#   below it and ten times above it in our short runs; ten times above, a seed may
#   diverge, end at chance level or learn anyway (this build's count is printed above).
# - The smoothing lags by :math:`\beta/(1-\beta)` mini-batches, a fixed factor of
#   learning rate on a geometric ramp: ``lr_max``, the smoothed minimum, can come after
#   the raw curve's lowest losses, even after its blow-up (the lag table says where it
#   lies in this build). Read the upper end from the raw curve too, or use more
#   mini-batches per decade.
# - The test restores the model, the optimizer, the gradients, the random state and
#   the loader bitwise, so it can run on the very objects we then train.
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
#   :func:`fashion_optim.experiments.run_range_test` and
#   :class:`fashion_optim.training.TrainingDivergedError`.
