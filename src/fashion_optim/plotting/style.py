"""One figure style: the colours of every optimizer and schedule, and the matplotlib
settings of every figure (opaque backgrounds, for dark mode)."""

from __future__ import annotations

import contextlib
import zlib
from typing import Any

import matplotlib as mpl

#: The Okabe-Ito palette (Okabe & Ito, 2008), distinguishable under the common forms of
#: colour-vision deficiency. Used for the optimizers.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Paul Tol's "muted" qualitative palette (nine colours, colour-blind safe). Used for the
#: learning-rate schedules, and for names without a colour of their own.
TOL_MUTED: tuple[str, ...] = (
    "#332288",  # indigo
    "#88CCEE",  # cyan
    "#44AA99",  # teal
    "#117733",  # green
    "#999933",  # olive
    "#DDCC77",  # sand
    "#CC6677",  # rose
    "#882255",  # wine
    "#AA4499",  # purple
)

#: Grey for raw, noisy data drawn behind its smoothed version, and for reference lines.
NEUTRAL: str = "#9A9A9A"

#: The colour of each optimizer and schedule, the same on every page. Optimizers and
#: schedules are never compared in one axes, so the two groups are only distinct
#: within themselves; ``"constant"`` (no schedule) is black, the baseline.
COLORS: dict[str, str] = {
    # optimizers (Okabe-Ito)
    "sgd": OKABE_ITO["blue"],
    "momentum": OKABE_ITO["orange"],
    "nesterov": OKABE_ITO["bluish_green"],
    "adam": OKABE_ITO["vermillion"],
    # plain SGD at momentum's effective learning rate lr / (1 - beta): SGD's lighter blue
    "sgd_effective": OKABE_ITO["sky_blue"],
    # learning-rate schedules (Tol muted, plus black for the constant baseline)
    "constant": OKABE_ITO["black"],
    "step": TOL_MUTED[6],
    "multistep": TOL_MUTED[7],
    "exponential": TOL_MUTED[4],
    "lambda": TOL_MUTED[3],
    "cosine": TOL_MUTED[0],
    "onecycle": TOL_MUTED[8],
    "plateau": TOL_MUTED[2],
    "cyclic": TOL_MUTED[1],
    "cosine_warm_restarts": TOL_MUTED[5],
}

#: Matplotlib settings of every figure, applied by :func:`use_style`.
STYLE: dict[str, Any] = {
    "figure.constrained_layout.use": True,
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 100,
    # Sphinx-gallery saves with savefig.dpi: 200 dpi stays sharp on hi-dpi screens.
    "savefig.dpi": 200,
    # Opaque white everywhere: a transparent figure turns black text unreadable on the
    # site's dark background.
    "figure.facecolor": "white",
    "figure.edgecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.edgecolor": "white",
    "savefig.transparent": False,
    "legend.facecolor": "white",
    "legend.framealpha": 0.9,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9.5,
    "figure.titlesize": 13,
    "axes.grid": True,
    "grid.color": "#D0D0D0",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "axes.prop_cycle": mpl.cycler(
        color=[OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "vermillion")]
        + [OKABE_ITO[k] for k in ("reddish_purple", "sky_blue", "black")]
    ),
}


def use_style() -> None:
    """Apply :data:`STYLE` to matplotlib for the rest of the process.

    Call it once at the top of a gallery example (sphinx-gallery resets matplotlib
    before each example). Use :func:`style_context` to style only some figures.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> use_style()
    >>> plt.figure().get_facecolor()
    (1.0, 1.0, 1.0, 1.0)
    """
    mpl.rcParams.update(STYLE)


def style_context() -> contextlib.AbstractContextManager[None]:
    """A context manager applying :data:`STYLE` inside a ``with`` block only.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> with style_context():
    ...     fig, ax = plt.subplots()
    >>> fig.get_layout_engine() is not None
    True
    """
    return mpl.rc_context(STYLE)


def _normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def color_for(name: str) -> str:
    """The colour of an optimizer, a schedule or any other named configuration.

    Names are matched case-insensitively, with spaces and hyphens read as
    underscores (``"Cosine warm-restarts"`` is ``"cosine_warm_restarts"``). A name
    without an entry in :data:`COLORS` gets a colour of :data:`TOL_MUTED` chosen by a
    checksum of the name, so it is the same on every page and in every process.

    Parameters
    ----------
    name : str
        e.g. ``"sgd"``, ``"momentum"``, ``"adam"``, ``"onecycle"``.

    Returns
    -------
    str
        A hex colour, e.g. ``"#0072B2"``.

    Examples
    --------
    >>> color_for("sgd")
    '#0072B2'
    >>> color_for("Adam") == color_for("adam")
    True
    >>> color_for("my_config") == color_for("my_config")
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r} of type {type(name).__name__}.")
    key = _normalise(name)
    if key in COLORS:
        return COLORS[key]
    # zlib.crc32, not hash(): Python salts str hashes per process.
    return TOL_MUTED[zlib.crc32(key.encode()) % len(TOL_MUTED)]
