"""Benchmarks: the runner of paper 001's evaluation, aggregation and plots.

:func:`run_benchmark` (``skal bench``) runs every (dataset, strategy, seed) cell
with the protocol of paper 001, section 4.3, resumably and in parallel (joblib or
Dask); :class:`BenchmarkProtocol` holds its parameters. :func:`write_report`
(``skal report``) aggregates and plots a results directory with the functions
below.

Results are tidy tables with one row per (dataset, model, strategy, seed, round)
and the columns ``dataset, model, strategy, seed, round, n_labeled, accuracy``
(plus ``acquisition_seconds`` and ``training_seconds`` for :func:`timing_table`).
"""

from ._aggregate import (
    area_under_learning_curve,
    loss_scores,
    penalty_matrix,
    stopping_points,
    summarize,
    summarize_stopping,
    win_scores,
)
from ._benchmark import run_benchmark
from ._monitors import RoundDiagnostics
from ._plots import (
    plot_aulc_ranking,
    plot_learning_curves,
    plot_penalty_matrix,
    plot_round_class_accuracy,
    plot_round_class_balance,
    plot_round_confidence,
    timing_table,
)
from ._protocol import BenchmarkProtocol
from ._report import find_collapses, write_report
from ._results import load_diagnostics, load_results
from ._runner import ParallelBackend, TaskFailure, run_cell, run_comparison
from ._setup import (
    available_datasets,
    flat_pixels,
    load_benchmark_data,
    make_mlp,
    make_model,
    split_pool,
)
from ._sweep import LR_GRID, sweep_learning_rate

__all__ = [
    "LR_GRID",
    "BenchmarkProtocol",
    "ParallelBackend",
    "RoundDiagnostics",
    "TaskFailure",
    "area_under_learning_curve",
    "available_datasets",
    "find_collapses",
    "flat_pixels",
    "load_benchmark_data",
    "load_diagnostics",
    "load_results",
    "make_mlp",
    "make_model",
    "run_benchmark",
    "run_cell",
    "run_comparison",
    "split_pool",
    "sweep_learning_rate",
    "write_report",
    "loss_scores",
    "penalty_matrix",
    "plot_aulc_ranking",
    "plot_learning_curves",
    "plot_penalty_matrix",
    "plot_round_class_accuracy",
    "plot_round_class_balance",
    "plot_round_confidence",
    "stopping_points",
    "summarize",
    "summarize_stopping",
    "timing_table",
    "win_scores",
]
