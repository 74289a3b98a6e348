# Needs the fashion-optim library: pip install the wheel offered beside this script on the
# site (fashion_optim-<version>-py3-none-any.whl), or, once it is on a package index,
# pip install fashion-optim.
r"""
===============================================
The loss landscape, and what a plane leaves out
===============================================

We draw the paths of SGD, momentum and Nesterov on the plane through their shared start
that holds most of their trajectories (a PCA of the weights), over the loss on that
plane. Then we measure what the picture leaves out: the loss at each snapshot beside the
contour value under its dot, and how far each snapshot lies from the plane. A random
plane through the final weights gives a second view, and random walks with the same
steps, independent or as correlated as the run's, say how much of the variance any
plane of a walk would hold.

Every snapshot splits into a part in the plane and a part orthogonal to it:

.. math::

    \theta_t = \theta_0 + \alpha_t\, d_1 + \beta_t\, d_2 + r_t, \qquad r_t \perp d_1, d_2.

The contours under the dot show :math:`L(\theta_0 + \alpha_t d_1 + \beta_t d_2)`, not
:math:`L(\theta_t)`; :math:`\lVert r_t \rVert_2` is the snapshot's distance from the plane.
"""

# %%
# Setup
# -----
# The seed fixes the initial weights and the mini-batch order, so the three optimizers
# start alike. ``say`` prints a sentence whose wording follows the numbers.

# sphinx_gallery_thumbnail_number = 1
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from fashion_optim import experiments, landscape, plotting
from fashion_optim.device import resolve_device
from fashion_optim.plotting import say

profile = experiments.current_profile()
SEED = profile.seeds[0]
torch.manual_seed(SEED)
device = resolve_device("auto")  # CUDA when available, else the CPU
plotting.use_style()
THREE = ("sgd", "momentum", "nesterov")
NAMES = {key: experiments.NAMED[key].name for key in THREE}


print(f"profile {profile.name!r}, seeds {list(profile.seeds)}, device {device}")

# %%
# Snapshot runs
# -------------
# The optimizers of :ref:`chapter 2 <sphx_glr_auto_gallery_plot_02_momentum_nesterov.py>`,
# one learning rate, shorter runs that keep all the weights every few steps
# (:func:`~fashion_optim.experiments.snapshot_specs`), at two seeds: the first for the
# planes, the second for the spread.

snap_specs = experiments.snapshot_specs(THREE)
SNAP_SEEDS = [
    SEED,
    profile.seeds[1],
]  # the plane at the first, the spread over both
snap_runs = experiments.run_specs(snap_specs, seeds=SNAP_SEEDS)
snaps = {key: snap_runs[key].results[0] for key in THREE}  # seed SEED
first = snaps["sgd"]
steps_per_epoch = int(first.meta["steps_per_epoch"])
say(
    f"{first.config.epochs} epochs of {steps_per_epoch} steps (batches of "
    f"{first.config.batch_size}) on {first.meta['train_size']:,} training "
    f"images, a snapshot every {first.config.record.snapshot_every} steps, "
    f"seeds {SNAP_SEEDS}."
)

# %%
# Paths on the CNN's loss surface
# -------------------------------
# :func:`~fashion_optim.experiments.trajectory_surface` fits the plane through the shared
# start that holds most of the snapshot runs' trajectories (a PCA,
# :cite:p:`li2018visualizing`) and the loss on a grid of it, on a sample of the training
# images. Top, the paths (dots: snapshots) over the loss on the plane itself, where
# each run's weights off the plane are dropped. Below, each run's distance from the
# start in all weights and in the plane: the gap is what the plane leaves out.

surf = experiments.trajectory_surface([snaps[key] for key in THREE])
plane, evr = surf.plane, surf.plane.explained_variance_ratio
snap_steps = snaps["sgd"].snapshot_steps
say(
    f"{len(snap_steps)} snapshots of {plane.origin.size:,} weights per run "
    f"over {snaps['sgd'].config.epochs} epochs, seed {SEED}; the plane holds "
    f"{evr[0]:.1%} + {evr[1]:.1%} of the variance ({surf.grid}² grid, "
    f"{surf.images} images)."
)
fig, (ax_plane, ax_dist) = plt.subplots(
    2, 1, figsize=(8.0, 8.5), height_ratios=(1.3, 1)
)
filled = plotting.plane_paths(ax_plane, surf, THREE, labels=NAMES)
LOSS_LABEL = "training loss on the sample (nat)"
fig.colorbar(filled, ax=ax_plane, label=LOSS_LABEL, format="%.2g")
for coords, key in zip(plane.coords, THREE, strict=True):
    full = np.linalg.norm(snaps[key].snapshots - plane.origin, axis=1)
    in_plane, color = np.linalg.norm(coords, axis=1), plotting.color_for(key)
    ax_dist.plot(snap_steps, full, color=color)
    ax_dist.plot(snap_steps, in_plane, "--", color=color)
