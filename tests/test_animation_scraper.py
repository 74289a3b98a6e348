"""The site's scraper (docs/_ext/animation_scraper.py): an animation becomes its player,
once, with no GIF written and no movie writer asked for."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))
from animation_scraper import scrape


def _conf(src_dir: Path) -> dict:
    return {
        "image_srcset": [],
        "compress_images": (),
        "matplotlib_animations": (False, None),
        "src_dir": str(src_dir),
    }


def _block_vars(names: dict, paths: list[str]) -> dict:
    return {"example_globals": names, "image_path_iterator": iter(paths)}


def test_an_animation_is_its_player_once_and_no_gif_is_written(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1], [0, 1])
    anim = FuncAnimation(fig, lambda k: line.set_ydata([0, k]), frames=3)
    with caplog.at_level(logging.INFO, logger="matplotlib"):
        rst = scrape(None, _block_vars({"anim": anim}, []), _conf(tmp_path))
    assert rst.count("sphx-glr-animation") == 1 and "<script" in rst
    assert not plt.get_fignums()  # its figure is closed: no still image of it
    assert not list(tmp_path.rglob("*"))  # no GIF, no file at all
    assert "MovieWriter" not in caplog.text

    # a later cell's figure, which reuses the closed figure's number, is saved as an image
    other = plt.figure()
    assert other.number == fig.number
    other.add_subplot().plot([1, 2])
    path = tmp_path / "image_001.png"
    rst = scrape(None, _block_vars({"anim": anim}, [str(path)]), _conf(tmp_path))
    assert "sphx-glr-animation" not in rst and path.is_file()
    plt.close("all")
