"""The sweep, the choice on validation, the suggestion rules and the paired statistics."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from fashion_optim import experiments as ex
from fashion_optim import stats, suggest
from fashion_optim.experiments import Record, Result, SeedResults, Spec
from fashion_optim.experiments import train as train_module
from fashion_optim.training import History, TrainingDivergedError


@pytest.fixture
def small_test_set(monkeypatch, tmp_path):
    """A cache of the test's own, and 500 test images: the tests train tiny runs."""
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "cache"))
    full = ex.get_splits()
    small = dataclasses.replace(
        full, test_images=full.test_images[:500], test_labels=full.test_labels[:500]
    )
    monkeypatch.setattr(train_module, "get_splits", lambda: small)


# --------------------------------------------------------------------------- selection


def _seed_results(val_accs: list[float], name: str = "x") -> SeedResults:
    spec = Spec(name)
    results = []
    for seed, acc in enumerate(val_accs):
        history = History.from_dict({"val_acc": [0.1, acc], "val_loss": [2.0, 1.0 - acc]})
        results.append(Result(spec.resolve("quick"), seed, history, 9.9, 0.99, {}, {}))
    return SeedResults(spec, results)


def test_the_best_on_validation_is_the_best_mean_final_validation_accuracy():
    candidates = {"a": _seed_results([0.80, 0.82]), "b": _seed_results([0.85, 0.83])}
    assert ex.best_on_validation(candidates) == "b"
    assert ex.best_on_validation(candidates, "val_loss") == "b"  # lower loss
    assert ex.rank_on_validation({**candidates, "c": None}) == ["b", "a"]  # None: not eligible


def test_a_tie_goes_to_the_first_candidate_given():
    tie = {"first": _seed_results([0.8]), "second": _seed_results([0.8])}
    assert ex.best_on_validation(tie) == "first"


@pytest.mark.parametrize("metric", ["test_acc", "test_loss"])
def test_no_choice_is_made_on_a_test_metric(metric):
    with pytest.raises(ValueError, match="the test set reports the chosen configurations"):
        ex.best_on_validation({"a": _seed_results([0.8])}, metric)
    with pytest.raises(ValueError, match="valid metrics are"):
        ex.rank_on_validation({}, "train_loss")


def test_no_eligible_candidate_is_a_clear_error():
    with pytest.raises(ValueError, match="no eligible candidate among 2"):
        ex.best_on_validation({"a": None, "b": None})


# --------------------------------------------------------------------------- statistics


def test_the_paired_interval_is_scipys_paired_t_interval():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.9, 0.01, 5), rng.normal(0.89, 0.01, 5)
    d = stats.paired_difference(a, b, confidence=0.9)
    ref = scipy_stats.ttest_rel(a, b).confidence_interval(0.9)
    assert d.mean == pytest.approx(np.mean(a - b))
    assert (d.low, d.high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert d.excludes_zero == (ref.low > 0 or ref.high < 0)


def test_one_pair_has_no_interval_and_bad_input_is_named():
    d = stats.paired_difference([0.9], [0.8])
    assert (d.low, d.high, d.n) == (d.mean, d.mean, 1) and not d.excludes_zero
    with pytest.raises(ValueError, match="one value per seed"):
        stats.paired_difference([0.9, 0.8], [0.8])


def test_paired_by_seed_pairs_the_seeds_both_finished():
    a = _seed_results([0.80, 0.90, 0.70])  # seeds 0, 1, 2
    b = SeedResults(Spec("b"), _seed_results([0.75, 0.60, 0.65]).results[::2])  # seeds 0, 2
    d = stats.paired_by_seed(a, b, "val_acc")
    ref = stats.paired_difference([0.80, 0.70], [0.75, 0.65])
    assert d == ref and d.n == 2


def test_binomial_standard_error():
    assert stats.binomial_se(0.9, 10_000) == pytest.approx(0.003)
    assert stats.binomial_se(0.5, 100) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="accuracy must be in"):
        stats.binomial_se(1.2, 10)


# --------------------------------------------------------------------------- suggestion rules


