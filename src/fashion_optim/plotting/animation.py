"""Animations a reader scrubs: optimizers' paths drawn step by step.

Each function returns a :class:`PathAnimation`, a
:class:`~matplotlib.animation.FuncAnimation` whose frame ``k`` is drawn by
:meth:`PathAnimation.show`. Its frames are saved at its own ``dpi`` (the static
figures' ``savefig.dpi`` is twice the screen's, for sharpness, and every frame of an
animation is embedded in the page), and a notebook shows it as matplotlib's JavaScript
player (:meth:`~matplotlib.animation.Animation.to_jshtml`), the player sphinx-gallery
embeds in a page with ``matplotlib_animations = (True, "jshtml")``. The frames are
images inside the page, so they set its weight: the player gets what no frame changes
(contours, axes, legends) once, as its image's background, and each frame holds only
what moves, on a transparent background, every image a lossless WebP in a palette of at
most 256 colours (a figure of lines and flat fills has a few hundred; it looks the
same). At the defaults (``FRAMES`` frames at ``DPI`` dots per inch) an animation adds a
few hundred kB to its page.
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from .axes import label_step_axis, plain_log_ticks, smooth_curve
from .figures import _plane_background, _plane_keys, toy_paths
from .style import color_for

#: Frames of an animation, at most: a path longer than this is shown every few steps.
FRAMES = 60
#: Dots per inch of the frames: a 9.5 in wide figure is 617 px, just within the page's
#: column in a 1280 px wide window, so the player shows the frames unscaled there (and
#: its text at the size of the static figures' text, which are scaled to the column).
DPI = 65
#: Milliseconds between frames when the player plays.
INTERVAL = 100
#: Colours of the palette the player's frames are reduced to.
PALETTE = 256

# A frame of matplotlib's player: a base64 PNG in a JavaScript string, its lines joined
# by a backslash and a newline.
_FRAME = re.compile(r'data:image/png;base64,((?:[A-Za-z0-9+/=]|\\\n)+)(?=")')
# The player's image, which shows the frames.
_PLAYER_IMAGE = re.compile(r'<img id="_anim_img\w+"')


class PathAnimation(FuncAnimation):
    """A :class:`~matplotlib.animation.FuncAnimation` of paths drawn step by step.

    Made by :func:`toy_animation` and :func:`plane_animation`. It plays once
    (``repeat=False``) and a reader scrubs it with the player's slider. The figure is
    left at the last frame, so a static image of it shows the whole paths.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    draw : callable
        ``draw(frame)`` updates the figure's artists to frame ``frame`` and returns them.
    steps : mapping of str to array_like
        For each panel, the step it shows at each frame; all of one length, the frames.
    dpi : float
        Dots per inch of the saved frames.
    interval : float
        Milliseconds between frames when the animation plays.

    Attributes
    ----------
    frames : int
        The number of frames.
    steps : dict of str to numpy.ndarray
        For each panel (a surface's name, or ``"plane"`` and ``"loss"``), the step it
        shows at each frame, ``[frames]``.
    dpi : float
        Dots per inch of the saved frames, unless :meth:`save` is given others.
    """

    def __init__(
        self,
        fig: Figure,
        draw: Callable[[int], list[Artist]],
        steps: Mapping[str, np.ndarray],
        *,
        dpi: float = DPI,
        interval: float = INTERVAL,
    ) -> None:
        self.steps = {name: np.asarray(s) for name, s in steps.items()}
        self.frames = len(next(iter(self.steps.values())))
        self.dpi = dpi
        self._draw_path_frame = draw
        # A static view of the figure (a notebook's image of it, a saved file) shows the
        # whole paths, as the player does once it has played.
        self.show(self.frames - 1)
        # Lay the figure out once, at the last frame (the longest step counts), instead
        # of at every frame: the frames render a third faster and nothing shifts between
        # them. Done before the animation listens for draws, so that this starts nothing.
        if fig.get_layout_engine() is not None:
            fig.draw_without_rendering()
            fig.set_layout_engine("none")
        super().__init__(fig, self.show, frames=self.frames, interval=interval, repeat=False)
        # drawn: no warning that it was "deleted without rendering anything" when a
        # script that never saves it ends (Agg)
        self._draw_was_started = True

    @property
    def figure(self) -> Figure:
        """The figure the animation draws on."""
        return self._fig

    def show(self, frame: int) -> list[Artist]:
        """Draw frame ``frame`` (0 to ``frames - 1``); return the artists it changed."""
        if not 0 <= frame < self.frames:
            raise IndexError(f"frame must be in 0..{self.frames - 1}, got {frame}.")
        return self._draw_path_frame(int(frame))

    def save(self, filename: Any, writer: Any = None, fps: Any = None, dpi: Any = None, **kw):
        """:meth:`matplotlib.animation.Animation.save`, at ``self.dpi`` unless ``dpi`` is
        given.

        What no frame changes (the "still": contours, axes, legends) is drawn once, into
        an image behind the rest, so that each frame draws only the artists that move
        (and those in front of them): the frames look the same and render several times
        faster.
        """
        dpi = self.dpi if dpi is None else dpi
        with self._still(dpi) as still:
            if not self._still_in_page:
                still = self._fig.figimage(_decoded(still), zorder=-1, origin="upper")
            try:
                return super().save(filename, writer, fps, dpi, **kw)
            finally:
                if not self._still_in_page:
                    still.remove()

    _still_in_page = False

    @contextlib.contextmanager
    def _still(self, dpi: float) -> Iterator[bytes]:
        """The still as a PNG; while open, the figure draws only what moves, on a
        transparent background."""
        fig = self._fig
        moving = set(self.show(self.frames - 1))
        hidden: list[Artist] = []

        def hide(artist: Artist) -> None:
            if artist.get_visible():
                artist.set_visible(False)
                hidden.append(artist)

        for artist in moving:
            hide(artist)
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=dpi)
        for artist in hidden:
            artist.set_visible(True)
        hidden.clear()
        for artist in (fig.patch, *fig.legends, *fig.texts):
            hide(artist)
        for ax in fig.axes:
            own = [a.get_zorder() for a in moving if a.axes is ax]
            if not own:
                hide(ax)
                continue
            # an artist drawn over a moving one is drawn again with it, in front
            hide(ax.patch)
            for child in ax.get_children():
                if child not in moving and child.get_zorder() < min(own):
                    hide(child)
        try:
            yield png.getvalue()
        finally:
            for artist in hidden:
                artist.set_visible(True)

    def _post_draw(self, framedata: Any, blit: bool) -> None:
        # While saving, the writer draws each frame itself: matplotlib's draw_idle here
        # would draw it a second time (Agg draws at once), doubling the build's time.
        if not self._fig.canvas.is_saving():
            super()._post_draw(framedata, blit)

    def to_jshtml(self, fps: Any = None, embed_frames: bool = True, default_mode: Any = None):
        """:meth:`matplotlib.animation.Animation.to_jshtml`, lighter: the still is sent
        once, as the player image's background, and each frame holds only what moves,
        on a transparent background; every image is a lossless WebP in a palette of at
        most ``PALETTE`` colours. Each frame weighs a few kB instead of tens."""
        if not hasattr(self, "_player"):
            self._still_in_page = True
            try:
                with self._still(self.dpi) as still:
                    html = super().to_jshtml(fps, embed_frames, default_mode)
            finally:
                self._still_in_page = False
            behind = (
                f'style="background: #fff url({_compact(still)}) '
                'no-repeat content-box 0 0 / 100% 100%"'
            )
            html = _PLAYER_IMAGE.sub(lambda m: f"{m[0]} {behind}", html, count=1)
            self._player = _FRAME.sub(lambda m: _compact(base64.b64decode(m[1])), html)
        return self._player

    def _repr_html_(self) -> str:
        # Jupyter shows the player whatever rcParams["animation.html"] says.
        return self.to_jshtml()


def _decoded(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image)


def _compact(png: bytes) -> str:
    """A PNG as a data URL of a lossless WebP image in a palette of at most ``PALETTE``
    colours (transparency kept; no dithering, so that lines and flat fills keep their
    colours): a quarter lighter than the same palette as a PNG, and every current
    browser shows it."""
    with Image.open(io.BytesIO(png)) as image:
        reduced = image.convert("RGBA").quantize(
            PALETTE, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
        )
    out = io.BytesIO()
    reduced.convert("RGBA").save(out, format="webp", lossless=True)
    return "data:image/webp;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def frame_indices(points: int, frames: int = FRAMES) -> np.ndarray:
    """``min(points, frames)`` indices into ``points`` evenly spread points, the first and
    the last included: the points an animation of at most ``frames`` frames shows.

    Examples
    --------
    >>> frame_indices(11, 5).tolist()
    [0, 2, 5, 8, 10]
    >>> frame_indices(3, 60).tolist()
    [0, 1, 2]
    """
    if not (isinstance(points, int | np.integer) and points >= 1):
        raise ValueError(f"points must be an integer >= 1, got {points!r}.")
    if not (isinstance(frames, int | np.integer) and frames >= 2):
        raise ValueError(f"frames must be an integer >= 2, got {frames!r}.")
    return np.round(np.linspace(0, points - 1, min(points, frames))).astype(int)


def _shown(path: np.ndarray, xlim: Sequence[float], ylim: Sequence[float]) -> int:
    """How many points of a path to draw: all of them, or up to one past the window
    (a diverging path runs off to infinity), as :func:`toy_paths` draws it."""
    inside = np.isfinite(path).all(axis=1)
    inside &= (path[:, 0] >= xlim[0]) & (path[:, 0] <= xlim[1])
    inside &= (path[:, 1] >= ylim[0]) & (path[:, 1] <= ylim[1])
    return len(path) if inside.all() else int(np.argmin(inside)) + 1


def _moving(ax: Any, key: str, label: str, ms: float = 2.2) -> tuple[Line2D, Line2D]:
    """A trail (line and dots, labelled) and a head (hollow circle) in ``key``'s colour."""
    colour = color_for(key)
    (trail,) = ax.plot([], [], "-o", ms=ms, lw=1.4, color=colour, label=label, zorder=3)
    (head,) = ax.plot([], [], "o", ms=8, mfc="white", mec=colour, mew=2, zorder=6)
    return trail, head


def _legend_entries(axes: Sequence[Any], first: Sequence[str]) -> tuple[list[Any], list[str]]:
    """The labelled artists of ``axes``, once per label, ``first`` first; the end marker
    of the static figures marks the point reached at the frame's step here."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault("position at this step" if name == "end" else name, handle)
    names = sorted(entries, key=lambda name: name not in first)  # stable
    return [entries[name] for name in names], names


def toy_animation(
    paths: Mapping[str, Mapping[str, Any]],
    *,
    labels: Mapping[str, str] | None = None,
    titles: Mapping[str, str] | None = None,
    frames: int = FRAMES,
    dpi: float = DPI,
    interval: float = INTERVAL,
    figsize: tuple[float, float] = (9.5, 4.9),
) -> PathAnimation:
    """Optimizers' paths on toy surfaces, moving together step by step, a panel per surface.

    Each panel is drawn as :func:`toy_paths` draws it (contours, start, minimum); each
    path is a trail of the points visited so far and a hollow circle at the point it has
    reached, in its key's colour; the title counts the steps. A surface's paths advance
    together; panels with paths of different lengths advance at proportional speeds, so
    that all reach their last step in the last frame.

    Parameters
    ----------
    paths : mapping of str to mapping of str to array_like, shape (points, 2)
        Surface (a name in :data:`fashion_optim.toys.SURFACES`) to a path per key (a
        :data:`COLORS` name), e.g. from :func:`fashion_optim.toys.optimize_path`:
        point ``i`` is where step ``i`` left the optimizer, point 0 the start.
    labels : mapping of str to str, optional
        Legend labels of the keys; default: the keys.
    titles : mapping of str to str, optional
        Title of each surface's panel, before the step count; default: its name.
    frames : int
        At most this many frames: a longer path is shown every few steps.
    dpi : float
        Dots per inch of the frames.
    interval : float
        Milliseconds between frames when the animation plays.
    figsize : tuple of float
        Inches.

    Returns
    -------
    PathAnimation
        Its ``steps[surface]`` says which step each frame shows.

    Examples
    --------
    >>> import torch
    >>> from fashion_optim import toys
    >>> sgd = toys.optimize_path("quadratic", lambda p: torch.optim.SGD(p, lr=0.05), 90)
    >>> anim = toy_animation({"quadratic": {"sgd": sgd}}, frames=31)
    >>> anim.frames, anim.steps["quadratic"][:4].tolist()
    (31, [0, 3, 6, 9])
    """
    import matplotlib.pyplot as plt

    from .. import toys  # torch: imported only by the pages that draw surfaces

    if not paths:
        raise ValueError("paths must hold at least one surface's paths, got none.")
    surfaces = {name: toys.SURFACES[name] for name in paths}
    arrays = {
        name: {key: np.asarray(p, dtype=np.float64) for key, p in group.items()}
        for name, group in paths.items()
    }
    longest = {name: max(len(p) for p in group.values()) for name, group in arrays.items()}
    count = min(max(longest.values()), frames)
    # as frame_indices, but a panel with fewer points than frames holds some of them
    steps = {n: np.round(np.linspace(0, k - 1, count)).astype(int) for n, k in longest.items()}
    fig, axes = plt.subplots(1, len(paths), figsize=figsize, layout="constrained", squeeze=False)
    moving, keys = {}, list(dict.fromkeys(k for group in arrays.values() for k in group))
    for ax, (name, group) in zip(axes[0], arrays.items(), strict=True):
        surf = surfaces[name]
        toy_paths(ax, surf, {})
        for key, path in group.items():
            trail, head = _moving(ax, key, (labels or {}).get(key, key))
            moving[name, key] = (trail, head, path[: _shown(path, surf.xlim, surf.ylim)])
    handles, names = _legend_entries(axes[0], [(labels or {}).get(k, k) for k in keys])
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 4))
    title = {name: (titles or {}).get(name, name) for name in arrays}

    def draw(frame: int) -> list[Artist]:
        changed: list[Artist] = []
        for ax, name in zip(axes[0], arrays, strict=True):
            step = int(steps[name][frame])
            for key in arrays[name]:
                trail, head, shown = moving[name, key]
                trail.set_data(*shown[: step + 1].T)
                head.set_data(*shown[min(step, len(shown) - 1)].reshape(2, 1))
                changed += [trail, head]
            ax.set_title(f"{title[name]}, step {step} of {longest[name] - 1}")
            changed.append(ax.title)
        return changed

    return PathAnimation(fig, draw, steps, dpi=dpi, interval=interval)


def plane_animation(
    trajectory: Any,
    runs: Sequence[Any],
    keys: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    beta: float = 0.95,
    frames: int = FRAMES,
    dpi: float = DPI,
    interval: float = INTERVAL,
    levels: int = 16,
    figsize: tuple[float, float] = (9.5, 4.9),
) -> PathAnimation:
    """Runs' paths on the PCA plane of their trajectories, with their losses, step by step.

    Left, the plane as :func:`plane_paths` draws it (the loss on the plane as grey
    contours, with a colour bar); each run's path is a trail of its snapshots so far and
    a hollow circle at its latest one. Right, each run's training loss (a bias-corrected
    EWMA of the mini-batch losses, a thin line) and validation loss (a dot at the end of
    each epoch, joined by a dashed line), drawn up to the step of the latest snapshot.

    Parameters
    ----------
    trajectory : fashion_optim.experiments.TrajectorySurface
        From :func:`fashion_optim.experiments.trajectory_surface` of ``runs``.
    runs : sequence of fashion_optim.experiments.Result
        The snapshot runs of the plane, in its order: their ``records["param_steps"]``
        (the same for all), ``history.batch_loss``, ``history.val_loss`` and
        ``meta["steps_per_epoch"]``.
    keys : sequence of str
        A :data:`COLORS` name per run.
    labels : mapping of str to str, optional
        Legend labels of the keys; default: the keys.
    beta : float
        Weight of the past in the training loss's EWMA.
    frames : int
        At most this many frames: snapshots are skipped evenly beyond it.
    dpi, interval, levels, figsize
        As in :func:`toy_animation`; ``levels`` contour levels.

    Returns
    -------
    PathAnimation
        Its ``steps["plane"]`` (and ``steps["loss"]``, the same) says which step each
        frame shows.

    Examples
    --------
    >>> surf = experiments.trajectory_surface([sgd_run, momentum_run])  # doctest: +SKIP
    >>> runs, keys = [sgd_run, momentum_run], ["sgd", "momentum"]  # doctest: +SKIP
    >>> anim = plane_animation(surf, runs, keys)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    keys = _plane_keys(trajectory, keys)
    if len(runs) != len(keys):
        raise ValueError(f"runs must be the plane's {len(keys)} runs, got {len(runs)}.")
    snap_steps = np.asarray(runs[0].records["param_steps"])
    for run in runs[1:]:
        if not np.array_equal(run.records["param_steps"], snap_steps):
            raise ValueError("the runs must have their snapshots at the same steps.")
    per_epoch = int(runs[0].meta["steps_per_epoch"])
    shown = frame_indices(len(snap_steps), frames)
    steps = snap_steps[shown]

    fig, (ax_plane, ax_loss) = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    filled = _plane_background(ax_plane, trajectory, levels)
    fig.colorbar(filled, ax=ax_plane, label="training loss on the sample (nat)", format="%.2g")
    curves, losses = [], []
    for run, key, coords in zip(runs, keys, trajectory.plane.coords, strict=True):
        trail, head = _moving(ax_plane, key, (labels or {}).get(key, key), ms=2.5)
        train = smooth_curve(run.history.batch_loss, beta)
        val = np.asarray(run.history.val_loss, dtype=np.float64)
        val_steps = per_epoch * np.arange(1, len(val) + 1)
        (train_line,) = ax_loss.plot([], [], lw=1.0, color=color_for(key))
        (val_line,) = ax_loss.plot([], [], "--o", ms=5, lw=1.2, color=color_for(key))
        curves.append((trail, head, coords, train_line, train, val_line, val_steps, val))
        losses += [train, val]
    ax_plane.plot(0, 0, "s", ms=7, color="black", zorder=5, ls="", label="start")
    ax_plane.plot([], [], "o", ms=8, mfc="white", mec="black", mew=2, ls="", label="end")
    low, high = min(v.min() for v in losses), max(v.max() for v in losses)
    ax_loss.set(yscale="log", ylim=(low / 1.1, high * 1.1), xlim=(0, snap_steps[-1]))
    ax_loss.set(ylabel="loss (nat)")
    plain_log_ticks(ax_loss)
    label_step_axis(ax_loss, per_epoch)
    ax_loss.plot([], [], lw=1.0, color="black", label=f"training loss, EWMA β = {beta:g}")
    ax_loss.plot([], [], "--o", ms=5, lw=1.2, color="black", label="validation loss")
    handles, names = _legend_entries([ax_plane, ax_loss], [])
    fig.legend(handles, names, loc="outside lower center", ncols=4)

    def draw(frame: int) -> list[Artist]:
        index, step = int(shown[frame]), int(steps[frame])
        changed: list[Artist] = [ax_loss.title]
        for trail, head, coords, train_line, train, val_line, val_steps, val in curves:
            trail.set_data(*coords[: index + 1].T)
            head.set_data(*coords[index].reshape(2, 1))
            train_line.set_data(np.arange(1, step + 1), train[:step])
            done = val_steps <= step
            val_line.set_data(val_steps[done], val[done])
            changed += [trail, head, train_line, val_line]
        ax_loss.set_title(f"step {step} of {snap_steps[-1]}")
        return changed

    return PathAnimation(fig, draw, {"plane": steps, "loss": steps}, dpi=dpi, interval=interval)
