"""The figure style and helpers: what is drawn, read back from the artists."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from fashion_optim import ewma, plotting

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "sgd_effective"]
SCHEDULES = [
    "constant",
    "step",
    "multistep",
    "exponential",
    "lambda",
    "cosine",
    "onecycle",
    "plateau",
    "cyclic",
    "cosine_warm_restarts",
]


@pytest.fixture(autouse=True)
def _fresh_matplotlib():
    with matplotlib.rc_context():
        yield
    plt.close("all")


@pytest.fixture
def runs():
    rng = np.random.default_rng(0)
    return rng.normal(size=(3, 40)).cumsum(axis=1)


def band_edges(fill, x):
    """Lower and upper edge of a fill_between polygon at each x."""
    vertices = fill.get_paths()[0].vertices
    lower = np.array([vertices[np.isclose(vertices[:, 0], xi), 1].min() for xi in x])
    upper = np.array([vertices[np.isclose(vertices[:, 0], xi), 1].max() for xi in x])
    return lower, upper


def test_band_line_is_the_mean_and_edges_are_mean_pm_std(runs):
    x = np.arange(1, runs.shape[1] + 1) * 0.5
    _, ax = plt.subplots()
    line, fill = plotting.band(ax, x, runs, label="sgd")
    mean, std = runs.mean(axis=0), runs.std(axis=0, ddof=1)
    np.testing.assert_array_equal(line.get_xdata(), x)
    np.testing.assert_allclose(line.get_ydata(), mean, rtol=0, atol=1e-12)
    lower, upper = band_edges(fill, x)
    np.testing.assert_allclose(lower, mean - std, rtol=0, atol=1e-12)
    np.testing.assert_allclose(upper, mean + std, rtol=0, atol=1e-12)
    assert line.get_label() == "sgd"
    assert to_rgba(line.get_color()) == to_rgba(plotting.COLORS["sgd"])
    assert to_rgba(fill.get_facecolor()[0])[:3] == to_rgba(plotting.COLORS["sgd"])[:3]


def test_band_single_run_has_zero_width_and_explicit_colour_wins():
    x = np.arange(5.0)
    _, ax = plt.subplots()
    line, fill = plotting.band(ax, x, x**2, label="adam", color="#123456", linestyle="--")
    lower, upper = band_edges(fill, x)
    np.testing.assert_array_equal(lower, x**2)
    np.testing.assert_array_equal(upper, x**2)
    assert line.get_color() == "#123456"
    assert line.get_linestyle() == "--"


def test_band_rejects_mismatched_shapes(runs):
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"shape \(seeds, T\)"):
        plotting.band(ax, np.arange(runs.shape[1] + 1), runs)
    with pytest.raises(ValueError, match="runs must have shape"):
        plotting.band(ax, np.arange(4), np.zeros((2, 2, 4)))


def test_optimizer_and_schedule_colours_are_stable_and_distinct():
    optimizer_colours = [plotting.color_for(n) for n in OPTIMIZERS]
    schedule_colours = [plotting.color_for(n) for n in SCHEDULES]
    assert len({to_rgba(c) for c in optimizer_colours}) == len(OPTIMIZERS)
    assert len({to_rgba(c) for c in schedule_colours}) == len(SCHEDULES)
    # Pinned: a figure made today has the colours of yesterday's pages.
    assert plotting.color_for("sgd") == "#0072B2"
    assert plotting.color_for("momentum") == "#E69F00"
    assert plotting.color_for("adam") == "#D55E00"
    assert [plotting.color_for(n) for n in OPTIMIZERS] == optimizer_colours


def test_colour_names_are_normalised():
    assert plotting.color_for("SGD") == plotting.color_for("sgd")
    assert plotting.color_for(" Cosine warm-restarts ") == plotting.COLORS["cosine_warm_restarts"]
    with pytest.raises(TypeError, match="name must be a str"):
        plotting.color_for(0.9)


def test_unknown_names_get_a_deterministic_fallback_across_processes():
    names = ["rmsprop", "my config", "beta=0.99"]
    here = [plotting.color_for(n) for n in names]
    assert all(c in plotting.TOL_MUTED for c in here)
    # str hashes are salted per process; the fallback must not depend on them.
    code = f"from fashion_optim import plotting; print([plotting.color_for(n) for n in {names!r}])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345", "MPLBACKEND": "Agg"},
    ).stdout
    assert out.strip() == repr(here)


@pytest.mark.parametrize("how", ["use_style", "style_context"])
def test_figures_are_opaque_white_with_constrained_layout(tmp_path, how):
    if how == "use_style":
        plotting.use_style()
        fig, ax = plt.subplots()
    else:
        with plotting.style_context():
            fig, ax = plt.subplots()
    assert to_rgba(fig.get_facecolor()) == (1.0, 1.0, 1.0, 1.0)
    assert to_rgba(ax.get_facecolor()) == (1.0, 1.0, 1.0, 1.0)
    assert type(fig.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
    ax.plot([0, 1], [0, 1])
    # Saved the way sphinx-gallery saves: the corner pixel must be opaque white.
    with plotting.style_context():
        fig.savefig(tmp_path / "fig.png")
    pixels = plt.imread(tmp_path / "fig.png")
    np.testing.assert_array_equal(pixels[0, 0], [1.0, 1.0, 1.0, 1.0])
    assert pixels.shape[1] == round(fig.get_figwidth() * plotting.STYLE["savefig.dpi"])


def test_style_context_leaves_global_settings_alone():
    before = matplotlib.rcParams["savefig.dpi"]
    with plotting.style_context():
        assert matplotlib.rcParams["savefig.dpi"] == plotting.STYLE["savefig.dpi"]
    assert matplotlib.rcParams["savefig.dpi"] == before


def test_smooth_curve_is_the_bias_corrected_ewma_along_the_last_axis(runs):
    smoothed = plotting.smooth_curve(runs, beta=0.8)
    assert smoothed.shape == runs.shape
    for row, expected in zip(runs, smoothed, strict=True):
        np.testing.assert_allclose(expected, ewma.bias_corrected(row, 0.8), rtol=0, atol=1e-12)
    np.testing.assert_allclose(plotting.smooth_curve(np.full(30, 2.5), 0.99), 2.5, rtol=1e-12)
    with pytest.raises(ValueError, match="beta must be in"):
        plotting.smooth_curve(runs, beta=1.0)


def test_axis_labels():
    _, ax = plt.subplots()
    plotting.label_lr_axis(ax, "y")
    assert ax.get_yscale() == "log"
    assert "learning rate" in ax.get_ylabel()
    top = plotting.label_step_axis(ax, steps_per_epoch=50)
    assert ax.get_xlabel() == "step (mini-batch)"
    assert top.get_xlabel() == "epoch"
    with pytest.raises(ValueError, match="steps_per_epoch"):
        plotting.label_step_axis(ax, steps_per_epoch=0)
    with pytest.raises(ValueError, match="axis must be"):
        plotting.label_lr_axis(ax, "z")


def test_plain_log_ticks_label_1_2_3_5_per_decade():
    _, ax = plt.subplots()
    ax.set_xscale("log")
    plotting.plain_log_ticks(ax, "x")
    labels = {v: ax.xaxis.get_minor_formatter()(v) for v in (0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 3.0)}
    assert labels == {0.2: "0.2", 0.3: "0.3", 0.4: "", 0.5: "0.5", 0.7: "", 1.0: "1", 3.0: "3"}
    assert ax.xaxis.get_major_formatter()(10.0) == "10"
    with pytest.raises(ValueError, match="axis must be"):
        plotting.plain_log_ticks(ax, "z")


def test_toy_paths_draws_each_path_in_its_colour_and_cuts_a_diverging_one():
    from fashion_optim import toys

    surface = toys.SURFACES["quadratic"]
    start = np.array(surface.start)
    inside = start * np.linspace(1.0, 0.0, 11)[:, None]  # straight to the minimum
    away = start * np.array([1.0, 1.1, 40.0, np.inf, np.nan])[:, None]  # leaves at point 2
    _, ax = plt.subplots()
    lines = plotting.toy_paths(
        ax, "quadratic", {"momentum": inside, "sgd_effective": away},
        labels={"momentum": "SGD + momentum"}, styles={"sgd_effective": {"ls": "--"}},
    )  # fmt: skip
    np.testing.assert_array_equal(lines["momentum"].get_xydata(), inside)
    np.testing.assert_array_equal(lines["sgd_effective"].get_xydata(), away[:3])  # one past
    assert to_rgba(lines["momentum"].get_color()) == to_rgba(plotting.COLORS["momentum"])
    assert lines["sgd_effective"].get_linestyle() == "--"
    assert ax.get_legend_handles_labels()[1] == [
        "SGD + momentum",
        "sgd_effective",
        "start",
        "end",
        "minimum",
    ]
    # a hollow end marker only for the path that ends inside the window
    ends = [ln for ln in ax.lines if ln.get_markerfacecolor() == "white" and len(ln.get_xdata())]
    assert len(ends) == 1 and tuple(ends[0].get_xydata()[0]) == (0.0, 0.0)
    assert (ax.get_xlim(), ax.get_ylim()) == (surface.xlim, surface.ylim)


def test_plane_paths_draws_the_plane_coordinates_over_log_contours():
    from matplotlib.colors import LogNorm

    from fashion_optim import experiments, landscape

    rng = np.random.default_rng(0)
    start = rng.normal(size=30)
    runs = [start + np.cumsum(rng.normal(size=(8, 30)), axis=0) for _ in range(2)]
    plane = landscape.pca_plane([np.vstack([start, r]) for r in runs])
    alphas, betas = np.linspace(-5, 5, 7), np.linspace(-4, 4, 5)
    loss = 0.5 + np.add.outer(betas**2, alphas**2)
    surface = {"alphas": alphas, "betas": betas, "loss": loss, "accuracy": 0 * loss}
    traj = experiments.TrajectorySurface(plane, surface, images=10, grid=7, wall_time=0.0)
    _, ax = plt.subplots()
    filled = plotting.plane_paths(ax, traj, ["sgd", "nesterov"], labels={"sgd": "SGD"})
    assert isinstance(filled.norm, LogNorm)
    np.testing.assert_allclose(filled.levels[[0, -1]], [loss.min(), loss.max()])
    paths = [ln for ln in ax.lines if ln.get_label() in ("SGD", "nesterov")]
    for line, coords, key in zip(paths, plane.coords, ["sgd", "nesterov"], strict=True):
        np.testing.assert_array_equal(line.get_xydata(), coords)
        assert to_rgba(line.get_color()) == to_rgba(plotting.COLORS[key])
    assert ax.get_legend_handles_labels()[1] == ["SGD", "nesterov", "start", "end"]
    assert f"{plane.explained_variance_ratio[0]:.0%} of variance" in ax.get_xlabel()
    assert ax.get_aspect() == 1.0
    with pytest.raises(ValueError, match="keys must name each of the 2 runs"):
        plotting.plane_paths(ax, traj, ["sgd"])


def test_random_plane_contours_draws_the_grid_in_weight_units():
    from matplotlib.colors import LogNorm

    from fashion_optim import experiments

    alphas, betas = np.linspace(-1, 1, 5), np.linspace(-1, 1, 7)
    loss = 0.3 + np.add.outer(betas**2, 2 * alphas**2)
    surface = {"alphas": alphas, "betas": betas, "loss": loss, "accuracy": 0 * loss}
    surface["direction_norms"] = np.array([4.0, 3.0])
    result = experiments.RandomPlaneSurface(None, surface, 0, 10, 5, 0.0, 0.01)
    _, ax = plt.subplots()
    filled = plotting.random_plane_contours(ax, result)
    assert isinstance(filled.norm, LogNorm)
    np.testing.assert_allclose(filled.levels[[0, -1]], [loss.min(), loss.max()])
    # The grid's coordinates times each direction's length: weight units, to scale.
    np.testing.assert_allclose(ax.get_xlim(), (-4.0, 4.0))
    np.testing.assert_allclose(ax.get_ylim(), (-3.0, 3.0))
    assert ax.get_aspect() == 1.0
    assert "(weight units)" in ax.get_xlabel() and "(weight units)" in ax.get_ylabel()
    assert ax.get_legend_handles_labels()[1] == ["final weights"]
    surface["direction_norms"] = np.array([4.0, 0.0])
    with pytest.raises(ValueError, match="direction_norms must be two positive lengths"):
        plotting.random_plane_contours(ax, result)


def test_plane_gap_panels_draws_measured_and_projected_loss_and_the_distance():
    steps = np.array([0, 10, 20, 30])
    paths = [
        {"loss": [2.3, 1.0, 0.7, 0.5], "projected_loss": [2.3, 1.2, 0.9, 0.8]},
        {"loss": [2.3, 0.8, 0.5, 0.4], "projected_loss": [2.3, 1.5, 1.1, 1.0]},
    ]
    for i, path in enumerate(paths):
        path["distance"] = np.arange(4.0) * (i + 1)
    _, (top, bottom) = plt.subplots(2, 1)
    keys = ["sgd", "momentum"]
    plotting.plane_gap_panels(
        top, bottom, steps, paths, keys, labels={"sgd": "SGD"}, steps_per_epoch=10
    )
    assert top.get_yscale() == "log"
    assert top.get_legend_handles_labels()[1] == [
        "SGD",
        "momentum",
        "at the snapshot",
        "at its projection (contour)",
    ]
    drawn = [ln for ln in top.lines if len(ln.get_xdata())]
    for path, key in zip(paths, keys, strict=True):
        mine = [ln for ln in drawn if to_rgba(ln.get_color()) == to_rgba(plotting.COLORS[key])]
        solid, dashed = sorted(mine, key=lambda ln: ln.get_linestyle() == "--")
        np.testing.assert_array_equal(solid.get_xydata(), np.column_stack([steps, path["loss"]]))
        np.testing.assert_array_equal(dashed.get_ydata(), path["projected_loss"])
        assert dashed.get_linestyle() == "--"
    for line, path in zip(bottom.lines, paths, strict=True):
        np.testing.assert_array_equal(line.get_ydata(), path["distance"])
    assert "distance from the plane (weight units)" == bottom.get_ylabel()
    assert top.get_xlabel() == bottom.get_xlabel() == "step (mini-batch)"
    with pytest.raises(ValueError, match="keys must name each of the 2 runs"):
        plotting.plane_gap_panels(top, bottom, steps, paths, ["sgd"])
    with pytest.raises(ValueError, match="run 'sgd' has 4 snapshots but steps has 3"):
        plotting.plane_gap_panels(top, bottom, steps[:3], paths, keys)


# --------------------------------------------------------------------------- animations


def _lines_by_label(ax):
    return {line.get_label(): line for line in ax.lines}


def _heads(ax):
    """The hollow circles that mark where each path is, in drawing order."""
    return [ln for ln in ax.lines if ln.get_markerfacecolor() == "white" and ln.get_xydata().size]


def test_frame_indices_spread_at_most_frames_with_both_ends():
    assert plotting.frame_indices(11, 5).tolist() == [0, 2, 5, 8, 10]
    assert plotting.frame_indices(301, 60)[[0, -1]].tolist() == [0, 300]
    assert len(np.unique(plotting.frame_indices(301, 60))) == 60
    assert plotting.frame_indices(3, 60).tolist() == [0, 1, 2]  # never more than the points
    with pytest.raises(ValueError, match="frames must be an integer >= 2"):
        plotting.frame_indices(10, 1)


def test_toy_animation_frame_k_draws_each_path_up_to_its_step():
    from fashion_optim import toys

    quad, rosen = toys.SURFACES["quadratic"], toys.SURFACES["rosenbrock"]
    to_min = np.array(quad.start) * np.linspace(1.0, 0.0, 31)[:, None]  # 30 steps
    wide = to_min * np.array([1.0, -1.0])  # mirrored in y
    away = np.array(quad.start) * np.geomspace(1.0, 1e6, 31)[:, None]  # leaves the window
    valley = np.linspace(rosen.start, rosen.minimum, 11)  # 10 steps: a slower panel
    paths = {"quadratic": {"sgd": to_min, "momentum": wide, "adam": away}}
    paths["rosenbrock"] = {"sgd": valley}
    anim = plotting.toy_animation(
        paths, labels={"sgd": "SGD"}, titles={"quadratic": "bowl"}, frames=16
    )
    assert anim.frames == 16
    np.testing.assert_array_equal(anim.steps["quadratic"], plotting.frame_indices(31, 16))
    assert anim.steps["rosenbrock"][[0, -1]].tolist() == [0, 10]  # the same frames, slower
    ax_q, ax_r = anim.figure.axes[:2]
    left = int(np.argmax(np.abs(away[:, 0]) > 10))  # the first point outside the window
    before = None
    for k in (0, 7, 15):
        anim.show(k)
        step, slow = anim.steps["quadratic"][k], anim.steps["rosenbrock"][k]
        lines = _lines_by_label(ax_q)
        np.testing.assert_array_equal(lines["SGD"].get_xydata(), to_min[: step + 1])
        np.testing.assert_array_equal(lines["momentum"].get_xydata(), wide[: step + 1])
        np.testing.assert_array_equal(lines["adam"].get_xydata(), away[: min(step, left) + 1])
        np.testing.assert_array_equal(_lines_by_label(ax_r)["SGD"].get_xydata(), valley[: slow + 1])
        heads = [tuple(h.get_xydata()[0]) for h in _heads(ax_q)]
        assert heads == [tuple(to_min[step]), tuple(wide[step]), tuple(away[min(step, left)])]
        assert ax_q.get_title() == f"bowl, step {step} of 30"
        assert ax_r.get_title() == f"rosenbrock, step {slow} of 10"
        assert before is None or len(lines["SGD"].get_xydata()) > before  # the trail grows
        before = len(lines["SGD"].get_xydata())
    assert to_rgba(_lines_by_label(ax_q)["momentum"].get_color()) == to_rgba(
        plotting.COLORS["momentum"]
    )
    assert (ax_q.get_xlim(), ax_q.get_ylim()) == (quad.xlim, quad.ylim)
    assert ax_q.get_xlabel() and ax_q.get_ylabel()
    legend = [t.get_text() for t in anim.figure.legends[0].get_texts()]
    assert legend == ["SGD", "momentum", "adam", "start", "position at this step", "minimum"]
    with pytest.raises(IndexError, match=r"frame must be in 0\.\.15, got 16"):
        anim.show(16)


def _player_frames(html):
    import base64
    import re

    frames = re.findall(r'frames\[(\d+)\] = "data:image/webp;base64,([^"]*)"', html)
    assert [int(i) for i, _ in frames] == list(range(len(frames)))
    return [base64.b64decode(data) for _, data in frames]


def test_a_player_shows_each_frame_as_the_figure_draws_it_at_the_animation_dpi():
    import base64
    import io
    import re

    from PIL import Image

    from fashion_optim import toys

    path = np.linspace(toys.SURFACES["quadratic"].start, (0.0, 0.0), 9)
    plt.rcParams["savefig.dpi"] = 300  # the static figures' setting must not apply
    anim = plotting.toy_animation({"quadratic": {"sgd": path}}, frames=5, dpi=20, figsize=(4, 3))
    html = anim._repr_html_()  # what a notebook shows
    assert html == anim.to_jshtml() and 'class="anim-slider"' in html
    frames = _player_frames(html)
    assert len(frames) == anim.frames == 5
    assert len(set(frames)) == 5, "frames repeat: the paths did not move"
    # the still (what no frame changes) is sent once, behind the frames
    (still,) = re.findall(r"url\(data:image/webp;base64,([^)]*)\)", html)

    def rgba(image_bytes):
        with Image.open(io.BytesIO(image_bytes)) as image:
            return image.convert("RGBA")

    still = rgba(base64.b64decode(still))
    assert still.size == (4 * 20, 3 * 20)  # figsize times the animation's dpi
    assert np.asarray(still)[..., 3].min() == 255  # opaque
    palette = plotting.animation.PALETTE
    for k in (0, 4):
        frame = rgba(frames[k])
        assert np.asarray(frame)[..., 3].min() == 0  # only what moves, over the still
        assert frame.getcolors(palette) is not None and still.getcolors(palette) is not None
        seen = np.asarray(Image.alpha_composite(still, frame).convert("RGB"), dtype=float)
        anim.show(k)
        whole = io.BytesIO()
        anim.figure.savefig(whole, format="png", dpi=20)
        drawn = np.asarray(rgba(whole.getvalue()).convert("RGB"), dtype=float)
        assert (np.abs(seen - drawn).max(axis=-1) > 25).mean() < 0.01
    assert not anim.figure.images and anim.figure.legends[0].get_visible()  # as it was


def test_plane_animation_moves_paths_and_loss_curves_to_each_snapshot_step():
    from types import SimpleNamespace

    from fashion_optim import experiments, landscape

    rng = np.random.default_rng(1)
    start, per_epoch, every = rng.normal(size=30), 20, 10
    trajs = [np.vstack([start, start + np.cumsum(rng.normal(size=(6, 30)), 0)]) for _ in range(2)]
    plane = landscape.pca_plane(trajs)
    alphas, betas = np.linspace(-9, 9, 7), np.linspace(-8, 8, 5)
    loss = 0.5 + np.add.outer(betas**2, alphas**2)
    surface = {"alphas": alphas, "betas": betas, "loss": loss, "accuracy": 0 * loss}
    traj = experiments.TrajectorySurface(plane, surface, images=10, grid=7, wall_time=0.0)

    def run(scale):
        val_loss = scale * np.array([0.9, 0.7, 0.6])
        history = SimpleNamespace(batch_loss=scale * np.geomspace(2.3, 0.4, 60), val_loss=val_loss)
        records = {"param_steps": np.arange(0, 61, every)}
        return SimpleNamespace(
            history=history, records=records, meta={"steps_per_epoch": per_epoch}
        )

    runs = [run(1.0), run(1.2)]
    anim = plotting.plane_animation(traj, runs, ["sgd", "adam"], labels={"sgd": "SGD"}, frames=4)
    assert anim.frames == 4
    np.testing.assert_array_equal(anim.steps["plane"], [0, 20, 40, 60])  # snapshots 0, 2, 4, 6
    ax_plane, ax_loss = anim.figure.axes[:2]
    for k, (snap, step) in enumerate(zip([0, 2, 4, 6], [0, 20, 40, 60], strict=True)):
        anim.show(k)
        trails = [ln for ln in ax_plane.lines if ln.get_label() in ("SGD", "adam")]
        for trail, coords in zip(trails, plane.coords, strict=True):
            np.testing.assert_array_equal(trail.get_xydata(), coords[: snap + 1])
        heads = [h.get_xydata()[0] for h in _heads(ax_plane)]
        np.testing.assert_array_equal(heads, [c[snap] for c in plane.coords])
        for r, key in zip(runs, ("sgd", "adam"), strict=True):
            train, val = [ln for ln in ax_loss.lines if ln.get_color() == plotting.color_for(key)]
            np.testing.assert_array_equal(train.get_xdata(), np.arange(1, step + 1))
            np.testing.assert_allclose(
                train.get_ydata(), plotting.smooth_curve(r.history.batch_loss, 0.95)[:step]
            )
            np.testing.assert_array_equal(val.get_xdata(), [20, 40, 60][: step // per_epoch])
            np.testing.assert_array_equal(val.get_ydata(), r.history.val_loss[: step // per_epoch])
        assert ax_loss.get_title() == f"step {step} of 60"
    assert ax_loss.get_yscale() == "log" and ax_loss.get_xlim() == (0, 60)
    assert "of variance" in ax_plane.get_xlabel() and ax_loss.get_ylabel() == "loss (nat)"
    assert ax_loss.get_xlabel() == "step (mini-batch)"
    runs[1].records["param_steps"] = runs[1].records["param_steps"] + 1
    with pytest.raises(ValueError, match="snapshots at the same steps"):
        plotting.plane_animation(traj, runs, ["sgd", "adam"])
    with pytest.raises(ValueError, match="keys must name each of the 2 runs"):
        plotting.plane_animation(traj, runs, ["sgd"])


# --------------------------------------------------------------------------- learning rates


def test_rate_drops_counts_each_decrease_of_the_recorded_rate():
    assert plotting.rate_drops([0.01, 0.01, 0.001, 0.001, 1e-4]) == 2
    assert plotting.rate_drops([0.01] * 5) == 0
    assert plotting.rate_drops([0.1, 0.2, 0.1]) == 1  # a rise is not a drop
    assert plotting.rate_drops([0.1]) == 0


def synthetic_range_test():
    """A ramp whose loss falls, spikes once, then blows up for good at index 40."""
    from fashion_optim.lr_finder import RangeTestResult

    lrs = np.geomspace(1e-5, 1.0, 50)
    losses = np.linspace(2.3, 0.5, 50)
    losses[30] = 2.6  # a lone spike above the start: not the blow-up
    losses[40:] = 3.5 + np.arange(10)  # above the start, and above the clipping line
    smoothed = np.convolve(losses, np.ones(3) / 3, mode="same")
    smoothed[0] = 2.3
    return RangeTestResult(lrs, losses, smoothed, 1e-3, 1e-4, 0.05, True, 49, "exp")


def test_range_test_blow_up_skips_a_lone_spike():
    res = synthetic_range_test()
    assert plotting.range_test_blow_up(res, run=5) == 40
    assert plotting.range_test_blow_up(res, run=1) == 40  # the spike is before the lowest
    res.losses[40:] = 0.4  # never above the start again
    assert plotting.range_test_blow_up(res) is None
    with pytest.raises(ValueError, match="run must be"):
        plotting.range_test_blow_up(res, run=0)


def test_range_test_panel_draws_what_the_result_says():
    res = synthetic_range_test()
    _, ax = plt.subplots()
    drawn = plotting.range_test_panel(ax, res, color="#E69F00", default_lr=0.01, clip=1.3)
    top = 1.3 * res.smoothed[0]
    np.testing.assert_array_equal(drawn["smoothed"].get_xdata(), res.lrs)
    np.testing.assert_array_equal(drawn["smoothed"].get_ydata(), res.smoothed)
    assert to_rgba(drawn["smoothed"].get_color()) == to_rgba("#E69F00")
    # raw losses above the clipping line are cut there and drawn as triangles on it
    np.testing.assert_allclose(drawn["raw"].get_ydata(), np.minimum(res.losses, top))
    np.testing.assert_array_equal(drawn["clipped"].get_xdata(), res.lrs[res.losses > top])
    np.testing.assert_allclose(drawn["clipped"].get_ydata(), top)
    assert drawn["suggestion"].get_xdata()[0] == 1e-3
    assert drawn["default"].get_xdata()[0] == 0.01
    span = drawn["range"].get_extents().transformed(ax.transData.inverted())
    np.testing.assert_allclose([span.x0, span.x1], [1e-4, 0.05], rtol=1e-6)
    assert drawn["blow_up"].get_xdata().tolist() == [res.lrs[40]]
    assert ax.get_xscale() == "log" and "nat" in ax.get_ylabel()
    assert ax.get_ylim()[1] > top
    labels = ax.get_legend_handles_labels()[1]
    assert {"raw loss", "smoothed loss", "useful range", "suggestion"} <= set(labels)


def test_range_test_panel_without_blow_up_or_clipping_keeps_its_legend():
    res = synthetic_range_test()
    res.losses[30] = 1.4
    res.losses[40:] = 0.45
    fig, (_, ax) = plt.subplots(1, 2, layout="constrained")  # a panel away from the origin
    drawn = plotting.range_test_panel(ax, res)
    assert len(drawn["blow_up"].get_xdata()) == 0 and len(drawn["clipped"].get_xdata()) == 0
    fig.canvas.draw()  # the empty marker must not collapse a constrained layout
    assert ax.get_position().width > 0.3
    assert "default" not in drawn
    labels = ax.get_legend_handles_labels()[1]
    assert "raw, clipped" in labels and "blow-up" in labels
    with pytest.raises(ValueError, match="clip must be"):
        plotting.range_test_panel(ax, res, clip=1.0)


def test_range_test_seeds_draws_one_curve_suggestion_and_blow_up_per_seed():
    res = synthetic_range_test()
    calm = synthetic_range_test()
    calm.losses[30] = 1.4
    calm.losses[40:] = 0.45  # this seed never blows up
    _, ax = plt.subplots()
    drawn = plotting.range_test_seeds(ax, [res, calm], seeds=[3, 7], color="#E69F00", clip=1.3)
    assert [line.get_label() for line in drawn["smoothed"]] == [
        "seed 3, smoothed",
        "seed 7, smoothed",
    ]
    assert drawn["smoothed"][0].get_linestyle() != drawn["smoothed"][1].get_linestyle()
    for line, r in zip(drawn["smoothed"], [res, calm], strict=True):
        np.testing.assert_array_equal(line.get_ydata(), r.smoothed)
        assert to_rgba(line.get_color()) == to_rgba("#E69F00")
    # each suggestion sits on its own smoothed curve
    dot = drawn["suggestion"][0]
    assert dot.get_xdata()[0] == 1e-3
    expected = np.interp(np.log(1e-3), np.log(res.lrs), res.smoothed)
    np.testing.assert_allclose(dot.get_ydata()[0], expected)
    assert drawn["blow_up"][0].get_xdata().tolist() == [res.lrs[40]]
    assert len(drawn["blow_up"][1].get_xdata()) == 0
    top = 1.3 * max(res.smoothed[0], calm.smoothed[0])
    np.testing.assert_allclose(drawn["raw"][0].get_ydata(), np.minimum(res.losses, top))
    assert ax.get_xscale() == "log" and "nat" in ax.get_ylabel()
    with pytest.raises(ValueError, match="seeds must name each"):
        plotting.range_test_seeds(ax, [res, calm], seeds=[0])
    with pytest.raises(ValueError, match="at least one"):
        plotting.range_test_seeds(ax, [])


# --------------------------------------------------------------------------- the sweep


def _sweep_of(curves: dict[str, dict[float, tuple[list[float], int]]]):
    from fashion_optim import experiments as ex
    from fashion_optim.experiments import Result
    from fashion_optim.training import History, TrainingDivergedError

    points = {}
    for key, rates in curves.items():
        points[key] = {}
        for lr, (accs, diverged) in rates.items():
            spec = ex.NAMED[key].replace(lr=lr)
            cfg = spec.resolve("quick")
            finished = [
                Result(
                    cfg, s, History.from_dict({"val_acc": [a], "val_loss": [1 - a]}), 0, 0, {}, {}
                )
                for s, a in enumerate(accs)
            ]
            bad = [(s, TrainingDivergedError(1, 1, float("nan"), lr)) for s in range(diverged)]
            points[key][lr] = ex.SeedOutcomes(spec, finished, bad)
    return ex.Sweep(points, (0, 1))


def test_sweep_curves_draw_bands_divergences_and_the_choice():
    sweep = _sweep_of(
        {
            "sgd": {0.01: ([0.5, 0.7], 0), 0.1: ([0.8, 0.8], 0), 1.0: ([0.9], 1)},
            "momentum": {0.001: ([0.6, 0.6], 0), 0.01: ([0.85, 0.83], 0)},
        }
    )
    fig, ax = plt.subplots()
    chosen = plotting.sweep_curves(ax, sweep, ["sgd", "momentum"], labels={"sgd": "SGD"})
    assert chosen == {"sgd": 0.1, "momentum": 0.01}  # 1.0 had a diverged seed
    means = [line for line in ax.lines if line.get_label() in ("SGD", "momentum")]
    np.testing.assert_allclose(means[0].get_ydata(), [0.6, 0.8, 0.9])
    crosses = [line for line in ax.lines if line.get_marker() == "x"]
    assert [line.get_xdata()[0] for line in crosses] == [1.0]
    assert ax.get_xscale() == "log" and "validation accuracy" in ax.get_ylabel()
    plt.close(fig)
    fig, ax = plt.subplots()
    chosen = plotting.sweep_curves(ax, sweep, ["momentum"], effective=True)
    assert chosen == {"momentum": pytest.approx(0.1)}  # 0.01 / (1 - 0.9)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0.01, 0.1])
    assert "η / (1 − μ)" in ax.get_xlabel()
    plt.close(fig)


def test_range_test_with_sweep_marks_the_choice_on_both_axes():
    res = synthetic_range_test()
    sweep = _sweep_of({"adam": {1e-4: ([0.3, 0.4], 0), 1e-3: ([0.8, 0.7], 0), 1e-2: ([], 2)}})
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, layout="constrained")
    drawn = plotting.range_test_with_sweep(top, bottom, [res, res], sweep, "adam", seeds=[0, 1])
    assert drawn["chosen_lr"] == 1e-3
    assert [line.get_xdata()[0] for line in drawn["chosen"]] == [1e-3, 1e-3]
    labels = top.get_legend_handles_labels()[1] + bottom.get_legend_handles_labels()[1]
    assert labels.count("sweep's choice") == 1
    assert "sweep, mean ± std over 2 seeds" in labels
    # the range tests in the optimizer's colour, the sweep's divergence marked at 1e-2
    smoothed = drawn["test"]["smoothed"][0]
    assert to_rgba(smoothed.get_color()) == to_rgba(plotting.color_for("adam"))
    crosses = [line for line in bottom.lines if line.get_marker() == "x"]
    assert [line.get_xdata()[0] for line in crosses] == [1e-2]
    assert bottom.get_ylim() == (0, 1.05) and "validation accuracy" in bottom.get_ylabel()
    assert top.get_xlim() == pytest.approx((1e-5, 1.0))  # the ramp holds the whole grid
    fig.canvas.draw()
    with pytest.raises(ValueError, match="the sweep has no 'sgd'"):
        plotting.range_test_with_sweep(top, bottom, [res], sweep, "sgd")


# --------------------------------------------------------------------------- schedules


def test_a_schedule_variant_is_dashed_in_the_colour_of_the_schedule_it_varies():
    from fashion_optim.plotting.schedules import VARIANT_LINES

    for variant, schedule in plotting.VARIANTS.items():
        assert plotting.schedule_style(variant) == {
            "color": plotting.color_for(schedule),
            "linestyle": VARIANT_LINES[variant],
        }
        assert VARIANT_LINES[variant] != "-"
        assert plotting.schedule_style(schedule)["linestyle"] == "-"
    # the variants of one schedule differ in their line
    onecycle = [VARIANT_LINES[v] for v, s in plotting.VARIANTS.items() if s == "onecycle"]
    assert len(set(onecycle)) == len(onecycle)
    assert plotting.schedule_style("cosine")["color"] == plotting.color_for("cosine")


class _FakeSeedResults:
    """What schedule_ranking reads of a SeedResults: final values per seed, the test
    accuracy, the spec's name."""

    def __init__(self, name, val_acc, test_acc):
        self.spec = type("Spec", (), {"name": name})()
        self._val, self._test = np.asarray(val_acc), np.asarray(test_acc)

    def final(self, metric):
        assert metric == "val_acc"
        return float(self._val.mean()), float(self._val.std(ddof=1))

    @property
    def test_acc(self):
        return float(self._test.mean()), float(self._test.std(ddof=1))