def test_smoothings_follow_their_recursions():
    losses = np.array([3.0, 1.0, 2.0, 5.0])
    beta = 0.6
    m, corrected = 0.0, []
    for i, x in enumerate(losses):
        m = beta * m + (1 - beta) * x
        corrected.append(m / (1 - beta ** (i + 1)))
    seeded = [losses[0]]
    for x in losses[1:]:
        seeded.append(beta * seeded[-1] + (1 - beta) * x)
    np.testing.assert_allclose(suggest.smooth_losses(losses, beta, "corrected"), corrected)
    np.testing.assert_allclose(suggest.smooth_losses(losses, beta, "seeded"), seeded)
    with pytest.raises(ValueError, match="mode must be one of"):
        suggest.smooth_losses(losses, beta, "raw")


def _ramp():
    lrs = np.geomspace(1e-5, 1, 200)
    # falls fastest at 1e-3 (per unit of log rate), lowest near 0.1, then blows up
    losses = 2.3 - np.tanh(2 * (np.log10(lrs) + 3)) + np.maximum(0, np.log10(lrs) + 1) ** 2 * 40
    return lrs, losses


@pytest.mark.parametrize("rule", ["steepest", "steep", "min_gradient"])
def test_slope_rules_find_the_steepest_point_of_a_known_curve(rule):
    lrs, losses = _ramp()
    found = suggest.suggest(rule, lrs, losses, beta=0.01, smoothing="seeded")
    assert abs(np.log10(found) - (-3)) < 0.05


def test_minimum_over_ten_is_a_tenth_of_the_lowest_point():
    lrs, losses = _ramp()
    lowest = lrs[np.argmin(losses[20:-5]) + 20]
    found = suggest.suggest("minimum/10", lrs, losses, beta=0.01, smoothing="seeded")
    assert found == pytest.approx(lowest / 10)


def test_valley_lies_two_thirds_into_the_longest_decreasing_stretch():
    lrs = np.arange(1.0, 61.0)
    losses = np.r_[np.linspace(5, 1, 40), np.linspace(1.1, 9, 20)]  # falls for 40 points
    found = suggest.suggest("valley", lrs, losses, beta=0.01, smoothing="seeded", num_iter=60)
    # fastai reads from num_iter // 10 = 6: the fall spans points 6..39 of the ramp
    start = 6 + (40 - 6) // 3 + (40 - 6) // 6 - 1
    assert found == lrs[start] or abs(found - lrs[start]) <= 1


def test_our_rule_is_what_range_test_suggests(small_test_set):
    res = ex.run_range_test(
        ex.NAMED["momentum"].replace(train_subset=1000),
        0,
        num_iter=60,
        profile="quick",
        fresh=True,
        progress=False,
    )
    found = suggest.suggest("steepest", res.lrs, res.losses, beta=0.95, smoothing="corrected")
    assert found == res.suggested_lr
    np.testing.assert_allclose(suggest.smooth_losses(res.losses, 0.95), res.smoothed, rtol=1e-12)


def test_too_short_a_test_is_a_clear_error():
    with pytest.raises(ValueError, match="run the range test longer"):
        suggest.suggest("valley", np.geomspace(1e-3, 1, 30), np.ones(30))
    with pytest.raises(ValueError, match="unknown rule"):
        suggest.suggest("best", np.geomspace(1e-3, 1, 60), np.ones(60))


# --------------------------------------------------------------------------- the sweep


def test_grids_step_by_root_ten_and_hold_every_default_rate():
    for key, grid in ex.SWEEP_GRIDS.items():
        ratios = np.diff(np.log10(grid))
        np.testing.assert_allclose(ratios, 0.5, atol=1e-3)
        assert ex.NAMED[key].lr in grid
    assert ex.NAMED["sgd_effective"].lr in ex.SWEEP_GRIDS["sgd"]


