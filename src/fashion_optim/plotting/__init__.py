"""One figure style and the figure and table helpers the gallery and the note share.

Plotting never trains: every function here takes arrays (or results already computed
by :mod:`fashion_optim.experiments`) and draws them. Thirteen modules, one job each:
``style`` (colours and matplotlib settings), ``axes`` (helpers on one axes), ``tables``
(numbers for the reader), ``figures`` (the figures several pages draw), ``animation``
(paths drawn step by step, for a player the reader scrubs), ``sweeps`` (the
learning-rate sweep), ``rangetests`` (range tests over seeds and against the sweep),
``schedules`` (the learning-rate schedules' figures), ``headline`` (the
default-versus-tuned table), ``theory`` (momentum's convergence theory on a
quadratic), ``adam`` (Adam's step over each layer's weights), ``momentum`` (momentum
as a larger step) and ``landscape`` (what a plane through the weights leaves out, and a
random plane); everything is imported from here.

- :data:`COLORS` and :func:`color_for`: one colour per optimizer and per
  learning-rate schedule, the same on every page.
- :func:`use_style` and :func:`style_context`: constrained layout, readable fonts, a
  light grid and an *opaque* white background, so that figures stay legible when the
  site is shown in dark mode.
- :func:`band`: mean over seeds with a ±1 standard deviation band.
- :func:`smooth_curve`: a bias-corrected EWMA for noisy per-step curves.
- :func:`label_lr_axis`, :func:`label_step_axis`: axis labels with their units.
- :func:`learning_curves`: a history field per configuration, as bands over seeds.
- :func:`sweep_curves`: a learning-rate sweep, one band per optimizer, failed seeds
  marked (diverged apart from collapsed) and the chosen rate ringed; :func:`rung_curves`:
  the same after each rung of the successive halving, each rung's choice ringed.
- :func:`mean_std` and :func:`results_table`: "mean ± std" text and HTML-ready tables;
  :func:`per_seed_table`: each seed's final value, one column per configuration;
  :func:`largest_change`: how far a history still moved after a given epoch.
- :func:`toy_paths` and :func:`plane_paths`: optimizers' paths over the contours of a
  toy surface, or of the loss on the PCA plane of a network's trajectories.
- :func:`toy_animation` and :func:`plane_animation`: the same paths moving step by step
  (on the plane, beside the runs' losses), as a :class:`PathAnimation` that a page or a
  notebook shows as a player with a slider; :func:`frame_indices` picks its frames.
- :func:`plane_gap_panels`: the loss at each snapshot beside the contour value under
  it, and its distance from the plane; :func:`random_plane_contours`: the loss on a
  filter-normalised random plane through the final weights, in weight units.
- :func:`range_test_panel` (with :func:`range_test_blow_up`): a learning-rate range
  test, raw and smoothed loss, its suggestion and useful range; :func:`rate_drops`: how
  often a recorded learning rate went down.
- :func:`range_test_seeds` and :func:`range_test_with_sweep`: range tests over seeds,
  alone or above the learning-rate sweep's validation accuracy on the same rate axis;
  :func:`range_tests_against_sweep`: a column of those per optimizer, in one figure.
- :func:`range_test_table` and :func:`range_test_lag_table`: each seed's range test,
  its useful range and blow-up, and how far its smoothing lags;
  :func:`sensitivity_curve`, :func:`suggestion_scorecard` and
  :func:`scorecard_sentences`: suggestion rules scored by their regret on a sweep's curve
  and their distance from a chosen rate; :func:`log_median`: the median on a log scale.
- :func:`schedule_style` and :func:`schedule_ranking`: one line style per learning-rate
  schedule (its variants dashed, in its colour), and schedules compared on one metric;
  :func:`trace_schedules` and :func:`schedule_traces`: the rates each schedule sets;
  :func:`schedule_curves`: the schedules' learning curves and their paired differences
  from a reference; :func:`step_decay_curves`: curves with a step schedule's drops.
- :func:`rung_table`: one rung of the successive halving, rate by rate, as a table.
- :func:`tuning_table` (with :func:`rate_label`): each optimizer at its default rate
  and at the rate chosen on full-budget validation, side by side; :func:`seed_table`:
  every seed's validation and test accuracy; :func:`leader_verdict` and
  :func:`tuning_losses`: the headline's sentences, a leader named only where the paired
  and corrected tests resolve it (:func:`join_names`: "A, B and C");
  :func:`paired_test_lines`: paired, corrected tests and McNemar's, as printed lines.
- :func:`rate_curves` and :func:`rate_map`: the convergence rate of gradient descent,
  heavy ball and Nesterov on a quadratic against the learning rate, and over learning
  rate and momentum with the monotone, oscillating and divergent regions
  (:mod:`fashion_optim.theory`); :func:`stability_table` and :func:`stability_strips`:
  the quadratic's stability limits at measured curvatures beside where a sweep failed.
- :func:`adam_layer_quantiles` (with :func:`quantile_bands`, :func:`quantile_position`
  and :func:`position_words`): per layer, the spread over its weights of Adam's adapted
  step and effective rate against steps, and where one value sits in such a spread;
  :func:`uncorrected_step_ratio`, :func:`bias_correction_curves` and
  :func:`bias_correction_table`: Adam with and without its bias corrections, swept over
  one grid, compared at each variant's best rate and at matched early steps.
- :func:`larger_step_sentences`: whether momentum's gain over SGD is its larger step
  :math:`\\eta/(1-\\mu)`, at the default rate, across a rung's rates and tuned.

Examples
--------
>>> import matplotlib.pyplot as plt
>>> import numpy as np
>>> from fashion_optim import plotting
>>> plotting.use_style()
>>> fig, ax = plt.subplots()
>>> runs = np.random.default_rng(0).normal(size=(3, 50)).cumsum(axis=1)
>>> line, fill = plotting.band(ax, np.arange(50), runs, label="sgd")
"""