def test_schedule_ranking_draws_the_given_order_top_down_with_mean_and_std():
    runs = {
        "constant": _FakeSeedResults("constant rate", [0.80, 0.82], [0.70, 0.72]),
        "cosine": _FakeSeedResults("CosineAnnealingLR", [0.85, 0.87], [0.60, 0.64]),
        "onecycle_flat": _FakeSeedResults("OneCycleLR, flat", [0.70, 0.74], [0.90, 0.90]),
    }
    order = ["cosine", "constant", "onecycle_flat"]  # the caller's order, best first
    _, ax = plt.subplots()
    drawn = plotting.schedule_ranking(ax, runs, order, labels={"constant": "constant"})
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["OneCycleLR, flat", "constant", "CosineAnnealingLR"]  # bottom up
    dot = drawn["cosine"].lines[0]
    assert dot.get_ydata()[0] == 2 and dot.get_xdata()[0] == pytest.approx(0.86)
    bar = drawn["cosine"].lines[2][0].get_segments()[0]
    np.testing.assert_allclose(bar[:, 0], 0.86 + np.array([-1, 1]) * np.std([0.85, 0.87], ddof=1))
    assert drawn["reference"].get_xdata()[0] == pytest.approx(0.81)
    assert to_rgba(dot.get_color()) == to_rgba(plotting.color_for("cosine"))
    hollow = drawn["onecycle_flat"].lines[0]
    assert hollow.get_markerfacecolor() == "white"
    assert to_rgba(hollow.get_color()) == to_rgba(plotting.color_for("onecycle"))
    assert "validation accuracy" in ax.get_xlabel()
    # the test metric is drawn when asked (a report), in the same given order
    _, ax = plt.subplots()
    drawn = plotting.schedule_ranking(ax, runs, order, "test_acc", reference=None)
    assert drawn["cosine"].lines[0].get_xdata()[0] == pytest.approx(0.62)
    assert "reference" not in drawn and "test accuracy" in ax.get_xlabel()
    with pytest.raises(ValueError, match="lacks: \\['step'\\]"):
        plotting.schedule_ranking(ax, runs, ["step"], reference=None)