ax_dist.set(
    ylabel=r"distance from the start $\|\theta_t - \theta_0\|_2$ (weight units)"
)
plotting.label_step_axis(ax_dist, steps_per_epoch)
ax_dist.set_title("solid: all weights; dashed: in the plane")
plotting.legend_below(ax_plane, ncols=5)
plt.show()

# %%
# The same paths step by step, beside each run's training loss (an EWMA of its
# mini-batch losses) and validation loss (after each epoch), up to the snapshot shown.
# Press play, or drag the slider.

plane_anim = plotting.plane_animation(
    surf, [snaps[key] for key in THREE], THREE, labels=NAMES
)
plt.show()
# sphinx_gallery_capture_repr_block = ()
plane_anim  # in a notebook, the player is the cell's value

# %%
# The plane's directions have unit length: its coordinates are distances in weight space.
# Read SGD's short path above with both distances in mind. The runs at the second seed
# (no plane fitted) say how much the ratios of the distances depend on the seed.


def spread(values):
    """The values over seeds in words: one number if they agree to a decimal."""
    low, high = f"{min(values):.1f}", f"{max(values):.1f}"
    return (
        f"{low} times at both seeds"
        if low == high
        else f"between {low} and {high} times"
    )


ends = {k: [r.snapshots[[0, -1]] for r in snap_runs[k].results] for k in THREE}
far = {
    k: np.array([np.linalg.norm(last - start) for start, last in ends[k]])
    for k in THREE
}
say(
    f"After the snapshot runs' {snaps['sgd'].config.epochs} epochs, momentum "
    f"ends {spread(far['momentum'] / far['sgd'])} as far from the start as "
    f"plain SGD (seeds {SNAP_SEEDS}), Nesterov "
    f"{spread(far['nesterov'] / far['sgd'])}. At seed {SEED} the two end "
    f"{np.linalg.norm(ends['momentum'][0][1] - ends['nesterov'][0][1]):.2f} "
    "apart."
)
table = pd.DataFrame(
    far, index=[f"distance at the end, seed {s}" for s in SNAP_SEEDS]
).T
table[f"in the plane, seed {SEED}"] = [
    np.linalg.norm(c[-1]) for c in plane.coords
]
table.rename(index=NAMES).rename_axis("configuration").round(2)

# %%
# What the plane leaves out
# -------------------------
# A contour plot invites reading the loss of a run off the contour under its dot. That
# value is the loss at the snapshot's projection on the plane; the snapshot itself lies
# :math:`\lVert r_t \rVert` away. The surface computation measured both, exactly (not
# interpolated from the grid), at every snapshot and on the same images as the grid
# (:func:`~fashion_optim.landscape.plane_gap`). Top: the loss at each snapshot (solid)
# and the contour value under it (dashed). Below: each snapshot's distance from the plane.

fig, (ax_loss, ax_off) = plt.subplots(2, 1, figsize=(8.0, 7.5))
plotting.plane_gap_panels(
    ax_loss,
    ax_off,
    snap_steps,
    surf.paths,
    THREE,
    labels=NAMES,
    steps_per_epoch=steps_per_epoch,
)
plotting.legend_below(ax_loss, ncols=3)
plt.show()

# %%
# At the last snapshot of each path: the two losses, their ratio, and how much of the
# run's squared distance from the start lies off the plane.

paths = dict(zip(THREE, surf.paths, strict=True))
gap = {}
for key, path in paths.items():
    moved = np.linalg.norm(snaps[key].snapshots[-1] - plane.origin)
    gap[NAMES[key]] = {
        "measured loss (nat)": path["loss"][-1],
        "contour value (nat)": path["projected_loss"][-1],
        "contour / measured": path["projected_loss"][-1] / path["loss"][-1],
        "distance from the plane (weight units)": path["distance"][-1],
        "share of ‖θ − θ₀‖² off the plane": (path["distance"][-1] / moved) ** 2,
    }
gap = pd.DataFrame(gap).T.rename_axis("configuration")
ratios = np.concatenate(
    [p["projected_loss"] / p["loss"] for p in paths.values()]
)
last = gap["contour / measured"]
where = (
    "above"
    if (last > 1).all()
    else "below"
    if (last < 1).all()
    else "on either side of"
)
say(
    f"Over all {ratios.size} snapshots, the contour value under a dot is "
    f"between {ratios.min():.2f} and {ratios.max():.2f} times the loss "
    "measured at the snapshot. At the last snapshots the contours read "
    f"{where} the measured losses."
)
gap.round(3)

