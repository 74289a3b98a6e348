"""fastai's slide rule, each tool's range-test convention replayed from a record, and the
scores of a suggestion: its distance in grid steps and its regret on a sensitivity curve."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fashion_optim import plotting, suggest
from fashion_optim.suggest import CONVENTIONS, Convention, grid_steps, replay

RAW = 1e-9  # a smoothing weight so small that the smoothed curve is the raw one


# --------------------------------------------------------------------------- slide


def _rise_after(p: int, n: int = 80, c: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Flat at 1 up to point ``p``, then ``1 + c (i - p)^2``: the slope per point is 0
    before ``p``, ``c/2`` at ``p`` and ``2c (i - p)`` after it."""
    i = np.arange(n)
    return np.geomspace(1e-5, 1.0, n), 1 + c * np.maximum(i - p, 0) ** 2


def test_slide_stops_fifteen_points_before_the_loss_starts_to_rise():
    lrs, losses = _rise_after(50)
    # the window's right end slides down while its two ends' slopes differ by more than
    # 0.005; at p = 50 they still do (0.05 against 0), one point lower both are 0: the
    # rate is the window's left end at that last move, p - 15
    found = suggest.suggest("slide", lrs, losses, beta=RAW, smoothing="seeded", num_iter=80)
    assert found == lrs[50 - 15]


def test_slide_keeps_its_first_window_where_the_end_is_straight():
    lrs = np.geomspace(1e-5, 1.0, 80)
    losses = 1 + 0.1 * np.arange(80)  # one slope everywhere: the ends agree at once
    found = suggest.suggest("slide", lrs, losses, beta=RAW, smoothing="seeded", num_iter=80)
    # fastai's window ends 5 points before the last: its last point is 74, and the
    # window's left end is 15 points below it
    assert found == lrs[74 - 15]


def test_slide_is_one_of_the_rules():
    assert "slide" in suggest.RULES


# --------------------------------------------------------------------------- replay


def test_fastais_ramp_is_ours_without_its_last_point():
    start, end, n = 1e-6, 10.0, 300
    ours = start * (end / start) ** (np.arange(n) / (n - 1))  # i / (N - 1)
    num_it = n - 1
    theirs = start * (end / start) ** (np.arange(num_it) / num_it)  # fastai: i / num_it
    again = replay(ours, np.ones(n), CONVENTIONS["fastai"], num_iter=n)
    np.testing.assert_allclose(again.lrs, theirs, rtol=1e-12)
    assert again.num_iter == num_it and again.exact


def test_replay_cuts_after_the_first_point_above_the_stop():
    lrs = np.geomspace(1e-4, 1.0, 60)
    losses = np.r_[np.full(30, 1.0), np.full(30, 4.5)]  # jumps to 4.5 times at 30
    stop_4 = replay(lrs, losses, Convention(RAW, "seeded", 4.0, "i/(N-1)"), num_iter=60)
    assert len(stop_4.losses) == 31 and stop_4.exact  # the point above is kept
    stop_5 = replay(lrs, losses, Convention(RAW, "seeded", 5.0, "i/(N-1)"), num_iter=60)
    assert len(stop_5.losses) == 60 and stop_5.exact  # never above 5 times: all of it


def test_replay_says_when_the_record_stopped_before_the_convention_would_have():
    lrs, losses = np.geomspace(1e-4, 1.0, 40), np.ones(40)
    conv = Convention(RAW, "seeded", 4.0, "i/(N-1)")
    # recorded 40 of 60 planned points and nothing in them crosses 4 times: that tool
    # would have gone on past the record
    assert not replay(lrs, losses, conv, num_iter=60).exact
    assert replay(lrs, losses, conv, num_iter=40).exact  # the record ran its whole ramp


def _first_above(losses, conv):
    """The points a tool records: its EWMA step by step, up to the first point above
    ``stop`` times the lowest before it."""
    m, best = 0.0, math.inf
    for i, x in enumerate(losses):
        if conv.smoothing == "seeded":
            m = x if i == 0 else conv.beta * m + (1 - conv.beta) * x
            value = m
        else:
            m = conv.beta * m + (1 - conv.beta) * x
            value = m / (1 - conv.beta ** (i + 1))
        best = min(best, value)
        if value > conv.stop * best:
            return i + 1
    return len(losses)