# --------------------------------------------------------------------------- headline table


def fake_outcomes(spec, finished, diverged=0):
    """SeedOutcomes of ``spec`` whose seeds finished with the (val_acc, test_acc) pairs of
    ``finished``, and ``diverged`` more seeds that diverged."""
    from types import SimpleNamespace

    from fashion_optim.experiments import SeedOutcomes
    from fashion_optim.training import TrainingDivergedError

    runs = [
        SimpleNamespace(seed=s, test_acc=t, test_loss=0.5, history=SimpleNamespace(val_acc=[0, v]))
        for s, (v, t) in enumerate(finished)
    ]
    gone = [
        (len(finished) + s, TrainingDivergedError(1, 5, float("nan"), 3.0)) for s in range(diverged)
    ]
    return SeedOutcomes(spec, runs, gone)


def test_tuning_table_puts_default_and_tuned_side_by_side_in_the_given_order():
    from fashion_optim.experiments import NAMED, full_budget_onecycle

    sgd, adam = NAMED["sgd"], NAMED["adam"]
    tuned = {
        "adam": fake_outcomes(adam.replace(lr=0.01), [(0.86, 0.85), (0.88, 0.87)]),
        "sgd": fake_outcomes(sgd.replace(lr=0.3162), [(0.80, 0.79)], diverged=1),
        "onecycle": fake_outcomes(full_budget_onecycle(0.1), [(0.9, 0.9), (0.9, 0.9)]),
    }
    default = {
        "sgd": fake_outcomes(sgd, [(0.70, 0.71), (0.72, 0.73)]),
        "adam": fake_outcomes(adam, [(0.84, 0.83), (0.84, 0.83)]),
    }
    table = plotting.tuning_table(tuned, default, labels={"onecycle": "one cycle"})
    assert list(table.index) == ["Adam", "SGD", "one cycle"]  # tuned's order, not default's
    assert table.loc["SGD", ("default rate", "lr")] == "0.01"
    assert table.loc["SGD", ("default rate", "test accuracy")] == "0.7200 ± 0.0141"
    assert table.loc["SGD", ("tuned on validation", "lr")] == "0.3162"
    assert table.loc["Adam", ("tuned on validation", "validation accuracy")] == "0.8700 ± 0.0141"
    assert table.loc["SGD", ("tuned on validation", "test accuracy")] == (
        "0.7900 ± 0.0000 (1 of 2 seeds diverged)"
    )
    # no default run: the default cells are marked missing; OneCycleLR shows its peak
    assert table.loc["one cycle", ("default rate", "lr")] == "—"
    assert table.loc["one cycle", ("tuned on validation", "lr")] == "peak 0.1"