def test_sweep_specs_keep_the_named_optimizer_on_the_short_budget():
    specs = ex.sweep_specs(["nesterov"])
    assert list(specs) == [("nesterov", lr) for lr in ex.SWEEP_GRIDS["nesterov"]]
    budget = ex.SHORT_BUDGET.resolve("full")
    for (_, lr), spec in specs.items():
        cfg = spec.resolve("full")
        assert (cfg.lr, cfg.optimizer_kwargs) == (lr, {"momentum": 0.9, "nesterov": True})
        assert (cfg.epochs, cfg.train_subset, cfg.val_subset, cfg.record) == (
            budget.epochs,
            budget.train_subset,
            budget.val_subset,
            Record(),
        )
    with pytest.raises(ValueError, match="no sweep grid for"):
        ex.sweep_specs(["rmsprop"])


def test_effective_rate():
    assert ex.effective_lr(ex.NAMED["sgd"]) == 0.01
    assert ex.effective_lr(0.03162, 0.9) == pytest.approx(0.3162)


def _point(spec, accs, diverged=0):
    point = ex.SeedOutcomes(spec, _seed_results(accs).results)
    for seed in range(diverged):
        point.diverged.append((seed, TrainingDivergedError(1, 2, float("nan"), 1.0)))
    return point


def test_the_sweep_chooses_among_rates_where_no_seed_diverged():
    spec = ex.NAMED["sgd"]
    sweep = ex.Sweep(
        {
            "sgd": {
                0.01: _point(spec, [0.70, 0.72]),
                0.1: _point(spec, [0.80, 0.80]),
                1.0: _point(spec, [0.95], diverged=1),  # best finished seed, but one diverged
            }
        },
        (0, 1),
    )
    assert sweep.best_rate("sgd") == 0.1
    assert sweep.largest_stable_rate("sgd") == 0.1
    sweep.points["momentum"] = {
        0.01: _point(spec, [0.8, 0.8]),
        0.03162: _point(spec, [0.7, 0.7]),
        0.1: _point(spec, [0.9], diverged=1),
    }
    assert ex.schedule_rates(sweep) == (0.01, 0.03162)  # the next rate up
    sweep.points["momentum"][0.03162] = _point(spec, [0.7], diverged=1)
    assert ex.schedule_rates(sweep) == (0.01, 0.01)  # it diverged: the chosen rate
    sweep.points["momentum"] = {0.01: _point(spec, [0.8, 0.8])}
    assert ex.schedule_rates(sweep) == (0.01, 0.01)  # the top of the grid
    curve = sweep.curve("sgd")
    np.testing.assert_allclose(curve["mean"], [0.71, 0.80, 0.95])
    assert curve["diverged"].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="not 'test_acc'"):
        sweep.curve("sgd", "test_acc")
    tuned = ex.tuned_specs(sweep)["sgd"]
    # tuned at 0.1, plain SGD is the note's run at lr / (1 - momentum): one cache entry
    assert tuned.resolve("full") == ex.NAMED["sgd_effective"].resolve("full")


def test_run_sweep_keeps_diverged_runs_as_such(small_test_set, monkeypatch):
    monkeypatch.setitem(ex.tuning.SWEEP_GRIDS, "sgd", (0.01, 1e3))
    monkeypatch.setattr(ex.tuning, "COLLAPSE_BELOW", 0.0)  # a few steps learn little
    monkeypatch.setattr(
        ex.tuning,
        "SHORT_BUDGET",
        ex.SHORT_BUDGET.replace(epochs=1, train_subset=500, val_subset=200),
    )
    sweep = ex.run_sweep(["sgd"], profile="quick", progress=False)
    assert sweep.seeds == (0, 1)
    fine, blown = sweep.points["sgd"][0.01], sweep.points["sgd"][1e3]
    assert fine.complete and [r.seed for r in fine.finished] == [0, 1]
    assert not blown.complete and [seed for seed, _ in blown.diverged] == [0, 1]
    assert blown.results is None
    assert sweep.best_rate("sgd") == 0.01


# --------------------------------------------------------------------------- failures


