"""Benchmark aggregation and plots: learning curves, AULC, penalty matrix.

Results are tidy tables with one row per (dataset, model, strategy, seed, round)
and the columns ``dataset, model, strategy, seed, round, n_labeled, accuracy``
(plus ``acquisition_seconds`` and ``training_seconds`` for :func:`timing_table`).
"""

from ._aggregate import (
    area_under_learning_curve,
    loss_scores,
    penalty_matrix,
    summarize,
    win_scores,
)
from ._plots import plot_learning_curves, plot_penalty_matrix, timing_table

__all__ = [
    "area_under_learning_curve",
    "loss_scores",
    "penalty_matrix",
    "plot_learning_curves",
    "plot_penalty_matrix",
    "summarize",
    "timing_table",
    "win_scores",
]