def test_tuning_table_says_when_every_seed_of_a_tuned_run_diverged():
    from fashion_optim.experiments import NAMED

    tuned = {"sgd": fake_outcomes(NAMED["sgd"].replace(lr=3.162), [], diverged=3)}
    row = plotting.tuning_table(tuned).loc["SGD"]
    assert row[("tuned on validation", "test accuracy")] == "diverged (3 of 3 seeds)"
    assert row[("tuned on validation", "validation accuracy")] == "—"


# --------------------------------------------------------------------------- theory


def test_rate_curves_draw_each_methods_rate_in_its_colour_with_its_lowest_point():
    from fashion_optim import theory

    curv, lrs = (1.0, 20.0), np.geomspace(1e-3, 0.3, 200)
    _, ax = plt.subplots()
    lines = plotting.rate_curves(ax, curv, lrs, {"heavy_ball": 0.4, "nesterov": 0.6})
    for method, mu in (("gd", 0.0), ("heavy_ball", 0.4), ("nesterov", 0.6)):
        expected = theory.rate(method, curv, lrs, mu)
        np.testing.assert_array_equal(lines[method].get_ydata(), expected)
        color = to_rgba(plotting.COLORS[plotting.METHOD_KEYS[method]])
        assert to_rgba(lines[method].get_color()) == color
        lowest = [
            ln for ln in ax.lines
            if ln.get_marker() == "o" and to_rgba(ln.get_markeredgecolor()) == color
        ]  # fmt: skip
        assert lowest[0].get_xydata().tolist() == [[lrs[expected.argmin()], expected.min()]]
    assert [ln.get_label() for ln in lines.values()] == [
        "gradient descent",
        "heavy ball",
        "Nesterov",
    ]
    assert ax.get_xscale() == "log" and "learning rate" in ax.get_xlabel()
    assert any(tuple(ln.get_ydata()) == (1.0, 1.0) for ln in ax.lines)  # the line at rho = 1
    _, ax = plt.subplots()
    same = plotting.rate_curves(ax, curv, lrs, 0.4, methods=["heavy_ball"])
    np.testing.assert_array_equal(same["heavy_ball"].get_ydata(), lines["heavy_ball"].get_ydata())


