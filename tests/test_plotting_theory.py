"""The theory-beside-the-sweep helpers: the quadratic's limits at measured curvatures
and the sweep's bracket of its failures, on a constructed sweep."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from fashion_optim import plotting

RATES = np.array([0.001, 0.01, 0.1, 1.0, 10.0])


class FakeSweep:
    """A rung: per key, the seeds that diverged and collapsed at each rate."""

    def __init__(self, diverged, collapsed):
        self.diverged, self.collapsed = diverged, collapsed

    def curve(self, key):
        return {
            "lr": RATES,
            "diverged": np.array(self.diverged[key]),
            "collapsed": np.array(self.collapsed[key]),
        }

    def largest_stable_rate(self, key):
        ok = (np.array(self.diverged[key]) + np.array(self.collapsed[key])) == 0
        return float(RATES[ok].max())


SWEEP = FakeSweep(
    # sgd: too small to learn at 0.001 (collapsed), diverges from 1; momentum: fine
    # up to 0.1, collapsed at 1, diverged at 10; nesterov never fails
    {"sgd": [0, 0, 0, 2, 3], "momentum": [0, 0, 0, 0, 3], "nesterov": [0] * 5},
    {"sgd": [1, 0, 0, 0, 0], "momentum": [0, 0, 0, 1, 0], "nesterov": [0] * 5},
)
SHARP = {
    "sgd": SimpleNamespace(values=np.array([-0.5, 4.0, 10.0])),
    "momentum": SimpleNamespace(values=np.array([2.0, 38.0, 19.0])),
    "nesterov": SimpleNamespace(values=np.array([1.0, 1.0, 1.0])),
}
METHODS = {"sgd": "gd", "momentum": "heavy_ball", "nesterov": "nesterov"}


def test_stability_table_sets_the_closed_form_limits_beside_the_sweeps_bracket():
    table, limits = plotting.stability_table(SHARP, SWEEP, METHODS, 0.9, columns=["a", "b", "c"])
    # 2 / lambda, 2 (1 + mu) / lambda, 2 (1 + mu) / ((1 + 2 mu) lambda); none for lambda <= 0
    assert limits["sgd"] == [np.inf, pytest.approx(0.5), pytest.approx(0.2)]
    assert limits["momentum"] == [pytest.approx(1.9), pytest.approx(0.1), pytest.approx(0.2)]
    assert limits["nesterov"] == [pytest.approx(3.8 / 2.8)] * 3
    np.testing.assert_allclose(table.loc["sgd", ["a", "b", "c"]].astype(float), [-0.5, 4, 10])
    np.testing.assert_allclose(table["limit"].astype(float), [0.2, 0.1, 3.8 / 2.8])
    # the bracket: the largest rate with no failure and the next failing one above it
    # (sgd's collapse at 0.001, below, is no part of it)
    np.testing.assert_array_equal(table["no failure up to"], [0.1, 0.1, 10.0])
    np.testing.assert_array_equal(table["next, failed"], [1.0, 1.0, np.inf])


def test_stability_strips_mark_divergence_and_collapse_apart():
    _, limits = plotting.stability_table(SHARP, SWEEP, METHODS, 0.9, columns=["a", "b", "c"])
    fig, ax = plt.subplots()
    try:
        handles = plotting.stability_strips(ax, SWEEP, limits, limit_labels=["a", "b", "c"])
        assert [h.get_label() for h in handles][:3] == [
            "no seed failed",
            "a seed diverged",
            "a seed stuck at chance",
        ]
        # the top row is sgd: black crosses at 1 and 10, a grey one at 0.001
        black = [
            line.get_xdata()
            for line in ax.lines
            if line.get_marker() == "x" and line.get_color() == "black"
        ]
        assert sorted(np.concatenate(black).tolist()) == [1.0, 10.0, 10.0]
        bars = [line for line in ax.lines if line.get_marker() == "|"]
        assert len(bars) == 2 + 3 + 3  # sgd's lambda <= 0 sets no limit
        assert ax.get_xscale() == "log"
    finally:
        plt.close(fig)