def test_a_best_mean_point_with_a_collapsed_seed_is_not_chosen():
    spec = ex.NAMED["momentum"]
    good, stuck = [0.60, 0.62, 0.61], [0.95, 0.96, 0.15]  # one seed of 0.1 at chance
    sweep = ex.Sweep({"momentum": {0.01: _point(spec, good), 0.1: _point(spec, stuck)}}, (0, 1, 2))
    assert np.mean(stuck) > np.mean(good)  # the trap: the best mean has a collapsed seed
    assert sweep.points["momentum"][0.1].collapsed == [(2, 0.15)]
    assert sweep.points["momentum"][0.1].failure_note() == "1 of 3 seeds failed (1 collapsed)"
    assert sweep.best_rate("momentum") == 0.01
    assert sweep.largest_stable_rate("momentum") == 0.01
    curve = sweep.curve("momentum")
    assert curve["collapsed"].tolist() == [0, 1] and curve["diverged"].tolist() == [0, 0]
    assert ex.promote(sweep, "momentum", keep_every=1) == [0.01]


def test_collapse_is_judged_on_the_final_validation_accuracy_against_its_margin():
    spec = ex.NAMED["sgd"]
    edge = _point(spec, [ex.COLLAPSE_BELOW, np.nextafter(ex.COLLAPSE_BELOW, 0), float("nan")])
    assert [seed for seed, _ in edge.collapsed] == [1, 2]  # the margin itself is not
    assert ex.COLLAPSE_BELOW == 2 * ex.CHANCE
    # a model at chance on 2,000 images reaching the margin: a negligible probability
    assert scipy_stats.binom.sf(0.2 * 2000 - 1, 2000, ex.CHANCE) < 1e-39


def test_the_one_cycle_peak_never_lands_on_a_rate_that_failed_at_any_rung():
    spec = ex.NAMED["momentum"]
    first = ex.Sweep(
        {"momentum": {0.01: _point(spec, [0.8] * 3), 0.03162: _point(spec, [0.7, 0.7, 0.1])}},
        (0, 1, 2),
    )
    last = ex.Sweep({"momentum": {0.01: _point(spec, [0.9] * 3)}}, (0, 1, 2))
    tuning = ex.Tuning([first, last], (1, 10), (0, 1, 2))
    assert ex.schedule_rates(tuning) == (0.01, 0.01)  # 0.03162 collapsed at rung 1
    first.points["momentum"][0.03162] = _point(spec, [0.7] * 3)
    assert ex.schedule_rates(tuning) == (0.01, 0.03162)


# --------------------------------------------------------------------------- halving


def test_promote_keeps_the_best_third_of_the_rates_that_did_not_fail():
    spec = ex.NAMED["sgd"]
    accs = {0.001: 0.5, 0.003: 0.6, 0.01: 0.7, 0.03: 0.8, 0.1: 0.9, 0.3: 0.95, 1.0: 0.99}
    points = {lr: _point(spec, [a, a, a]) for lr, a in accs.items()}
    points[1.0] = _point(spec, [0.99, 0.99], diverged=1)  # the best finished, one diverged
    points[0.3] = _point(spec, [0.99, 0.99, 0.12])  # the best mean, one seed collapsed
    rung = ex.Sweep({"sgd": points}, (0, 1, 2))
    assert ex.promote(rung, "sgd") == [0.1, 0.03]  # 7 // 3 = 2, failures left out
    assert ex.promote(rung, "sgd", keep_every=7) == [0.1]
    assert ex.promote(ex.Sweep({"sgd": {0.1: points[1.0]}}, (0,)), "sgd") == []
    with pytest.raises(ValueError, match="keep_every must be"):
        ex.promote(rung, "sgd", keep_every=0)


