"""sphinx-gallery's matplotlib scraper, with an animation shown as its JavaScript player only.

sphinx-gallery's own animation support (``matplotlib_animations``) also saves every
animation as a GIF, written with ffmpeg or ImageMagick when either is installed and with
Pillow otherwise (after matplotlib logs "MovieWriter ffmpeg unavailable"). The site never
shows that GIF: a chapter's thumbnail is one of its still figures. This scraper embeds
each animation a cell leaves in a variable as :meth:`~matplotlib.animation.Animation.to_jshtml`
(the lighter player of :class:`fashion_optim.plotting.PathAnimation`), closes its figure,
and lets the matplotlib scraper save the cell's other figures as usual. An animation's
figure takes no image number, so ``sphinx_gallery_thumbnail_number`` counts still figures.
"""

from __future__ import annotations

import weakref
from textwrap import indent
from typing import Any

from sphinx_gallery.scrapers import matplotlib_scraper

#: The reST sphinx-gallery gives a player (its ``sphx-glr-animation`` container).
PLAYER_RST = """
.. container:: sphx-glr-animation

    .. raw:: html

{html}
"""

# The animations already embedded: a chapter keeps its animation in a variable, and a
# later cell's figure may reuse the closed figure's number.
_EMBEDDED: weakref.WeakSet = weakref.WeakSet()


def scrape(block: Any, block_vars: dict, gallery_conf: dict, **kwargs: Any) -> str:
    """Players of the cell's open animations, then the matplotlib scraper's figures."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import Animation

    players = []
    for value in list(block_vars["example_globals"].values()):
        if not isinstance(value, Animation) or value in _EMBEDDED:
            continue
        # matplotlib keeps an animation's figure as ``_fig`` (sphinx-gallery reads it too)
        figure = value._fig
        if plt.fignum_exists(figure.number):  # still open: made by this cell
            players.append(PLAYER_RST.format(html=indent(value.to_jshtml(), " " * 8)))
            _EMBEDDED.add(value)
            plt.close(figure)
    return "".join(players) + matplotlib_scraper(block, block_vars, gallery_conf, **kwargs)
