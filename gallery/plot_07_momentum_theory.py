# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
==============================================
Momentum's convergence, in theory and in torch
==============================================

On a quadratic, gradient descent, heavy-ball momentum and Nesterov's method are linear
iterations: in each direction of curvature :math:`\lambda` one step multiplies the state
(parameter and momentum buffer) by a 2x2 matrix, and the error shrinks like
:math:`\rho^t`, with :math:`\rho` the largest modulus of those matrices' eigenvalues. We
compute :math:`\rho` in closed form on the quadratic of chapter 2, find each method's
best learning rate and momentum, map where the error decays monotonically, oscillates or
diverges, and check every prediction against the rate measured from
:class:`torch.optim.SGD`'s own paths. Then the book's linear regression with SGD,
momentum and Adam. Last, the network: its measured curvature sets the quadratic's
limits beside the rates at which chapter 6's tuning failed (this page reads those runs
and chapter 8's; it trains none). With
:math:`c = 1 - \eta\lambda`, the eigenvalues are the roots of

.. math::

    \text{heavy ball: } z^2 - (c + \mu)\, z + \mu, \qquad
    \text{Nesterov: } z^2 - (1 + \mu)\, c\, z + \mu c,

and :math:`c` itself for gradient descent.
"""

# %%
# Setup
# -----
# The quadratic is chapter 2's :math:`\tfrac12 (\lambda_1 x^2 + \lambda_2 y^2)`
# (``toys.QUADRATIC_CURVATURES``); the momentum is the note's.
# The quadratics run on the CPU in float64: two parameters gain nothing from a GPU, and
# no step on them draws a random number (the seed is set all the same, as in every
# chapter).

# sphinx_gallery_thumbnail_number = 2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from fashion_optim import experiments, plotting, stats, theory, toys
from fashion_optim.plotting import say

SEED = 0
torch.manual_seed(SEED)
plotting.use_style()
CURV = toys.QUADRATIC_CURVATURES
MU = experiments.NAMED["momentum"].optimizer_kwargs["momentum"]
KAPPA = theory.condition_number(CURV)
MOMENTUM_METHODS = ("heavy_ball", "nesterov")
LABELS = plotting.METHOD_LABELS


say(
    f"Curvatures {CURV}: condition number κ = {KAPPA:g}. The note's momentum μ "
    f"= {MU:g}."
)

# %%
# One step as a matrix
# --------------------
# :func:`~fashion_optim.theory.iteration_matrix` writes one step of torch's update (chapter
# 2) in one direction. At :math:`\eta = 0.01` and the note's :math:`\mu`, the table gives
# each direction's eigenvalues (:func:`~fashion_optim.theory.eigenvalues`, closed form)
# and their modulus. A complex pair has modulus :math:`\sqrt{\mu}` for heavy ball, since
# the product of the roots is :math:`\mu`: there the error turns round the origin of
# (parameter, buffer) while it shrinks. The closed forms are the eigenvalues that
# :func:`numpy.linalg.eigvals` finds (the library's tests check it).

ETA = 0.01
rows = {}
for method in MOMENTUM_METHODS:
    eigenvalues = theory.eigenvalues(method, CURV, ETA, MU)
    for lam, roots in zip(CURV, eigenvalues, strict=True):
        rows[LABELS[method], f"λ = {lam:g}"] = {
            "eigenvalues": " , ".join(f"{z:.4f}" for z in roots),
            "modulus": np.abs(roots).max(),
        }
matrix = theory.iteration_matrix("heavy_ball", CURV[1], ETA, MU)
say(
    f"Heavy ball's matrix for λ = {CURV[1]:g} at η = {ETA:g}: "
    f"{matrix.round(3).tolist()}."
)
pd.DataFrame(rows).T.rename_axis(["method", "direction"])

# %%
# The rate against the learning rate
# ----------------------------------
# :func:`~fashion_optim.theory.rate` over a grid of learning rates, at the note's
# :math:`\mu` (left) and at each method's own optimal :math:`\mu` (right, next section).
# Circles mark each curve's lowest rate; above the dotted line the error grows.

LRS = np.geomspace(1e-3, 0.3, 800)
best = {method: theory.optimum(method, CURV) for method in theory.METHODS}
own_mu = {method: best[method].momentum for method in MOMENTUM_METHODS}
fig, axes = plt.subplots(
    1, 2, figsize=(9.5, 4.3), sharey=True, layout="constrained"
)
plotting.rate_curves(axes[0], CURV, LRS, MU, ylim=(0.5, 1.1))
plotting.rate_curves(axes[1], CURV, LRS, own_mu, ylim=(0.5, 1.1))
axes[0].set_title(f"note's μ = {MU:g}")
axes[1].set_title(
    "each at its optimal μ: {heavy_ball:.2f}, {nesterov:.2f}".format(**own_mu)
)
axes[1].set_ylabel("")
plotting.legend_below(axes[0], ncols=4)
plt.show()

# %%
# The lowest rate on the left, and the range of learning rates that reach it: heavy
# ball's rate is :math:`\sqrt\mu` wherever both directions' roots are complex, a flat
# bottom.

mus = {m: 0.0 if m == "gd" else MU for m in theory.METHODS}
at_mu = {m: theory.rate(m, CURV, LRS, mu) for m, mu in mus.items()}
low = {m: rho.min() for m, rho in at_mu.items()}
low["gd"] = best["gd"].rate  # closed form, as in the next table
flat = LRS[at_mu["heavy_ball"] <= low["heavy_ball"] * (1 + 1e-9)]
than = {m: "slower" if low[m] > low["gd"] else "faster" for m in low}
verdict = (
    f"both are {than['nesterov']}"
    if than["heavy_ball"] == than["nesterov"]
    else f"heavy ball is {than['heavy_ball']}, Nesterov {than['nesterov']}"
)
say(
    f"At μ = {MU:g}, heavy ball's best rate is {low['heavy_ball']:.4f} (√μ = "
    f"{np.sqrt(MU):.4f}) for η from {flat.min():.3g} to {flat.max():.3g}; "
    f"Nesterov's best is {low['nesterov']:.4f}. Gradient descent's best is "
    f"{low['gd']:.4f} (ρ* below): at this μ {verdict} than gradient descent."
)

# %%
# The best learning rate and momentum
# -----------------------------------
# :func:`~fashion_optim.theory.optimum` in closed form: gradient descent's
# :math:`\eta^* = 2/(\lambda_{\min} + \lambda_{\max})` with rate
# :math:`(\kappa-1)/(\kappa+1)`; Polyak's heavy ball with :math:`\mu^* =
# ((\sqrt\kappa-1)/(\sqrt\kappa+1))^2` and rate :math:`\sqrt{\mu^*}`; Nesterov's tuning
# for quadratics by :cite:t:`lessard2016analysis`. Steps per decade,
# :math:`-1/\log_{10}\rho`, are the steps that cut the error tenfold: about
# :math:`\kappa \ln 10/2` for gradient descent, :math:`\sqrt\kappa \ln 10/2` for heavy ball.

table = pd.DataFrame(best.values()).set_index("method").rename(index=LABELS)
table = table.rename(columns={"lr": "η*", "momentum": "μ*", "rate": "ρ*"})
table["steps per decade"] = -1 / np.log10(table["ρ*"])
speedup = (
    table.loc[LABELS["gd"], "steps per decade"] / table["steps per decade"]
)
table["speed-up over GD"] = speedup
say(
    f"κ = {KAPPA:g}: heavy ball needs {speedup[LABELS['heavy_ball']]:.2f} "
    f"times fewer steps than gradient descent (√κ = {np.sqrt(KAPPA):.2f}), "
    f"Nesterov {speedup[LABELS['nesterov']]:.2f} times fewer. The note's μ = "
    f"{MU:g} would be heavy ball's optimum at κ = "
    f"{((1 + np.sqrt(MU)) / (1 - np.sqrt(MU))) ** 2:,.0f}."
)
table.round(4)

# %%
# The map over learning rate and momentum
# ---------------------------------------
# :func:`~fashion_optim.plotting.rate_map` colours the rate over :math:`(\eta, \mu)`.
# :func:`~fashion_optim.theory.regions` splits the plane by the slowest direction's
# root of largest modulus: real and positive, the error decays without changing sign
# (plain); complex or negative, it oscillates (hatched); :math:`\rho \ge 1`, it diverges
# (grey, cross-hatched). The star is the optimum. :cite:t:`goh2017why` draws these
# regions for one curvature; here both curvatures count.

MOMENTA = np.linspace(0.0, 0.99, 300)
MAP_LRS = np.geomspace(1e-3, 1.0, 400)
fig, axes = plt.subplots(
    1, 2, figsize=(9.5, 4.6), sharey=True, layout="constrained"
)
for ax, method in zip(axes, MOMENTUM_METHODS, strict=True):
    mesh = plotting.rate_map(ax, method, CURV, MAP_LRS, MOMENTA, vmin=0.5)
    ax.axhline(MU, color="black", lw=1.2, ls="--", label=f"note's μ = {MU:g}")
    ax.set_title(LABELS[method])
axes[1].set_ylabel("")
fig.colorbar(mesh, ax=axes, label="convergence rate ρ (error factor per step)")
plotting.legend_below(axes[0], ncols=5)
plt.show()

# %%
# Along the dashed line, the note's :math:`\mu`:

for method in MOMENTUM_METHODS:
    kinds = theory.regions(method, CURV, MAP_LRS, MU)
    mono = MAP_LRS[kinds == "monotone"]
    edge = theory.stability_limit(method, CURV, MU)
    where = (
        f"decays monotonically for η from {MAP_LRS[0]:g} (the map's edge) to "
        f"{mono.max():.3g}"
        if mono.size
        else "oscillates at every learning rate that converges"
    )
    name = LABELS[method].capitalize()
    say(
        f"{name}, μ = {MU:g}: the error {where}; it diverges from η = "
        f"{edge:.3g} on."
    )
gd_limit = theory.stability_limit("gd", CURV)
say(f"Gradient descent diverges from η = {gd_limit:.3g}.")

# %%
# Predicted against measured
# --------------------------
# :func:`~fashion_optim.theory.measured_rate` runs :class:`torch.optim.SGD` on the same
# quadratic from :math:`(1, 1)` for up to 2,000 steps (stopping once the error has
# shrunk or grown by :math:`10^{150}`) and fits the geometric rate of
# :math:`\lVert\theta_t - \theta^*\rVert` over the last half of the run. The points are
# chosen to span the regions (the line below the table says which they cover); at each
# optimum two roots tie, the hardest case for a fit.

POINTS = [
    ("gd", f * theory.stability_limit("gd", CURV), 0.0)
    for f in (0.3, 0.97, 1.05)
]
for method in MOMENTUM_METHODS:
    edge = theory.stability_limit(method, CURV, MU)
    POINTS += [
        (method, 0.002, 0.3),
        (method, best[method].lr, best[method].momentum),
    ]
    POINTS += [(method, 0.3 * edge, MU), (method, 1.05 * edge, MU)]
fits = [theory.measured_rate(m, CURV, lr, mu) for m, lr, mu in POINTS]
table = pd.DataFrame(POINTS, columns=["method", "η", "μ"])
table["region"] = [theory.regions(m, CURV, lr, mu) for m, lr, mu in POINTS]
table["predicted ρ"] = [theory.rate(m, CURV, lr, mu) for m, lr, mu in POINTS]
table["measured ρ"] = [fit.rate for fit in fits]
table["steps run"] = [fit.steps for fit in fits]
table["method"] = table["method"].map(LABELS)
table["difference"] = table["measured ρ"] - table["predicted ρ"]
at_optimum = np.array(
    [(lr, mu) == (best[m].lr, best[m].momentum) for m, lr, mu in POINTS]
)
gap = table["difference"].abs()
worst = table.loc[gap.idxmax()]
say(
    f"Largest disagreement: {worst['difference']:+.1e}, {worst['method']} at η "
    f"= {worst['η']:.3g}, μ = {worst['μ']:.3g} ({worst['region']}); away from "
    f"the optima at most {gap[~at_optimum].max():.1e}. Regions covered: "
    f"{', '.join(sorted(set(table['region'])))}."
)
shown = table.style.hide(axis="index")
shown.format(
    {"η": "{:.4g}", "μ": "{:.3g}", "difference": "{:+.1e}"}, precision=5
)

# %%
# The book's linear regression
# ----------------------------
# :data:`~fashion_optim.toys.linear_regression` is the mean squared error of
# :math:`y = b + w x` on the 100 points of :cite:t:`godoy2022deep` (chapter 0), from the
# book's start. As in the book's chapter 6: SGD and Adam at :math:`\eta = 0.1`, and SGD
# with momentum 0.9. The book takes 10 epochs of mini-batches of 16 of 80 points, 50
# steps; here :func:`~fashion_optim.toys.optimize_path` takes full-batch steps, 50
# drawn on the surface (:func:`~fashion_optim.plotting.toy_paths`), 300 on the right.

surface = toys.linear_regression
BOOK = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=0.1),
}
NAMES = {"sgd": "SGD", "momentum": "SGD + momentum 0.9", "adam": "Adam"}
runs = {k: toys.optimize_path(surface, make, 300) for k, make in BOOK.items()}
minimum = np.array(surface.minimum)
dist = {k: np.linalg.norm(path - minimum, axis=1) for k, path in runs.items()}
fig, (ax_path, ax_dist) = plt.subplots(
    1, 2, figsize=(9.5, 4.6), layout="constrained"
)
first50 = {key: path[:51] for key, path in runs.items()}
plotting.toy_paths(ax_path, surface, first50, labels=NAMES)
ax_path.set(xlabel="bias b (no unit)", ylabel="weight w (no unit)")
ax_path.set_title("first 50 steps")
for key, d in dist.items():
    ax_dist.plot(d, color=plotting.color_for(key), label=NAMES[key])
ax_dist.set(yscale="log", xlabel="step")
ax_dist.set_ylabel("distance to the minimum (parameter units)")
plotting.legend_below(ax_path, ncols=6)
plt.show()

# %%
# The loss is a quadratic, so the theory applies to SGD and momentum (not to Adam, whose
# step divides by a running scale of the gradient): the curvatures are its Hessian's
# eigenvalues. :func:`~fashion_optim.theory.fitted_rate` measures each path's rate over
# its last 150 steps, as :func:`~fashion_optim.theory.measured_rate` does.

hessian = torch.autograd.functional.hessian(surface.fn, torch.tensor(minimum))
lam = np.linalg.eigvalsh(hessian.numpy())
predicted = {"sgd": theory.rate("gd", lam, 0.1)}
predicted["momentum"] = theory.rate("heavy_ball", lam, 0.1, 0.9)
measured = {key: theory.fitted_rate(d) for key, d in dist.items()}
book = pd.DataFrame({"predicted ρ": predicted, "measured ρ": measured})
kinds = theory.regions("heavy_ball", lam, 0.1, 0.9)
best_book = theory.optimum("heavy_ball", lam)
say(
    f"Curvatures {lam[0]:.3f} and {lam[1]:.3f} (κ = {lam[1] / lam[0]:.1f}); at "
    f"η = 0.1 and μ = 0.9 momentum's error is {kinds}, with rate "
    f"{predicted['momentum']:.4f} (√0.9 = {np.sqrt(0.9):.4f}). Heavy ball's "
    f"optimum here: η = {best_book.lr:.3f}, μ = {best_book.momentum:.3f}, rate "
    f"{best_book.rate:.3f}. Measured minus predicted: "
    f"{measured['sgd'] - predicted['sgd']:+.1e} (SGD), "
    f"{measured['momentum'] - predicted['momentum']:+.1e} (momentum)."
)
book.rename(index=NAMES).style.format(precision=4, na_rep="–")

# %%
# The quadratic's limits on the network
# -------------------------------------
# On the CNN the limits scale with :math:`1/\lambda_{\max}`, the largest eigenvalue
# of the training loss's Hessian. :func:`~fashion_optim.experiments.sharpness`
# measures it by the Lanczos method on Hessian-vector products, on a fixed stratified
# sample of training images, at three snapshots of chapter 8's runs (default rates):
# after about a third of an epoch, one epoch and the last. Beside it, the first rung
# of chapter 6's tuning (every rate of each grid, 1 epoch): the largest rate at which
# no seed failed, and the next one, where one did.

THREE = {"sgd": "gd", "momentum": "heavy_ball", "nesterov": "nesterov"}
names = {k: experiments.NAMED[k].name for k in THREE}
snaps = experiments.snapshot_specs(tuple(THREE))
snaps = experiments.run_specs(snaps, seeds=[SEED])
run0 = snaps["sgd"].results[0]
per_epoch, taken = int(run0.meta["steps_per_epoch"]), run0.snapshot_steps
wanted = (per_epoch / 3, per_epoch, taken[-1])
STEPS = [int(taken[np.abs(taken - t).argmin()]) for t in wanted]
jobs = [experiments.SharpnessJob(snaps[k].results[0], STEPS) for k in THREE]
sharp = dict(zip(THREE, experiments.run_many(jobs), strict=True))
rung = experiments.run_tuning(("sgd", "momentum", "nesterov", "adam")).rungs[0]
epochs = [f"{s / per_epoch:.2g} ep." for s in STEPS]
table, limits = plotting.stability_table(sharp, rung, THREE, MU, columns=epochs)
fig, ax = plt.subplots(figsize=(8.5, 4.6), layout="constrained")
marks = plotting.stability_strips(
    ax, rung, limits, labels=names, limit_labels=epochs
)
plotting.legend_below(ax, ncols=2, handles=marks)
plt.show()

# %%
# Per optimizer: :math:`\lambda_{\max}` at each snapshot (nat per squared weight
# unit), the tightest limit they set, and the sweep's bracket of its failure.

safe, fail = table["no failure up to"], table["next, failed"]
ratio = safe / table["limit"]
settled = np.concatenate([s.converged for s in sharp.values()])
etas = sorted({snaps[k].results[0].config.lr for k in THREE})
say(
    f"Lanczos on {sharp['sgd'].images:,} images, at most "
    f"{sharp['sgd'].max_iter} products per snapshot: {settled.sum()} of "
    f"{settled.size} estimates within a relative residual of "
    f"{sharp['sgd'].tol:g}. The largest rate at which the CNN trains without "
    f"failure is {ratio.min():.2g} to {ratio.max():.2g} times the quadratic's "
    "tightest limit at its measured curvature. That curvature is measured only "
    f"on runs at η = {', '.join(f'{e:g}' for e in etas)}, while the failures "
    f"come at rates from {fail[np.isfinite(fail)].min():.2g} on; as "
    "sharpness adapts towards 2/η (see below), runs at those rates would "
    "have a curvature of their own: the ratio sets one rate's curvature "
    "against other rates' failures."
)
table.rename(index=names).style.format(precision=3, na_rep="–")

# %%
# At one curvature the quadratic allows heavy ball :math:`1+\mu` times gradient
# descent's rate. With noisy gradients, heavy ball at :math:`\eta` behaves like SGD
# at :math:`\eta/(1-\mu)`, and the noise removes most of momentum's speed-up
# :cite:p:`kidambi2018insufficiency,zhang2019algorithmic`: that predicts the ratio
# :math:`1-\mu`. Nesterov's limit is :math:`(1+\mu)/(1+2\mu)` times gradient descent's.
# The sweep brackets the ratio of each momentum method's threshold to SGD's.
# Full-batch gradient descent sharpens until :math:`\lambda_{\max}` reaches
# :math:`2/\eta` and trains on at that edge :cite:p:`cohen2021gradient`; the last
# line says how near the minibatch runs come to theirs.

NESTEROV = (1 + MU) / (1 + 2 * MU)
for key, name, factor in (
    ("momentum", "heavy ball, deterministic 1 + μ", 1 + MU),
    ("momentum", "heavy ball, noisy 1 − μ", 1 - MU),
    ("nesterov", "Nesterov, deterministic (1 + μ)/(1 + 2μ)", NESTEROV),
):
    low, high = safe[key] / fail["sgd"], fail[key] / safe["sgd"]
    edge = np.isclose(factor, [low, high], rtol=1e-9).any()
    where = "inside" if low < factor < high else "outside"
    where = "on the edge, which the grid cannot resolve" if edge else where
    say(f"{name} = {factor:.2g}; the bracket ({low:.2g}, {high:.2g}): {where}.")
use = {k: experiments.NAMED[k].lr / min(v) for k, v in limits.items()}
say(
    "Each default-rate run's η over the tightest limit its own curvature sets: "
    + ", ".join(f"{names[k]} {u:.2f}" for k, u in use.items())
    + f" (plain SGD's is η λ_max / 2); the largest, {max(use.values()):.0%}, "
    f"is {names[max(use, key=use.get)]}'s."
)

# %%
# Does momentum train faster on the network, as on the quadratic? After one epoch at
# each optimizer's best rate of the first rung, paired by seed (Holm over two pairs):

top = {k: rung.points[k][rung.best_rate(k)].results for k in THREE}
pairs = {
    f"{names[k]} minus {names['sgd']}": stats.paired_by_seed_values(
        top[k], top["sgd"], "val_acc"
    )
    for k in ("momentum", "nesterov")
}
for name, test in stats.paired_tests(pairs).items():
    verdict = (
        "resolved" if test.resolved else "the seeds do not tell them apart"
    )
    say(f"validation accuracy, {name}: {test}; {verdict}.")

# %%
# Takeaways
# ---------
# - On a quadratic each method's convergence rate is the spectral radius of a 2x2 matrix
#   per direction, in closed form; the rates measured from torch's own paths agree with
#   it to within the largest disagreement printed under the table.
# - Momentum's gain is the square root of the condition number in steps, but only at the
#   right :math:`(\eta, \mu)`: the tables give the speed-up at the optimum and what the
#   note's :math:`\mu` gives on this quadratic.
# - Heavy ball's rate is :math:`\sqrt\mu` over a whole band of learning rates, where its
#   error oscillates; a large :math:`\mu` buys a wide stable band of :math:`\eta`, up to
#   :math:`2(1+\mu)/\lambda_{\max}`, at a rate no better than :math:`\sqrt\mu`.
# - On the CNN, the quadratic's limits at the measured :math:`\lambda_{\max}` and the
#   sweep's failures are printed side by side: how far apart they are, and which of the
#   deterministic and the noisy predictions of momentum's threshold the grid allows.
#
# References
# ----------
# The heavy-ball method and its tuning on quadratics are due to :cite:t:`polyak1964some`,
# Nesterov's method to :cite:t:`nesterov1983method` and its tuning for quadratics to
# :cite:t:`lessard2016analysis`; momentum for deep networks is discussed by
# :cite:t:`sutskever2013importance`. The regions of the map follow :cite:t:`goh2017why`;
# the linear regression and its paths come from :cite:t:`godoy2022deep`. The edge of
# stability is :cite:t:`cohen2021gradient`'s; momentum under gradient noise,
# :cite:t:`kidambi2018insufficiency` and :cite:t:`zhang2019algorithmic`. See the
# :doc:`bibliography </references>`.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py`: the same optimizers on the
#   CNN, and on the quadratic's paths.
# - :ref:`sphx_glr_auto_gallery_plot_06_tuned_comparison.py`: the tuning whose first
#   rung gives the failures; :ref:`sphx_glr_auto_gallery_plot_08_loss_landscape.py`:
#   the snapshot runs.
# - :func:`fashion_optim.theory.rate`, :func:`fashion_optim.theory.measured_rate`,
#   :func:`fashion_optim.plotting.rate_map`, :func:`fashion_optim.experiments.sharpness`,
#   :func:`fashion_optim.plotting.stability_strips`, :class:`torch.optim.SGD`.