# %%
# A random plane through the final weights
# ----------------------------------------
# :cite:t:`li2018visualizing` also look at the loss around a trained network along two
# random directions, each filter of each rescaled to the norm of the weights' own filter
# (:func:`~fashion_optim.landscape.filter_normalized_directions`), biases left out:
#
# .. math:: d_{i,j} \leftarrow \frac{d_{i,j}}{\lVert d_{i,j} \rVert}\, \lVert \theta_{i,j} \rVert.
#
# A step of 1 along such a direction moves every filter by its own norm, whatever the
# layer's scale. :func:`~fashion_optim.experiments.random_plane_surface` evaluates the
# window :math:`[-1, 1]^2` through the momentum run's final weights, on the same images.

rand = experiments.random_plane_surface(snaps["momentum"], seed=0)
fig, ax = plt.subplots(figsize=(7.0, 6.0), layout="constrained")
filled = plotting.random_plane_contours(ax, rand)
fig.colorbar(filled, ax=ax, label=LOSS_LABEL, format="%.2g")
ax.legend(loc="upper right")
ax.set_title(f"{NAMES['momentum']}, final weights, seed {SEED}")
plt.show()

# %%
# The grid's centre is the final weights: its loss is the one measured at the last
# snapshot above (the same images). The directions' length sets the window's scale.

loss, centre = rand.surface["loss"], rand.grid // 2
measured = paths["momentum"]["loss"][-1]
norm = rand.surface["direction_norms"][0]
# sphinx_gallery_start_ignore
np.testing.assert_allclose(
    loss[centre, centre], measured, rtol=1e-6
)  # same weights, images
# sphinx_gallery_end_ignore
say(
    f"At the centre, the loss is {loss[centre, centre]:.3f} nat (measured at "
    f"the last snapshot: {measured:.3f}); over the window it spans "
    f"{loss.min():.3f} to {loss.max():.3f} nat. A unit step along a direction "
    f"is {norm:.1f} weight units, {norm / far['momentum'][0]:.1f} times the "
    "run's distance from its start; the two directions are at "
    f"{np.degrees(np.arccos(rand.cosine)):.1f}° to each other."
)

# %%
# The random-walk caveat
# ----------------------
# :cite:t:`antognini2018pca` show that the PCA of a random walk in many dimensions also
# puts most of its variance on a few components: with equal steps, as the walk grows,
# the :math:`k`-th holds :math:`6/(\pi^2 k^2)` of it, about 61 % and 15 % for the first
# two, and uneven steps move these shares (a few large steps put more of the variance
# on the first component). A plane that holds most of a trajectory's variance is no
# evidence of structure by itself.
# :func:`~fashion_optim.landscape.random_walk_explained_variance` takes random walks with
# each path's own step sizes (the distances between its successive snapshots) in the
# same dimension; several walk seeds give a mean ± std. (The PCA needs only the Gram
# matrix of the steps' directions, drawn without the walk itself.)

WALK_SEEDS, DIM = range(10), plane.origin.size
params = {key: snaps[key].snapshots for key in THREE}
sizes = {
    key: np.linalg.norm(np.diff(p, axis=0), axis=1) for key, p in params.items()
}
walks = {NAMES[key]: ([params[key]], sizes[key]) for key in THREE}
walks["all three (the plane above)"] = (
    list(params.values()),
    list(sizes.values()),
)
rows, spreads, beaten, indep = {}, [], [], {}
for name, (trajs, steps) in walks.items():
    path = landscape.pca_plane(trajs).explained_variance_ratio
    walk = [
        landscape.random_walk_explained_variance(steps, DIM, s)
        for s in WALK_SEEDS
    ]
    walk = np.array(walk)
    indep[name] = walk[:, 0].mean()
    rows[name] = {
        "path PC1": path[0],
        "walk PC1": plotting.mean_std(walk[:, 0], 3),
    }
    rows[name] |= {
        "path PC2": path[1],
        "walk PC2": plotting.mean_std(walk[:, 1], 3),
    }
    rows[name]["PC1: path − walk mean"] = path[0] - walk[:, 0].mean()
    spreads.append(walk.std(axis=0, ddof=1).max())
    beaten.append(bool(path[0] > walk[:, 0].max()))