def test_successive_halving_promotes_on_injected_results_and_chooses_at_full_budget(
    monkeypatch,
):
    """No training: each rung's results are made up from a table of final validation
    accuracies by (key, rate, epochs), so the promotions can be checked exactly."""
    grid = (0.001, 0.003162, 0.01, 0.03162, 0.1, 0.3162, 1.0)
    monkeypatch.setitem(ex.tuning.SWEEP_GRIDS, "sgd", grid)
    # the first rung prefers large rates; at the full budget 0.03162 wins, and the
    # default 0.01 (never promoted) joins the last rung
    table = {
        1: dict(zip(grid, (0.3, 0.5, 0.6, 0.7, 0.8, 0.82, 0.1), strict=True)),  # 1.0 collapses
        3: {0.1: 0.85, 0.3162: 0.84},
        10: {0.1: 0.88, 0.01: 0.86, 0.3162: 0.83},
    }
    calls = []

    def fake(specs, *, profile=None, progress=None, seeds=None):
        calls.append({k: s.resolve("full").epochs for k, s in specs.items()})
        out = {}
        for (key, lr), spec in specs.items():
            epochs = spec.resolve("full").epochs
            out[(key, lr)] = _point(spec, [table[epochs][lr]] * 3)
        return out

    monkeypatch.setattr(ex.tuning, "run_outcomes", fake)
    tuning = ex.run_tuning(["sgd"], profile="full")
    assert tuning.epochs == (1, 3, 10)
    assert [sorted(c) for c in calls] == [
        [("sgd", lr) for lr in grid],
        [("sgd", 0.1), ("sgd", 0.3162)],  # the best two of seven; 1.0 collapsed
        [("sgd", 0.01), ("sgd", 0.1), ("sgd", 0.3162)],  # the best of two, the default,
        # and the first rung's own choice, to measure what it costs at the full budget
    ]
    assert [sorted(c.values()) for c in calls][1:] == [[3, 3], [10, 10, 10]]
    assert tuning.first_rung_choice("sgd") == 0.3162
    assert tuning.best_rate("sgd") == 0.1
    assert tuning.last.points["sgd"][0.01].spec == ex.NAMED["sgd"]  # the shared run
    assert tuning.last.points["sgd"][0.1].spec == ex.NAMED["sgd_effective"]
    # 7 rates x 1 epoch, 2 x 2 more, then 2 x 7 more and the default 9 more, x 3 seeds
    assert tuning.epoch_cost() == 3 * (7 + 2 * 2 + 2 * 7 + 9)


def test_rung_specs_differ_from_the_shared_run_only_in_epochs():
    shared = ex.NAMED["adam"].resolve("full").to_dict()
    rung = ex.tuning._rung_spec("adam", ex.NAMED["adam"].lr, 3, last=False)
    diff = {k for k, v in rung.resolve("full").to_dict().items() if shared[k] != v}
    assert diff == {"epochs"}
    spec = ex.full_budget_spec("momentum", 0.03162)
    assert spec.lr == 0.03162 and spec.record == ex.NAMED["momentum"].record
    with pytest.raises(ValueError, match="unknown configuration"):
        ex.full_budget_spec("rmsprop", 0.1)


def test_compared_configurations_take_the_profiles_extra_seeds():
    assert ex.current_profile("full").compare_seeds == (0, 1, 2, 3, 4)
    assert ex.current_profile("quick").compare_seeds == ex.current_profile("quick").seeds
    assert ex.Profile("x", (0, 1), None, None).compare_seeds == (0, 1)  # none given: seeds
    with pytest.raises(ValueError, match="must hold every seed"):
        ex.Profile("x", (0, 1), None, None, compare_seeds=(1, 2))