def test_the_slower_smoothing_and_lower_stop_cut_where_each_tool_would_stop():
    lrs = np.geomspace(1e-4, 1.0, 200)
    losses = np.r_[np.full(100, 1.0), np.full(100, 20.0)]  # a jump at point 100
    cut = {
        name: len(replay(lrs, losses, conv, num_iter=200).losses)
        for name, conv in CONVENTIONS.items()
    }
    assert cut == {name: _first_above(losses, c) for name, c in CONVENTIONS.items()}
    assert 100 < cut["this package"] < cut["fastai"] < 199  # beta 0.98 lags more


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_iter": 3}, "num_iter must be the planned mini-batches"),
        ({"num_iter": 5.0}, "num_iter must be the planned mini-batches"),
    ],
)
def test_replay_refuses_what_it_cannot_read(kwargs, message):
    with pytest.raises(ValueError, match=message):
        replay(np.geomspace(1e-3, 1, 5), np.ones(5), CONVENTIONS["fastai"], **kwargs)
    with pytest.raises(ValueError, match="one shape"):
        replay(np.ones(4), np.ones(5), CONVENTIONS["fastai"], num_iter=5)
    with pytest.raises(ValueError, match="unknown ramp"):
        replay(np.ones(5), np.ones(5), Convention(0.9, "seeded", 4.0, "linear"), num_iter=5)


def test_suggest_all_reads_each_rule_from_each_conventions_replay():
    lrs = np.geomspace(1e-5, 1, 200)
    losses = 2.3 - np.tanh(2 * (np.log10(lrs) + 3)) + np.maximum(0, np.log10(lrs) + 1) ** 2
    found = suggest.suggest_all(lrs, losses, num_iter=200)
    assert set(found) == {(r, c) for r in suggest.RULES for c in CONVENTIONS}
    conv = CONVENTIONS["fastai"]
    again = replay(lrs, losses, conv, num_iter=200)
    rate, exact = found["valley", "fastai"]
    assert exact == again.exact
    assert rate == suggest.suggest(
        "valley", again.lrs, again.losses, beta=conv.beta, num_iter=again.num_iter
    )


# --------------------------------------------------------------------------- scores


def test_grid_steps_count_steps_of_root_ten():
    assert grid_steps(0.1, 0.01) == pytest.approx(2.0)
    assert grid_steps(0.01 * 10**0.25, 0.01) == pytest.approx(0.5)  # half a step above
    assert grid_steps(1e-3, 1e-2, step=10) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="step > 1"):
        grid_steps(0.1, 0.01, step=1.0)
    with pytest.raises(ValueError, match="must be > 0"):
        grid_steps(0.0, 0.01)


def test_regret_outside_the_curve_is_nan_when_asked():
    rates, acc = [1e-3, 1e-2, 1e-1], [0.7, 0.9, 0.8]
    assert math.isnan(suggest.regret(rates, acc, 1.0, outside="nan"))
    assert suggest.regret(rates, acc, 10**-1.5, outside="nan") == pytest.approx(0.05)
    with pytest.raises(ValueError, match="outside the curve's rates"):
        suggest.regret(rates, acc, 1.0)
    with pytest.raises(ValueError, match="outside must be"):
        suggest.regret(rates, acc, 1e-2, outside="clip")


def _sweep_of(curves):
    from fashion_optim import experiments as ex
    from fashion_optim.experiments import Result
    from fashion_optim.training import History, TrainingDivergedError

    points = {}
    for key, rates in curves.items():
        points[key] = {}
        for lr, (accs, diverged) in rates.items():
            spec = ex.NAMED[key].replace(lr=lr)
            cfg = spec.resolve("quick")
            history = [History.from_dict({"val_acc": [a], "val_loss": [1 - a]}) for a in accs]
            finished = [Result(cfg, s, h, 0, 0, {}, {}) for s, h in enumerate(history)]
            bad = [(s, TrainingDivergedError(1, 1, float("nan"), lr)) for s in range(diverged)]
            points[key][lr] = ex.SeedOutcomes(spec, finished, bad)
    return ex.Sweep(points, (0, 1))


def test_sensitivity_curve_counts_a_diverged_seed_at_chance_and_a_collapsed_one_as_is():
    sweep = _sweep_of({"adam": {1e-3: ([0.5, 0.7], 0), 1e-2: ([0.1, 0.9], 0), 1e-1: ([0.8], 1)}})
    rates, acc = plotting.sensitivity_curve(sweep, "adam")
    np.testing.assert_allclose(rates, [1e-3, 1e-2, 1e-1])
    np.testing.assert_allclose(acc, [0.6, 0.5, (0.8 + 0.1) / 2])
    every = _sweep_of({"adam": {1e-3: ([0.5, 0.7], 0), 1e-2: ([], 2)}})
    np.testing.assert_allclose(plotting.sensitivity_curve(every, "adam")[1], [0.6, 0.1])