say(
    f"The walks' ratios vary by at most {max(spreads):.3f} (standard "
    f"deviation) over {len(WALK_SEEDS)} seeds in {DIM:,} dimensions. The first "
    f"component of {sum(beaten)} of the {len(beaten)} trajectories holds more "
    "than that of every walk with its steps."
)
evr_table = pd.DataFrame(rows).T.rename_axis("trajectory")
evr_table.style.format(precision=3)

# %%
# Correlated steps
# ----------------
# The walks above draw independent directions; a run's successive steps between
# snapshots need not be independent.
# :func:`~fashion_optim.landscape.step_autocorrelation` measures the mean cosine between
# snapshot steps one and two apart. Walks whose directions form an AR(1) chain with
# each path's own lag-1 cosine :math:`\rho` (``correlation``) and the same step sizes
# are the baseline for steps as correlated as the run's; such a chain's lag-2 cosine
# is about :math:`\rho^2`, which says how well one number describes the correlation.


def ar_pc1(steps, rho, seed):
    """The first ratio of an AR(1) walk with these steps and correlation."""
    return landscape.random_walk_explained_variance(
        steps, DIM, seed, correlation=rho
    )[0]


lags = {key: landscape.step_autocorrelation(params[key], 2) for key in THREE}
rhos = {NAMES[key]: [lag[0]] for key, lag in lags.items()}
rhos["all three (the plane above)"] = [lag[0] for lag in lags.values()]
above, shift = [], {}
for name, (_, steps) in walks.items():
    ar = [ar_pc1(steps, rhos[name], s) for s in WALK_SEEDS]
    rows[name]["AR(1) walk PC1"] = plotting.mean_std(ar, 3)
    above.append(bool(rows[name]["path PC1"] > max(ar)))
    shift[name] = np.mean(ar) - indep[name]
lag2 = "; ".join(
    f"{NAMES[k]} {lag[0]:.2f}, lag 2 {lag[1]:.2f} (ρ² = {lag[0] ** 2:.2f})"
    for k, lag in lags.items()
)
longer = sum(lag[1] > lag[0] ** 2 for lag in lags.values())
say(
    f"Lag-1 cosines of the steps: {lag2}. For {longer} of the {len(lags)} "
    "paths the lag-2 cosine exceeds ρ²: their steps stay correlated longer "
    "than an AR(1) chain's. "
    f"Against walks with that correlation, the first component of {sum(above)} "
    f"of the {len(above)} trajectories holds more than every walk's. "
    "For all three, each path's part of the walk is its own chain with that "
    "path's ρ. Mean AR(1) walk PC1 minus the independent walks': "
    + ", ".join(f"{n} {d:+.3f}" for n, d in shift.items())
    + "."
)
columns = ["path PC1", "walk PC1", "AR(1) walk PC1"]
ar_table = pd.DataFrame(rows).T[columns].rename_axis("trajectory")
ar_table.style.format(precision=3)

# %%
# Takeaways
# ---------
# - The PCA plane through the shared start holds the share of the trajectories' variance
#   printed above; the weights off it are dropped from the contours, not from the runs.
# - Under each dot the contours give the loss at the snapshot's projection, measured
#   here beside the loss at the snapshot itself: the figure and table say how far the
#   two are apart, and how far each snapshot lies from the plane, in this build.
# - A filter-normalised random plane shows the neighbourhood of the final weights at the
#   scale of the weights themselves; its centre is the measured loss.
# - A random walk's own PCA plane also holds most of its variance: read a trajectory's
#   explained variance beside that of a walk with the same steps, not against zero,
#   and with steps as correlated as the run's (an AR(1) walk with its measured lag-1
#   cosine): the last table and the line above it say how that changes the
#   baseline, trajectory by trajectory.
#
# References
# ----------
# The PCA plane of trajectories and the filter-normalised random directions follow
# :cite:t:`li2018visualizing`; the PCA of random walks, :cite:t:`antognini2018pca`. The
# optimizers are those of :cite:t:`sutskever2013importance`, the data set Fashion-MNIST
# :cite:p:`xiao2017fashion`. See the :doc:`bibliography </references>`.
#
# See also
# --------
# - :ref:`sphx_glr_auto_gallery_plot_02_momentum_nesterov.py`: the optimizers, and their
#   paths on toy surfaces.
# - :func:`fashion_optim.experiments.trajectory_surface`,
#   :func:`fashion_optim.experiments.random_plane_surface`,
#   :func:`fashion_optim.landscape.plane_gap`,
#   :func:`fashion_optim.landscape.random_walk_explained_variance`,
#   :func:`fashion_optim.landscape.step_autocorrelation`,
#   :func:`fashion_optim.plotting.plane_paths`,
#   :func:`fashion_optim.plotting.plane_animation`.