def test_compared_outcomes_give_chosen_rates_and_extra_runs_the_extra_seeds(monkeypatch):
    """The chosen rates and the extra runs over ``compare_seeds``, a default rate over the
    tuning's seeds, unless it is also the chosen one (one configuration, more seeds)."""
    full = ex.current_profile("full")
    last = {
        "sgd": {
            0.01: _point(ex.NAMED["sgd"], [0.80] * 3),
            0.1: _point(ex.NAMED["sgd_effective"], [0.85] * 3),
        },
        "adam": {0.001: _point(ex.NAMED["adam"], [0.90] * 3)},
    }
    tuning = ex.Tuning([ex.tuning.Sweep(last, full.seeds)], (10,), full.seeds)
    seen = {}

    def fake(specs, *, profile=None, progress=None, seeds=None):
        seen.update(seeds)
        return {k: _point(spec, [0.5] * len(seeds[k])) for k, spec in specs.items()}

    monkeypatch.setattr(ex.tuning, "run_outcomes", fake)
    onecycle = ex.full_budget_onecycle(0.1)
    out = ex.compared_outcomes(
        tuning,
        ["sgd", "adam"],
        {("tuned", "onecycle"): onecycle, ("default", "sgd_effective"): ex.NAMED["sgd_effective"]},
        profile=full,
    )
    assert seen == {
        ("default", "sgd"): full.seeds,  # reported only: the tuning's seeds
        ("tuned", "sgd"): full.compare_seeds,  # chosen: 0.1, the same runs as ...
        ("default", "sgd_effective"): full.compare_seeds,  # ... this one, so more seeds
        ("default", "adam"): full.compare_seeds,  # the default is the chosen rate
        ("tuned", "adam"): full.compare_seeds,
        ("tuned", "onecycle"): full.compare_seeds,
    }
    assert out[("tuned", "sgd")].spec == ex.NAMED["sgd_effective"].replace(
        name=out[("tuned", "sgd")].spec.name
    )
    with pytest.raises(ValueError, match="no seeds for"):
        ex.run_outcomes({"a": ex.NAMED["sgd"]}, seeds={"a": ()})
    with pytest.raises(ValueError, match="no entry for"):
        ex.run_outcomes({"a": ex.NAMED["sgd"]}, seeds={"b": (0,)})


# --------------------------------------------------------------------------- paired tests


def test_holm_matches_its_closed_form():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1, then a running maximum
    np.testing.assert_allclose(stats.holm(p), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])  # capped
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        stats.holm([0.1, 1.5])


def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_images():
    labels = np.zeros(100, dtype=np.uint8)
    a, b = labels.copy(), labels.copy()
    a[:3] = 1  # a wrong on 3 images, b wrong on 10 others
    b[10:20] = 1
    t = stats.mcnemar(a, b, labels)
    assert (t.only_a, t.only_b, t.n) == (10, 3, 100)
    closed = 2 * sum(math.comb(13, k) for k in range(4)) / 2**13
    assert t.pvalue == pytest.approx(closed)
    assert t.difference == pytest.approx(0.07)
    d = (a == labels).astype(float) - (b == labels).astype(float)
    assert t.se == pytest.approx(d.std() / math.sqrt(100))
    assert stats.mcnemar(a, a, labels).pvalue == 1.0
    with pytest.raises(ValueError, match="one entry per image"):
        stats.mcnemar(a, b[:5], labels)


def test_paired_tests_correct_for_their_number_and_draw_no_interval_on_two_seeds():
    rng = np.random.default_rng(1)
    a = rng.normal(0.90, 0.01, 5)
    pairs = {
        "big": (a, a - 0.02 + rng.normal(0, 0.003, 5)),
        "none": (a, a + rng.normal(0, 0.01, 5)),
    }
    out = stats.paired_tests(pairs, alpha=0.05)
    for name, (x, y) in pairs.items():
        ref = scipy_stats.ttest_rel(x, y)
        ci = ref.confidence_interval(1 - 0.05 / 2)  # Bonferroni over two pairs
        assert out[name].pvalue == pytest.approx(ref.pvalue)
        assert (out[name].difference.low, out[name].difference.high) == (
            pytest.approx(ci.low),
            pytest.approx(ci.high),
        )
    np.testing.assert_allclose(
        [out[n].pvalue_holm for n in pairs], stats.holm([out[n].pvalue for n in pairs])
    )
    assert out["big"].resolved and not out["none"].resolved
    # Holm's step-down rejects the second pair (p 0.046 against alpha / 1) while its
    # Bonferroni interval (alpha / 2) still holds zero: a page prints the interval, so
    # the pair is not resolved
    zero = [0.0] * 5
    held = stats.paired_tests(
        {
            "clear": ([0.05, 0.051, 0.049, 0.05, 0.052], zero),
            "step-down only": ([0.010, 0.013, 0.006, 0.012, -0.002], zero),
        }
    )["step-down only"]
    assert held.pvalue_holm < 0.05 and held.difference.low < 0 < held.difference.high
    assert not held.resolved
    two = stats.paired_tests({"x": ([0.9, 0.8], [0.7, 0.6])})["x"]
    assert math.isnan(two.difference.low) and not two.resolved
    assert str(two) == "+0.2000 (seeds: +0.2000, +0.2000)"