def test_rate_map_colours_the_converging_rates_and_hatches_the_regions():
    from matplotlib.contour import ContourSet

    from fashion_optim import theory

    curv, lrs, momenta = (1.0, 20.0), np.geomspace(1e-3, 1.0, 120), np.linspace(0, 0.99, 100)
    _, ax = plt.subplots()
    mesh = plotting.rate_map(ax, "heavy_ball", curv, lrs, momenta)
    rates = theory.rate("heavy_ball", curv, lrs[None, :], momenta[:, None])
    shown = mesh.get_array().reshape(rates.shape)
    np.testing.assert_array_equal(np.ma.getmaskarray(shown), rates >= 1)  # divergent: grey
    np.testing.assert_allclose(shown.compressed(), rates[rates < 1])
    assert mesh.norm.vmax == 1.0 and mesh.norm.vmin == pytest.approx(rates.min())
    filled = {tuple(c.hatches): c for c in ax.collections if isinstance(c, ContourSet) and c.filled}
    oscillating, divergent = filled[("///",)], filled[("xx",)]
    # the hatched regions hold the points theory.regions puts there, and not the others
    for eta, mu in ((0.01, 0.9), (0.005, 0.05), (0.5, 0.5)):
        kind = theory.regions("heavy_ball", curv, eta, mu)
        for region, cs in (("oscillating", oscillating), ("divergent", divergent)):
            inside = any(p.contains_point((eta, mu)) for p in cs.get_paths())
            assert inside == (kind == region), (eta, mu, kind)
    best = theory.optimum("heavy_ball", curv)
    stars = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert stars[0].get_xydata().tolist() == [[best.lr, best.momentum]]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["monotone", "oscillating", "divergent", "optimum"]
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0.0, 0.99)
    with pytest.raises(ValueError, match="for 'gd'"):
        plotting.rate_map(ax, "gd", curv, lrs, momenta)


# --------------------------------------------------------------------------- Adam's layer spread

ADAM_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


def adam_records(steps=(1, 3, 5, 7), layers=("conv.weight", "fc.weight")):
    """Quantile records as AdamQuantileRecorder writes them, made-up and increasing."""
    rng = np.random.default_rng(1)
    out = {"adam_q/steps": np.asarray(steps), "adam_q/levels": np.asarray(ADAM_LEVELS)}
    for layer in layers:
        for kind in ("adapted", "rate"):
            out[f"adam_q/{kind}/{layer}"] = np.sort(rng.lognormal(size=(len(steps), 5)), axis=1)
    return out


def test_quantile_bands_draw_the_median_and_the_inner_band_over_the_outer_one():
    x = np.array([1.0, 2.0, 4.0])
    q = np.sort(np.random.default_rng(0).lognormal(size=(3, 5)), axis=1)
    _, ax = plt.subplots()
    line, (outer, inner) = plotting.quantile_bands(ax, x, q, ADAM_LEVELS, label="conv")
    np.testing.assert_array_equal(line.get_ydata(), q[:, 2])
    assert line.get_label() == "conv"
    for fill, (lo, hi) in ((outer, (0, 4)), (inner, (1, 3))):
        np.testing.assert_allclose(band_edges(fill, x), (q[:, lo], q[:, hi]))
        assert to_rgba(fill.get_facecolor()[0])[:3] == to_rgba(plotting.COLORS["adam"])[:3]
    assert ax.collections.index(outer) < ax.collections.index(inner)  # inner drawn on top
    line, bands = plotting.quantile_bands(ax, x, q[:, [0, 4]], (0.05, 0.95))
    assert line is None and len(bands) == 1


@pytest.mark.parametrize(
    ("levels", "shape", "message"),
    [
        ((0.05, 0.25, 0.5, 0.75, 0.9), (3, 5), "symmetric about a median"),
        ((0.1, 0.4, 0.9), (3, 3), "symmetric about a median"),
        (ADAM_LEVELS, (3, 4), r"shape \(len\(x\), len\(levels\)\) = \(3, 5\)"),
    ],
)
def test_quantile_bands_refuse_asymmetric_levels_and_wrong_shapes(levels, shape, message):
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=message):
        plotting.quantile_bands(ax, np.arange(3), np.ones(shape), levels)


def adam_result(records):
    """A run whose records are ``records``, read through its typed accessors."""
    from fashion_optim.experiments import Result

    return Result(None, 0, None, 0.0, 0.0, records, {})


def test_adam_layer_quantiles_draws_a_row_per_layer_on_log_axes_with_units():
    rec = adam_records()
    _, axes = plt.subplots(2, 2, sharex=True, sharey="col")
    steps = np.arange(1, 8)
    weight = ("fc.weight", steps, -np.linspace(0.1, 1, 7), np.linspace(1, 2, 7))
    out = plotting.adam_layer_quantiles(
        axes, adam_result(rec), ["conv.weight", "fc.weight"], names={"conv.weight": "conv1"},
        steps_per_epoch=4, weight=weight,
    )  # fmt: skip
    for (layer, kind), (line, _) in out["bands"].items():
        row, col = ["conv.weight", "fc.weight"].index(layer), ["adapted", "rate"].index(kind)
        assert line.axes is axes[row, col]
        np.testing.assert_array_equal(line.get_xdata(), rec["adam_q/steps"])
        np.testing.assert_array_equal(line.get_ydata(), rec[f"adam_q/{kind}/{layer}"][:, 2])
    assert all(ax.get_yscale() == "log" for ax in axes.flat)
    assert [ax.get_ylabel() for ax in axes[0]] == ["adapted step (no unit)", "rate ($w^2$ per nat)"]
    assert [ax.get_xlabel() for ax in axes[1]] == ["step (mini-batch)"] * 2
    assert [ax.get_xlabel() for ax in axes[0]] == ["", ""]
    assert "Adapted step" in axes[0, 0].get_title() and "Effective rate" in axes[0, 1].get_title()
    assert [t.get_text() for t in axes[0, 1].texts] == ["conv1"]  # readable name, or the key
    assert [t.get_text() for t in axes[1, 1].texts] == ["fc.weight"]
    assert not axes[0, 0].texts and axes[0, 1].texts[0].get_position()[0] > 1  # right of it
    # the weight's own values in its layer's row only, as absolute values
    adapted, rate = out["weight"]
    assert adapted.axes is axes[1, 0] and rate.axes is axes[1, 1]
    np.testing.assert_allclose(adapted.get_ydata(), np.linspace(0.1, 1, 7))
    assert not axes[0, 0].lines[1:]
    assert len(axes[0, 0].child_axes) == 1 and not axes[1, 0].child_axes  # epochs on top