def _scores():
    rows = []
    for seed in (0, 1):
        for conv in ("ours", "fastai"):
            shift = 0.5 if (conv == "fastai" and seed == 1) else 0.0
            rows.append(("Adam", "valley", conv, seed, 1e-3, 0.1 + shift, 0.01, True))
            rows.append(("Adam", "steep", conv, seed, 1e-2, 2.0, 0.2, conv == "ours"))
    scores = pd.DataFrame(
        rows,
        columns=["optimizer", "rule", "convention", "seed", "lr", "steps",
                 "regret, first rung", "exact"],
    )  # fmt: skip
    scores.insert(6, "regret, full budget", [0.0, np.nan] * 4)
    return scores


def test_suggestion_scorecard_shows_each_seeds_steps_and_regrets():
    card = plotting.suggestion_scorecard(_scores(), conventions=["fastai"])
    assert list(card.index) == [("Adam", "valley", "fastai"), ("Adam", "steep", "fastai")]
    row = card.loc[("Adam", "valley", "fastai")]
    assert row["suggested lr (median)"] == "0.001"
    assert row["grid steps from the choice"] == "+0.1, +0.6"
    assert row["regret, full budget"] == "0.000, 0.000"
    assert card.loc[("Adam", "steep", "fastai"), "regret, full budget"] == "out, out"
    assert list(card.columns)[2:] == ["regret, full budget", "regret, first rung"]


def test_scorecard_sentences_rank_only_rules_scored_on_every_seed():
    scores = _scores()
    scores.loc[scores["rule"] == "steep", "regret, first rung"] = np.nan
    scores.loc[0, ["lr", "regret, first rung"]] = [5e-5, np.nan]  # valley, seed 0, ours
    ends = {"Adam": (1e-4, 5e-3)}
    ranked = plotting.scorecard_sentences(scores, "ours", "first rung", ends)[0]
    assert ranked == (
        "Adam (ours), mean regret on the first rung: no rule is scored on every seed. "
        "Not ranked, because their suggestion left the first rung's rates on some seeds "
        "and a mean over the others would flatter them: valley (1 of 2 seeds: 1 below "
        "its lowest 0.0001); steep (2 of 2 seeds: 2 above its top rate 0.005)."
    )
    # a rule with a lower mean over the seeds it scores still ranks nowhere
    scores.loc[scores["rule"] == "steep", "regret, first rung"] = 0.3
    ranked = plotting.scorecard_sentences(scores, "ours", "first rung")[0]
    assert ranked.startswith("Adam (ours), mean regret on the first rung: steep 0.300 (0 of")
    assert ranked.endswith("flatter them: valley (1 of 2 seeds).")


def test_scorecard_sentences_print_one_shift_where_the_range_prints_equal():
    scores = _scores()
    fastai_valley = (scores["convention"] == "fastai") & (scores["rule"] == "valley")
    scores.loc[fastai_valley, "steps"] = scores.loc[fastai_valley, "steps"] - [0.0501, 0.0499]
    scores.loc[fastai_valley & (scores["seed"] == 1), "steps"] -= 0.5
    moved = plotting.scorecard_sentences(scores, "ours", "first rung")[1]
    assert "valley for Adam on 2 of 2 seeds (by -0.05 grid steps)" in moved


def test_scorecard_sentences_rank_by_regret_and_say_what_a_convention_moves():
    ranked, moved, exact = plotting.scorecard_sentences(_scores(), "ours", "first rung")
    assert ranked == (
        "Adam (ours), mean regret on the first rung: valley 0.010 (2 of 2 seeds within "
        "half a grid step of the choice), steep 0.200 (0 of 2)."
    )
    assert moved == (
        "Switching from ours to fastai moves valley for Adam on 1 of 2 seeds (by +0.50 "
        "grid steps); no other rule on any seed."
    )
    assert exact == (
        "Not exact (that tool would have trained past the recorded stop, so its "
        "suggestions may differ): Adam, seed 0 (fastai); Adam, seed 1 (fastai)."
    )