# --------------------------------------------------------------------------- headline


def _named_results(key, val_test):
    spec = ex.NAMED[key]
    results = []
    for seed, (v, t) in enumerate(val_test):
        history = History.from_dict({"val_acc": [0.5, v], "val_loss": [1.0, 1 - v]})
        results.append(Result(spec.resolve("quick"), seed, history, 0.3, t, {}, {}))
    return SeedResults(spec, results)


NAMES = {"sgd": "SGD", "momentum": "SGD + momentum", "adam": "Adam"}


def test_a_leader_is_named_only_when_every_corrected_comparison_resolves_it():
    from fashion_optim import plotting

    base = [0.90, 0.91, 0.905, 0.912, 0.899]
    lead = _named_results("adam", [(0.92, t + 0.02) for t in base])
    close = _named_results(
        "momentum",
        [
            (0.91, t + 0.02 + d)
            for t, d in zip(base, (0.01, -0.012, 0.004, -0.006, 0.003), strict=True)
        ],
    )
    far = _named_results("sgd", [(0.80, t - 0.05) for t in base])
    key, text, tests = plotting.leader_verdict({"sgd": far, "adam": lead}, NAMES)
    assert key == "adam" and text.startswith("Adam leads:") and tests["sgd"].resolved
    key, text, tests = plotting.leader_verdict({"sgd": far, "adam": lead, "momentum": close}, NAMES)
    assert key == "adam" and not tests["momentum"].resolved
    assert "do not tell it apart on the test set from SGD + momentum" in text
    assert "no leader is named" in text and tests["sgd"].m == 2
    two = {k: SeedResults(r.spec, r.results[:2]) for k, r in {"sgd": far, "adam": lead}.items()}
    assert "no interval is drawn" in plotting.leader_verdict(two, NAMES)[1]


def test_the_page_says_when_tuning_made_an_optimizer_worse_on_validation():
    from fashion_optim import plotting

    default = {"adam": _named_results("adam", [(0.90, 0.9)] * 3)}
    worse = _named_results("adam", [(0.88, 0.9)] * 3)
    worse.spec = ex.full_budget_spec("adam", 0.01)
    worse.results = [
        dataclasses.replace(r, config=worse.spec.resolve("quick")) for r in worse.results
    ]
    text = plotting.tuning_losses(default, {"adam": worse}, NAMES)
    assert text.startswith("Tuning made Adam (-0.0200) worse on validation")
    # the test side: tuned minus default paired by seed, equal here (0.9 on every seed)
    assert "On the test set, tuned minus default rate over 3 paired seeds (Holm over 1)" in text
    assert "Adam +0.0000" in text and "no resolved gain, no resolved loss" in text
    same = plotting.tuning_losses(default, {"adam": default["adam"]}, NAMES)
    assert same.startswith("Tuning made no optimizer worse on validation than its default")
    # paired over the seeds both ran: a default over 3 seeds against a choice over 5
    five = _named_results("adam", [(0.91, 0.9)] * 3 + [(0.80, 0.8)] * 2)
    five.spec = worse.spec
    five.results = [
        dataclasses.replace(r, config=worse.spec.resolve("quick")) for r in five.results
    ]
    assert plotting.tuning_losses(default, {"adam": five}, NAMES).startswith(
        "Tuning made no optimizer worse"
    )