def test_adam_layer_quantiles_says_how_to_record_what_is_missing():
    result = adam_result(adam_records(layers=("conv.weight",)))
    _, axes = plt.subplots(2, 2)
    with pytest.raises(KeyError, match=r"adam_q/adapted/fc.weight.*Record \(layer_quantiles="):
        plotting.adam_layer_quantiles(axes, result, ["conv.weight", "fc.weight"])
    assert not any(ax.lines or ax.collections for ax in axes.flat)  # nothing drawn first
    with pytest.raises(ValueError, match="1 rows"):
        plotting.adam_layer_quantiles(axes, result, ["conv.weight"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, (None, 0.05)),
        (1.0, (0.05, 0.25)),
        (3.5, (0.5, 0.75)),
        (5.0, (0.95, None)),
        (9, (0.95, None)),
    ],
)
def test_quantile_position_names_the_two_levels_around_a_value(value, expected):
    assert plotting.quantile_position(value, ADAM_LEVELS, (1, 2, 3, 4, 5)) == expected


def test_quantile_position_refuses_a_nan_or_mismatched_quantiles():
    with pytest.raises(ValueError, match="finite value"):
        plotting.quantile_position(float("nan"), ADAM_LEVELS, (1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="one quantile per level"):
        plotting.quantile_position(1.0, ADAM_LEVELS, (1, 2))


def test_position_words_say_between_below_or_above():
    words = [plotting.position_words(*plotting.quantile_position(v, ADAM_LEVELS, (1, 2, 3, 4, 5)))
             for v in (0.5, 2.5, 7.0)]  # fmt: skip
    assert words == [
        "below the 5% quantile",
        "between the 25% and the 50% quantiles",
        "above the 95% quantile",
    ]
    with pytest.raises(ValueError, match="at least one level"):
        plotting.position_words(None, None)


# --------------------------------------------------------------------------- chapters 4 and 5


def seed_results(name, histories, *, test_acc=None, predictions=None):
    """Real SeedResults of ``NAMED["momentum"]`` renamed ``name``: one Result per seed of
    ``histories`` ({seed: {field: values}}), with a test accuracy and predictions."""
    from fashion_optim import experiments as ex
    from fashion_optim.experiments import Result
    from fashion_optim.training import History

    spec = ex.NAMED["momentum"].replace(name=name)
    cfg = spec.resolve("quick")
    results = [
        Result(
            cfg, seed, History.from_dict(fields), 0.5, (test_acc or {}).get(seed, 0.8), {}, {},
            (predictions or {}).get(seed, np.zeros(0, np.uint8)),
        )
        for seed, fields in histories.items()
    ]  # fmt: skip
    return ex.SeedResults(spec, results)


def test_log_median_is_the_middle_on_a_log_scale():
    assert plotting.log_median([1e-4, 1e-2, 1.0]) == pytest.approx(1e-2)
    assert plotting.log_median([1.0, 1e-4, 1e-2]) == pytest.approx(1e-2)  # order-free
    assert plotting.log_median([1e-3, 1e-1]) == pytest.approx(1e-2)  # geometric mean
    assert plotting.log_median([0.3]) == pytest.approx(0.3)


def test_range_test_table_gives_each_seeds_range_suggestion_and_blow_up():
    res, calm = synthetic_range_test(), synthetic_range_test()
    calm.losses[30] = 1.4
    calm.losses[40:] = 0.45  # never blows up
    table = plotting.range_test_table({"adam": [res, calm]}, [3, 7], {"adam": "Adam"})
    assert table.index.names == ["optimizer", "seed"]
    assert table.loc[("Adam", 3)].tolist() == [50, "0.0001", "0.001", "0.05", f"{res.lrs[40]:.2g}"]
    assert table.loc[("Adam", 7), "blow-up"] == "none"


def test_range_test_lag_table_reads_the_lag_and_the_raw_loss_at_lr_max():
    tests = [synthetic_range_test() for _ in range(3)]  # lr_max 0.05, blow-up at 40
    i = int(np.argmin(np.abs(np.log(tests[0].lrs / tests[0].lr_max))))
    for res, rise in zip(tests, (1.0, 1.1, 1.5), strict=True):
        res.losses[i] = rise * res.losses[:i].min()  # the raw loss at lr_max over its low
    table = plotting.range_test_lag_table(
        {"sgd": tests}, [0, 1, 2], {"sgd": "SGD"}, ramps={"sgd": (1e-5, 1.0)},
        num_iter=50, age=19.0,
    )  # fmt: skip
    assert table["lag (x lr)"].tolist() == [f"{1e5 ** (19 / 49):.1f}"] * 3  # closed form
    assert table["raw at lr_max / its low"].tolist() == ["1.00", "1.10", "1.50"]
    assert table["reading"].tolist() == [
        "at its low: no visible lag",
        "slightly above its low",
        "climbing: the smoothed minimum lags",
    ]
    import dataclasses

    past = dataclasses.replace(tests[0], lr_max=float(tests[0].lrs[45]))  # beyond index 40
    table = plotting.range_test_lag_table(
        {"sgd": [past]}, [0], {"sgd": "SGD"}, ramps={"sgd": (1e-5, 1.0)}, num_iter=50, age=19
    )
    assert table.loc[("SGD", 0), "reading"] == "past the blow-up: read the raw curve"


def test_range_tests_against_sweep_draws_a_column_per_optimizer_with_one_legend():
    res = synthetic_range_test()
    sweep = _sweep_of(
        {
            "momentum": {1e-3: ([0.5, 0.6], 0), 1e-2: ([0.8, 0.8], 0)},
            "adam": {1e-4: ([0.3, 0.4], 0), 1e-3: ([0.8, 0.7], 0)},
        }
    )
    tests = {"momentum": [res, res], "adam": [res, res]}
    fig = plotting.range_tests_against_sweep(
        tests, sweep, seeds=[0, 1], chosen={"momentum": 1e-2, "adam": 1e-4},
        titles={"momentum": "SGD + momentum", "adam": "Adam"},
    )  # fmt: skip
    top_left, top_right, bottom_left, bottom_right = fig.axes
    assert [top_left.get_title(), top_right.get_title()] == ["SGD + momentum", "Adam"]
    assert bottom_left.get_xlim() == pytest.approx((1e-4, res.lrs[-1]))  # a decade below
    assert top_left.get_xlim() == bottom_left.get_xlim()  # shared by the column
    assert bottom_right.get_xlim() == pytest.approx((1e-5, res.lrs[-1]))
    chosen = [ln for ln in bottom_right.lines if ln.get_linestyle() == "-."]
    assert chosen[0].get_xdata()[0] == 1e-4
    assert top_left.get_xlabel() == "" and "validation" in bottom_left.get_ylabel()
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert len(labels) == len(set(labels)) and "chosen at the full budget" in labels


def test_rung_table_puts_each_rate_with_its_failures_and_role():
    curve = {
        "lr": np.array([0.01, 0.0316227766, 0.1]),
        "mean": np.array([0.8, 0.85, np.nan]),
        "std": np.array([0.01, 0.02, np.nan]),
        "diverged": np.array([0, 0, 2]),
        "collapsed": np.array([0, 1, 0]),
    }
    table = plotting.rung_table(curve, {0.0316227766: "base and peak"})
    assert table.index.tolist() == ["0.01", "0.0316228", "0.1"]
    assert table.index.name == "learning rate"
    assert table["validation accuracy"].tolist()[:2] == ["0.8000 ± 0.0100", "0.8500 ± 0.0200"]
    assert table["diverged seeds"].tolist() == [0, 0, 2]
    assert table["collapsed seeds"].tolist() == [0, 1, 0]
    assert table["chosen as"].tolist() == ["", "base and peak", ""]


def test_trace_schedules_steps_each_spec_as_torch_does():
    from fashion_optim import experiments as ex
    from fashion_optim import lr as lr_schedules

    specs = ex.schedule_specs(0.01, 0.1)
    keys = ("constant", "step", "lambda_step", "plateau")
    losses = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98]
    traces = plotting.trace_schedules(
        {k: specs[k] for k in keys}, 6, 4, lr=0.01, metrics={"plateau": losses}
    )
    np.testing.assert_array_equal(traces["constant"], np.full(24, 0.01))
    k = specs["step"].scheduler_kwargs["step_size"]
    expected = 0.01 * 0.1 ** (np.arange(24) // 4 // k)  # StepLR's closed form
    np.testing.assert_allclose(traces["step"], expected)
    np.testing.assert_allclose(traces["lambda_step"], traces["step"])  # the factor's function
    plateau = lr_schedules.trace_lr(
        "plateau", 6, 4, lr=0.01, metrics=losses, **specs["plateau"].scheduler_kwargs
    )
    np.testing.assert_array_equal(traces["plateau"], plateau)
    with pytest.raises(KeyError, match="plateau"):
        plotting.trace_schedules({"plateau": specs["plateau"]}, 6, 4, lr=0.01)


def test_schedule_traces_draw_per_epoch_left_per_batch_right_the_reference_on_both():
    traces = {
        "constant": np.full(8, 0.1),
        "step": np.repeat([0.1, 0.01], 4),
        "onecycle": np.linspace(0.01, 0.1, 8),
    }
    labels = {"constant": "constant", "step": "StepLR", "onecycle": "OneCycleLR"}
    fig = plotting.schedule_traces(traces, labels, steps_per_epoch=4)
    left, right = fig.axes
    assert [ln.get_label() for ln in left.lines] == ["constant", "StepLR"]
    assert [ln.get_label() for ln in right.lines] == ["constant", "OneCycleLR"]
    np.testing.assert_allclose(left.lines[1].get_xdata(), np.arange(1, 9) / 4)  # epochs
    assert left.lines[0].get_linewidth() == 5 and left.lines[1].get_linewidth() < 5
    assert left.get_yscale() == "log" and "learning rate" in left.get_ylabel()
    assert left.get_xlabel() == "epoch" and list(left.get_xticks()) == [0, 1, 2]
    assert to_rgba(right.lines[1].get_color()) == to_rgba(plotting.color_for("onecycle"))


def test_schedule_curves_draw_the_means_and_the_paired_differences():
    constant = seed_results(
        "constant rate", {0: {"val_acc": [0.5, 0.6]}, 1: {"val_acc": [0.7, 0.8]}}
    )
    step = seed_results("StepLR", {0: {"val_acc": [0.6, 0.6]}, 1: {"val_acc": [0.8, 0.9]}})
    other = seed_results("cosine", {5: {"val_acc": [0.1, 0.2]}})  # other seeds: no pairs
    fig = plotting.schedule_curves({"constant": constant, "step": step, "cosine": other})
    left, right = fig.axes
    means = {ln.get_label(): ln.get_ydata() for ln in left.lines}
    np.testing.assert_allclose(means["StepLR"], [0.7, 0.75])
    diffs = [ln for ln in right.lines if ln.get_label() == "StepLR"]
    np.testing.assert_allclose(diffs[0].get_ydata(), [0.1, 0.05])  # mean of step - constant
    assert not [ln for ln in right.lines if ln.get_label() == "cosine"]
    assert right.lines[-1].get_ydata()[0] == 0.0  # the reference line at zero
    assert left.get_ylabel() == "validation accuracy (fraction)"
    assert right.get_ylabel() == "minus the constant rate's (fraction)"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "constant rate",
        "StepLR",
        "cosine",
    ]