from .adam import (
    ADAM_QUANTITIES,
    adam_layer_quantiles,
    adam_moments,
    bias_correction_curves,
    bias_correction_table,
    position_words,
    quantile_bands,
    quantile_position,
    uncorrected_step_ratio,
)
from .animation import PathAnimation, frame_indices, plane_animation, toy_animation
from .axes import (
    band,
    label_lr_axis,
    label_step_axis,
    legend_below,
    plain_log_ticks,
    smooth_curve,
    smoothed_losses,
)
from .figures import (
    buffer_and_ewma,
    learning_curves,
    plane_paths,
    range_test_blow_up,
    range_test_panel,
    toy_paths,
)
from .headline import (
    drift_summary,
    join_names,
    leader_verdict,
    mcnemar_summary,
    paired_test_lines,
    rate_label,
    tuning_losses,
    tuning_table,
)
from .landscape import plane_gap_panels, random_plane_contours
from .momentum import larger_step_sentences
from .rangetests import (
    range_test_lag_table,
    range_test_seeds,
    range_test_table,
    range_test_with_sweep,
    range_tests_against_sweep,
    scorecard_sentences,
    sensitivity_curve,
    suggestion_scorecard,
)
from .schedules import (
    VARIANT_LINES,
    VARIANTS,
    schedule_curves,
    schedule_ranking,
    schedule_style,
    schedule_traces,
    step_decay_curves,
    trace_schedules,
)
from .style import COLORS, NEUTRAL, OKABE_ITO, STYLE, TOL_MUTED, color_for, style_context, use_style
from .sweeps import rung_curves, rung_table, sweep_curves
from .tables import (
    largest_change,
    log_median,
    mean_std,
    per_seed_table,
    rate_drops,
    results_table,
    say,
    seed_table,
)
from .theory import (
    METHOD_KEYS,
    METHOD_LABELS,
    rate_curves,
    rate_map,
    stability_strips,
    stability_table,
)

__all__ = [
    "ADAM_QUANTITIES",
    "COLORS",
    "METHOD_KEYS",
    "METHOD_LABELS",
    "NEUTRAL",
    "OKABE_ITO",
    "STYLE",
    "TOL_MUTED",
    "VARIANTS",
    "VARIANT_LINES",
    "PathAnimation",
    "adam_layer_quantiles",
    "adam_moments",
    "band",
    "bias_correction_curves",
    "bias_correction_table",
    "buffer_and_ewma",
    "color_for",
    "drift_summary",
    "frame_indices",
    "join_names",
    "label_lr_axis",
    "label_step_axis",
    "larger_step_sentences",
    "largest_change",
    "leader_verdict",
    "learning_curves",
    "legend_below",
    "log_median",
    "mcnemar_summary",
    "mean_std",
    "paired_test_lines",
    "per_seed_table",
    "plain_log_ticks",
    "plane_animation",
    "plane_gap_panels",
    "plane_paths",
    "position_words",
    "quantile_bands",
    "quantile_position",
    "random_plane_contours",
    "range_test_blow_up",
    "range_test_lag_table",
    "range_test_panel",
    "range_test_seeds",
    "range_test_table",
    "range_test_with_sweep",
    "range_tests_against_sweep",
    "rate_curves",
    "rate_drops",
    "rate_label",
    "rate_map",
    "results_table",
    "rung_curves",
    "rung_table",
    "say",
    "schedule_curves",
    "schedule_ranking",
    "schedule_style",
    "schedule_traces",
    "scorecard_sentences",
    "seed_table",
    "sensitivity_curve",
    "smooth_curve",
    "smoothed_losses",
    "stability_strips",
    "stability_table",
    "step_decay_curves",
    "style_context",
    "suggestion_scorecard",
    "sweep_curves",
    "toy_animation",
    "toy_paths",
    "trace_schedules",
    "tuning_losses",
    "tuning_table",
    "uncorrected_step_ratio",
    "use_style",
]