def test_rung_curves_ring_each_rungs_choice_and_mark_failures_apart():
    import matplotlib.pyplot as plt

    from fashion_optim import plotting

    spec = ex.NAMED["sgd"]
    first = ex.Sweep(
        {
            "sgd": {
                0.01: _point(spec, [0.6] * 3),
                0.1: _point(spec, [0.7] * 3),
                1.0: _point(spec, [0.1, 0.1, 0.9]),
            }
        },
        (0, 1, 2),
    )
    last = ex.Sweep(
        {"sgd": {0.01: _point(spec, [0.9] * 3), 0.1: _point(spec, [0.85] * 3)}}, (0, 1, 2)
    )
    tuning = ex.Tuning([first, last], (1, 10), (0, 1, 2))
    fig, ax = plt.subplots()
    assert plotting.rung_curves(ax, tuning, "sgd", label="SGD") == [0.1, 0.01]
    collapsed = [line for line in ax.lines if line.get_marker() == "v"]
    assert [line.get_xdata()[0] for line in collapsed] == [1.0]
    assert not [line for line in ax.lines if line.get_marker() == "x"]
    assert {t.get_text() for t in ax.texts} == {"2"}  # two seeds collapsed at 1.0
    assert [line.get_label() for line in ax.lines if line.get_label().startswith("SGD")] == [
        "SGD, 1 epoch",
        "SGD, 10 epochs",
    ]
    plt.close(fig)


def test_the_seed_table_shows_every_seed_and_marks_failures():
    from fashion_optim import plotting

    spec = ex.NAMED["sgd"]
    point = _point(spec, [0.9, 0.1], diverged=0)
    point.diverged.append((2, TrainingDivergedError(1, 2, float("nan"), 1.0)))
    table = plotting.seed_table({"SGD": point})
    assert table.loc["SGD"].tolist() == [
        "0.9000 / 0.9900",
        "0.1000 / 0.9900 (collapsed)",
        "diverged",
    ]


# --------------------------------------------------------------------------- bias correction


@pytest.mark.parametrize("profile", ["full", "quick"])
def test_the_bias_correction_ablation_is_adams_first_rung_for_both_variants(profile):
    specs = ex.bias_correction_specs()
    grid = ex.SWEEP_GRIDS["adam"]
    assert list(specs) == [(lr, c) for lr in grid for c in (True, False)]  # one grid, both
    for (lr, corrected), spec in specs.items():
        cfg = spec.resolve(profile)
        assert cfg.epochs == ex.RUNG_EPOCHS(profile)[0]  # the first rung's budget
        assert (cfg.optimizer, cfg.lr) == ("scratch_adam", lr)
        assert cfg.optimizer_kwargs == {"bias_correction": corrected}
        assert not cfg.record.recorders()  # no records: the history only
        # everything else (data, batch, model) is the tuning's first rung of Adam
        rung = ex.full_budget_spec("adam", lr).replace(
            name=spec.name,
            optimizer="scratch_adam",
            optimizer_kwargs={"bias_correction": corrected},
            epochs=ex.RUNG_EPOCHS(profile)[0],
            record=Record(),
        )
        assert cfg == rung.resolve(profile)
    assert specs[grid[0], False].name == f"Adam without bias correction, lr {grid[0]:g}"


@pytest.mark.parametrize("lrs", [(), (0.0,), (1e-3, -1e-3), ("0.001",), (True,)])
def test_the_bias_correction_ablation_refuses_rates_that_are_not_positive_numbers(lrs):
    with pytest.raises(ValueError, match=r"lrs must be positive numbers.*Adam's grid"):
        ex.bias_correction_specs(lrs)


def test_the_drift_of_the_choice_is_counted_by_direction():
    from fashion_optim import plotting

    def sweep(table):
        points = {
            k: {lr: _point(ex.full_budget_spec(k, lr), [acc] * 3) for lr, acc in rates.items()}
            for k, rates in table.items()
        }
        return ex.tuning.Sweep(points, (0, 1, 2))

    first = sweep({"sgd": {0.1: 0.8, 0.3162: 0.7}, "adam": {0.001: 0.80, 0.01: 0.85}})
    last = sweep({"sgd": {0.1: 0.9, 0.3162: 0.85}, "adam": {0.001: 0.90, 0.01: 0.88}})
    tuning = ex.Tuning([first, last], (1, 10), (0, 1, 2))
    text = plotting.drift_summary(tuning, {"sgd": "SGD", "adam": "Adam"})
    assert text == (
        "The first rung alone chose the full budget's rate for SGD; it chose a larger "
        "rate for Adam (0.01 against 0.001)."
    )