def test_step_decay_curves_mark_each_drop_between_epochs():
    hist = {s: {"val_acc": np.linspace(0.5, 0.8, 7)} for s in (0, 1)}
    runs = {"constant": seed_results("c", hist), "step": seed_results("s", hist)}
    _, ax = plt.subplots()
    drops = plotting.step_decay_curves(ax, runs, step_size=3, labels={"step": "StepLR"})
    assert [ln.get_xdata()[0] for ln in drops] == [3.5, 6.5]
    assert list(ax.get_xticks()) == [0, 3, 6]
    assert ax.get_legend() is not None and "validation accuracy" in ax.get_ylabel()
    assert "StepLR" in [t.get_text() for t in ax.get_legend().get_texts()]
    with pytest.raises(ValueError, match="step_size must be"):
        plotting.step_decay_curves(ax, runs, step_size=0)


def test_largest_change_is_the_biggest_move_on_any_seed_since_each_seeds_epoch():
    from types import SimpleNamespace as NS

    runs = [
        NS(seed=0, history=NS(val_acc=[0.5, 0.7, 0.8], train_loss=[2.0, 1.0, 0.5])),
        NS(seed=1, history=NS(val_acc=[0.5, 0.6, 0.4], train_loss=[2.0, 1.9, 1.8])),
    ]
    moved = plotting.largest_change(runs, {0: 1, 1: 0}, ["val_acc", "train_loss"])
    assert moved == pytest.approx([0.1, 0.5])  # |0.8 - 0.7| vs |0.4 - 0.5|; |0.5 - 1.0|


def test_per_seed_table_lines_up_seeds_and_leaves_a_missing_one_nan():
    a = seed_results("a", {0: {"val_acc": [0.5, 0.81234]}, 1: {"val_acc": [0.5, 0.9]}})
    b = seed_results("b", {1: {"val_acc": [0.4, 0.7]}})
    table = plotting.per_seed_table({"A": a, "B": b})
    assert table.index.name == "seed" and table.index.tolist() == [0, 1]
    assert table["A"].tolist() == ["0.8123", "0.9000"]
    assert table["B"].tolist() == ["nan", "0.7000"]


def test_paired_test_lines_are_the_corrected_tests_and_mcnemar_per_seed():
    from fashion_optim import stats
    from fashion_optim.experiments import SeedOutcomes
    from fashion_optim.training import TrainingDivergedError

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    seeds = (0, 1, 2)

    def outcomes(name, accs, right):
        preds = {s: np.where(rng.random(200) < right, labels, (labels + 1) % 10) for s in seeds}
        res = seed_results(
            name, {s: {"val_acc": [0.8]} for s in seeds},
            test_acc=dict(zip(seeds, accs, strict=True)), predictions=preds,
        )  # fmt: skip
        return SeedOutcomes(res.spec, res.results, [])

    out = {
        "a": outcomes("a", [0.90, 0.91, 0.92], 0.9),
        "b": outcomes("b", [0.85, 0.86, 0.88], 0.8),
    }
    out["gone"] = SeedOutcomes(out["a"].spec, [], [(0, TrainingDivergedError(1, 1, np.nan, 1.0))])
    lines = plotting.paired_test_lines(out, [("a", "b"), ("a", "gone")], labels)
    assert len(lines) == 2  # the pair with a configuration that never finished is left out
    t = stats.paired_tests({"a minus b": ([0.90, 0.91, 0.92], [0.85, 0.86, 0.88])})["a minus b"]
    state = "resolved" if t.resolved else "not resolved"
    assert lines[0] == f"test acc., a minus b: {t}, {state}"
    mc = [
        stats.mcnemar(ra.test_predictions, rb.test_predictions, labels)
        for ra, rb in zip(out["a"].finished, out["b"].finished, strict=True)
    ]
    assert lines[1] == "  McNemar, seeds with p < 0.05: " + plotting.mcnemar_summary(mc)


def test_mcnemar_summary_counts_the_seeds_below_alpha_and_gives_the_largest_p():
    from fashion_optim.stats import McNemar

    tests = [McNemar(30, 10, 10000, 0.002), McNemar(12, 10, 10000, 0.83), McNemar(5, 1, 10, 0.2)]
    assert plotting.mcnemar_summary(tests) == "1/3, max p 0.83"
    assert plotting.mcnemar_summary(tests, alpha=0.25) == "2/3, max p 0.83"
    assert plotting.mcnemar_summary([]) == "—"


# --------------------------------------------------------------------------- bias correction


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])
def test_the_uncorrected_step_ratio_is_the_ratio_of_the_two_steps_on_a_constant_gradient(betas):
    # Adam by hand on a constant gradient, with and without correction (eps 0)
    b1, b2 = betas
    t = np.arange(1, 501)
    g = np.full(t.size, -0.37)
    m, v = ewma.ewma(g, b1), ewma.ewma(g**2, b2)
    corrected = (m / (1 - b1**t)) / np.sqrt(v / (1 - b2**t))
    ratio = plotting.uncorrected_step_ratio(t, betas)
    np.testing.assert_allclose(ratio, (m / np.sqrt(v)) / corrected)
    np.testing.assert_allclose(corrected, np.sign(g))  # the corrected step is the sign


def test_the_uncorrected_step_ratio_refuses_step_zero_and_betas_of_one():
    with pytest.raises(ValueError, match="count from 1"):
        plotting.uncorrected_step_ratio([0, 1], (0.9, 0.999))
    with pytest.raises(ValueError, match=r"betas must each be in \[0, 1\)"):
        plotting.uncorrected_step_ratio([1], (0.9, 1.0))


def _ablation(curves: dict[tuple[float, bool], tuple[list[float], list[float]]]):
    """Outcomes keyed (lr, corrected): per seed, final validation and test accuracy."""
    from fashion_optim import experiments as ex
    from fashion_optim.experiments import Result
    from fashion_optim.training import History

    out = {}
    for (lr, corrected), (val, test) in curves.items():
        spec = ex.bias_correction_specs((lr,))[lr, corrected]
        cfg = spec.resolve("quick")
        finished = [
            Result(cfg, s, History.from_dict({"val_acc": [a], "val_loss": [1 - a]}), 0, b, {}, {})
            for s, (a, b) in enumerate(zip(val, test, strict=True))
        ]
        out[lr, corrected] = ex.SeedOutcomes(spec, finished)
    return out


def _shifted_ablation():
    """The uncorrected variant peaks one grid step (sqrt(10)) below the corrected one."""
    grid = (1e-4, 3.162e-4, 1e-3, 3.162e-3)
    peak = {True: 1e-3, False: 3.162e-4}
    curves = {}
    for lr in grid:
        for c in (True, False):
            score = 0.9 - 0.1 * abs(np.log10(lr / peak[c]))
            lift = 0.01 if c else 0.0  # corrected a point higher at its best, every seed
            curves[lr, c] = ([score + lift + 0.001 * s for s in range(3)],
                             [score + lift + 0.002 * s for s in range(3)])  # fmt: skip
    return _ablation(curves)


def test_bias_correction_table_compares_best_against_best_and_at_matched_steps():
    outcomes = _shifted_ablation()
    table, sentences = plotting.bias_correction_table(outcomes, 391, (0.9, 0.999))
    factor = plotting.uncorrected_step_ratio(np.arange(1, 392), (0.9, 0.999)).mean()
    assert 1 < factor < 10
    # best against best: each at its own best rate, 0.01 apart on every seed (resolved)
    best = table.loc["best against best"]
    assert (best["rate with"], best["rate without"]) == ("0.001", "0.0003162")
    assert best["without − with"].startswith("-0.0100") and best["resolved"] == "yes"
    # matched: the grid's rate nearest 0.001 / factor
    grid = np.array([1e-4, 3.162e-4, 1e-3, 3.162e-3])
    nearest = grid[np.argmin(np.abs(np.log(grid / (1e-3 / factor))))]
    assert table.loc["at matched early steps", "rate without"] == f"{nearest:g}"
    assert f"{1 - 0.999**391:.2f}" in sentences[0] and f"{factor:.2f}" in sentences[0]
    assert "moves down by a factor 3.16" in sentences[1]
    # moved by the factor (about one grid step), the uncorrected curve nears the corrected
    shifted, unmoved = (
        float(x) for x in re.findall(r"within (\S+) .* against (\S+) unmoved", sentences[2])[0]
    )
    assert shifted < unmoved
    assert "lower without correction" in sentences[3] and "resolved after Holm" in sentences[3]


def test_bias_correction_table_says_when_the_seeds_do_not_tell_the_variants_apart():
    accs = {c: [0.8 + 0.05 * ((s + c) % 2) for s in range(3)] for c in (True, False)}
    noisy = {(lr, c): (accs[c], accs[c]) for lr in (1e-3, 1e-2) for c in (True, False)}
    _, sentences = plotting.bias_correction_table(_ablation(noisy), 50, (0.9, 0.999))
    assert all("do not tell the variants apart" in s for s in sentences[-2:])
    # two rates a decade apart: moved by the factor, one rate at most overlaps, no sentence
    assert len(sentences) == 4 and not any("Moved right" in s for s in sentences)


def test_bias_correction_table_refuses_a_variant_missing_at_a_rate():
    outcomes = _shifted_ablation()
    del outcomes[1e-3, False]
    with pytest.raises(ValueError, match=r"both variants at every rate.*bias_correction_specs"):
        plotting.bias_correction_table(outcomes, 391, (0.9, 0.999))


def test_bias_correction_curves_draw_both_variants_and_the_shifted_one():
    outcomes = _shifted_ablation()
    _, ax = plt.subplots()
    chosen = plotting.bias_correction_curves(ax, outcomes, 3.0)
    assert chosen == {True: 1e-3, False: 3.162e-4}
    labels = [line.get_label() for line in ax.lines]
    assert "with correction" in labels and "without correction" in labels
    shifted = ax.lines[labels.index("without correction, at lr × 3.00")]
    without = ax.lines[labels.index("without correction")]
    np.testing.assert_allclose(shifted.get_xdata(), 3.0 * without.get_xdata())
    np.testing.assert_allclose(shifted.get_ydata(), without.get_ydata())
    with pytest.raises(ValueError, match="factor must be a positive number"):
        plotting.bias_correction_curves(ax, outcomes, 0.0)


# --------------------------------------------------------------------------- momentum's step


def _seeds_of(key: str, lr: float, val: list[float], test: list[float] | None = None):
    from fashion_optim import experiments as ex
    from fashion_optim.experiments import Result, SeedResults
    from fashion_optim.training import History

    spec = ex.NAMED["momentum" if key == "momentum" else "sgd"].replace(lr=lr)
    cfg = spec.resolve("quick")
    results = [
        Result(cfg, s, History.from_dict({"val_acc": [v], "val_loss": [1 - v]}), 0, t, {}, {})
        for s, (v, t) in enumerate(zip(val, test or val, strict=True))
    ]
    return SeedResults(spec, results)


def _larger_step_case(ahead_by: float):
    """Defaults where SGD at 0.1 is not told from momentum; a rung where momentum is
    ``ahead_by`` at effective rate 0.1 on every seed, equal elsewhere, diverged at 1.0."""
    from fashion_optim import experiments as ex
    from fashion_optim.training import TrainingDivergedError

    default = {
        "sgd": _seeds_of("sgd", 0.01, [0.80, 0.81, 0.82]),
        "momentum": _seeds_of("momentum", 0.01, [0.85, 0.86, 0.87]),
        "sgd_effective": _seeds_of("sgd", 0.1, [0.85, 0.853, 0.872]),
    }
    base = [0.7, 0.71, 0.73]
    points = {"sgd": {}, "momentum": {}}
    for lr_sgd in (0.01, 0.1):
        lift = ahead_by if lr_sgd == 0.1 else 0.0
        shift = [0.001, -0.002, 0.0015] if lr_sgd == 0.1 else [0.004, -0.003, 0.0]
        mom = [b + lift + d for b, d in zip(base, shift, strict=True)]
        for key, lr, accs in (("sgd", lr_sgd, base), ("momentum", lr_sgd / 10, mom)):
            points[key][lr] = ex.SeedOutcomes(
                ex.NAMED[key].replace(lr=lr), _seeds_of(key, lr, accs).results
            )
    bad = [(s, TrainingDivergedError(1, 1, float("nan"), 1.0)) for s in range(3)]
    points["sgd"][1.0] = ex.SeedOutcomes(ex.NAMED["sgd"].replace(lr=1.0), [], bad)
    points["momentum"][0.1] = ex.SeedOutcomes(
        ex.NAMED["momentum"].replace(lr=0.1), _seeds_of("momentum", 0.1, [0.6] * 3).results
    )
    return default, ex.Sweep(points, (0, 1, 2))


def test_larger_step_sentences_say_where_momentum_is_its_larger_step_and_where_not():
    default, rung = _larger_step_case(ahead_by=0.1)
    numbers, sentences = plotting.larger_step_sentences(default, rung, keys=("momentum",))
    assert numbers["closed"] == pytest.approx((0.8583 - 0.81) / 0.05, abs=1e-3)
    assert not numbers["at_default"].excludes_zero
    # 0.01 and 0.1 effective compared; 1.0 left out (SGD diverged there)
    assert sorted(numbers["range"]["momentum"]) == [0.01, 0.1]
    assert numbers["range"]["momentum"][0.1].resolved
    assert not numbers["range"]["momentum"][0.01].resolved
    assert numbers["holds"] == {"default": True, "range": False}
    assert "97% of the gap" in sentences[0] and "do not tell from zero" in sentences[0]
    assert "ahead at 1 of them (0.1) and behind at 0" in sentences[1]
    assert sentences[-1].startswith("Momentum keeps no resolved advantage over SGD with its")
    assert "at η = 0.01" in sentences[-1].split(";")[0]
    assert "across the first rung's grid of rates" in sentences[-1].split(";")[1]


def test_larger_step_sentences_claim_no_advantage_the_seeds_do_not_resolve():
    default, rung = _larger_step_case(ahead_by=0.0)
    # tuned: Nesterov resolved ahead of SGD, momentum equal to it on every seed
    tuned = {"sgd": default["sgd"], "momentum": default["sgd"]}
    tuned["nesterov"] = default["sgd_effective"]
    numbers, sentences = plotting.larger_step_sentences(default, rung, tuned)
    assert numbers["holds"] == {"default": True, "range": True, "tuned": False}
    assert "Nesterov − SGD" in sentences[2] and "(resolved)" in sentences[2]
    assert "momentum − SGD +0.0000" in sentences[2]
    assert "Nesterov keeps a resolved advantage over SGD when each is tuned" in sentences[-1]
    assert "at η = 0.01 and across the first rung's grid" in sentences[-1].split(";")[0]
    with pytest.raises(ValueError, match=r"default has no \['sgd_effective'\]"):
        plotting.larger_step_sentences({"sgd": 1, "momentum": 2}, rung)


def test_larger_step_sentences_make_no_test_below_three_seeds():
    default, rung = _larger_step_case(ahead_by=0.1)
    for points in rung.points.values():
        for point in points.values():
            del point.finished[2:]
    numbers, sentences = plotting.larger_step_sentences(default, rung, keys=("momentum",))
    assert "with 2 seeds no test is made, so none of them is resolved" in sentences[1]
    assert numbers["holds"]["range"]  # nothing resolved: no advantage claimed


def test_larger_step_sentences_at_the_default_rate_alone():
    default, _ = _larger_step_case(ahead_by=0.0)
    numbers, sentences = plotting.larger_step_sentences(default)
    assert numbers["holds"] == {"default": True} and len(sentences) == 2
    assert sentences[-1] == (
        "Momentum keeps no resolved advantage over SGD with its larger step at η = 0.01: "
        "there the larger step is what the seeds can see of momentum's gain."
    )


def test_bias_correction_table_says_when_the_matched_rate_diverged():
    from fashion_optim import experiments as ex
    from fashion_optim.training import TrainingDivergedError

    outcomes = _shifted_ablation()
    spec = outcomes[3.162e-4, False].spec
    bad = [(s, TrainingDivergedError(1, 1, float("nan"), 3.162e-4)) for s in range(3)]
    outcomes[3.162e-4, False] = ex.SeedOutcomes(spec, [], bad)
    table, sentences = plotting.bias_correction_table(outcomes, 391, (0.9, 0.999))
    assert list(table.index) == ["best against best"]
    assert table.loc["best against best", "failed without"] == "none"
    assert any(
        "nearest 0.001 /" in s
        and "is 0.0003162, where every seed of the uncorrected variant diverged" in s
        for s in sentences
    )
