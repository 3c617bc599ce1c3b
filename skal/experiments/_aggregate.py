"""Aggregate active-learning results: penalty matrix, AULC and summaries.

All functions take a tidy results table (a :class:`pandas.DataFrame`) with one row
per (dataset, model, strategy, seed, round) and the columns ``dataset, model,
strategy, seed, round, n_labeled, accuracy``; extra columns are ignored.

The pairwise penalty matrix follows paper 001, section 4.5 (after Ash et al.,
2020): within each round of each experiment, every pair of strategies is compared
with a paired two-sided t-test over seeds, the p-values of the round are corrected
with Benjamini-Hochberg, and each significant win of ``i`` over ``j`` adds
``1 / n_rounds`` of that experiment to ``P[i, j]``.
"""

import warnings
from itertools import combinations
from numbers import Real

import numpy as np
import pandas as pd
from scipy.integrate import trapezoid
from scipy.stats import false_discovery_control, ttest_rel

__all__ = [
    "area_under_learning_curve",
    "loss_scores",
    "penalty_matrix",
    "stopping_points",
    "summarize",
    "summarize_stopping",
    "win_scores",
]

EXPERIMENT = ("dataset", "model")


def _check_results(results, columns, name="results"):
    """Raise a clear error if ``results`` is not a DataFrame with ``columns``."""
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(results)}.")
    missing = [c for c in columns if c not in results.columns]
    if missing:
        raise ValueError(
            f"{name} is missing the required column(s) {missing}; it has "
            f"{list(results.columns)}."
        )


def _check_unique(results, keys, name="results"):
    dup = results.duplicated(list(keys), keep=False)
    if dup.any():
        example = results.loc[dup, list(keys)].iloc[0].to_dict()
        raise ValueError(
            f"{name} has {int(dup.sum())} rows sharing the same {list(keys)}, "
            f"e.g. {example}; expected one row per combination."
        )


def _select_rounds(rounds, which):
    """The rounds (sorted array) of one experiment that ``which`` selects."""
    n = len(rounds)
    if which is None or (isinstance(which, str) and which == "all"):
        return rounds
    if isinstance(which, str) and which == "early":
        return rounds[: (n + 1) // 2]
    if isinstance(which, str) and which == "late":
        return rounds[n // 2 :]
    if callable(which):
        return np.asarray(which(rounds))
    if isinstance(which, str):
        raise ValueError(
            f"rounds must be 'all', 'early', 'late', a list or a callable; "
            f"got {which!r}."
        )
    return rounds[np.isin(rounds, list(which))]


def penalty_matrix(
    results,
    *,
    alpha=0.05,
    rounds=None,
    metric="accuracy",
    experiment=EXPERIMENT,
):
    """Pairwise penalty matrix of paper 001, section 4.5.

    For each experiment (a ``(dataset, model)`` combination) and each selected
    round, every pair of strategies is compared with a paired two-sided t-test
    (:func:`scipy.stats.ttest_rel`) on the ``metric`` of the seeds that both
    strategies have. The p-values of all pairs of the round are corrected with
    Benjamini-Hochberg (:func:`scipy.stats.false_discovery_control`). When the
    adjusted p-value is below ``alpha``, the strategy with the larger mean over
    the common seeds wins and ``1 / n_rounds`` is added to ``P[winner, loser]``,
    where ``n_rounds`` is the number of selected rounds of that experiment, so an
    experiment contributes at most 1 to each entry. Matrices are summed over
    experiments.

    Degenerate cases: a pair with fewer than 2 common seeds is not tested (and is
    left out of the correction); identical results (zero differences) give no
    win; a difference that is the same nonzero value on every seed gives
    ``t = +-inf, p = 0``, a win. NaN metrics are dropped.

    Parameters
    ----------
    results : DataFrame
        Tidy results with columns ``strategy, seed, round``, ``metric`` and the
        ``experiment`` columns.
    alpha : float, default=0.05
        False discovery rate of the Benjamini-Hochberg correction.
    rounds : {'all', 'early', 'late'}, list, callable or None, default=None
        Rounds to evaluate in each experiment. None or 'all': every round;
        'early': the first half of the experiment's sorted rounds, 'late': the
        second half (with an odd count the middle round is in both); a list:
        these round values; a callable: called with the experiment's sorted
        round values, returns the ones to keep (e.g. ``lambda r: r[-3:]`` for
        the last three rounds, as in the paper's appendix).
    metric : str, default="accuracy"
        Column compared (larger is better).
    experiment : tuple of str, default=("dataset", "model")
        Columns that identify an experiment.

    Returns
    -------
    P : DataFrame of shape (n_strategies, n_strategies)
        ``P.loc[i, j]``: how often ``i`` significantly beat ``j``. Rows are
        winners, columns losers, strategies in sorted order, zero diagonal.
    """
    experiment = list(experiment)
    _check_results(results, [*experiment, "strategy", "seed", "round", metric])
    if not isinstance(alpha, Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a float in (0, 1), got {alpha!r}.")
    keys = [*experiment, "strategy", "seed", "round"]
    _check_unique(results, keys)
    data = results[[*keys, metric]].dropna(subset=[metric])
    strategies = sorted(results["strategy"].unique(), key=str)
    P = pd.DataFrame(0.0, index=strategies, columns=strategies)
    P.index.name, P.columns.name = "winner", "loser"
    for _, exp in data.groupby(experiment, sort=True):
        selected = _select_rounds(np.sort(exp["round"].unique()), rounds)
        for rnd in selected:
            wide = exp[exp["round"] == rnd].pivot(
                index="seed", columns="strategy", values=metric
            )
            pairs, pvalues = [], []
            for a, b in combinations(wide.columns, 2):
                both = wide[[a, b]].dropna()
                if len(both) < 2:
                    continue
                diff = (both[a] - both[b]).to_numpy()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    pvalue = ttest_rel(both[a], both[b]).pvalue
                pairs.append((a, b, diff.mean()))
                pvalues.append(1.0 if np.isnan(pvalue) else pvalue)
            if not pvalues:
                continue
            adjusted = false_discovery_control(pvalues, method="bh")
            for (a, b, mean_diff), q in zip(pairs, adjusted):
                if q < alpha and mean_diff != 0:
                    winner, loser = (a, b) if mean_diff > 0 else (b, a)
                    P.loc[winner, loser] += 1.0 / len(selected)
    return P


def _check_square(P):
    if not isinstance(P, pd.DataFrame):
        raise TypeError(f"P must be a pandas DataFrame, got {type(P)}.")
    if P.shape[0] != P.shape[1] or list(P.index) != list(P.columns):
        raise ValueError("P must be square with the same strategies as rows/columns.")


def loss_scores(P):
    """Loss score of each strategy: the column mean of the penalty matrix.

    Lower is better: the strategy is less often significantly beaten. As in
    paper 001, the mean runs over all rows, the zero diagonal included.

    Parameters
    ----------
    P : DataFrame
        Penalty matrix from :func:`penalty_matrix`.

    Returns
    -------
    scores : Series
        Indexed by strategy, named ``"loss_score"``.
    """
    _check_square(P)
    return P.mean(axis=0).rename("loss_score")


def win_scores(P):
    """Win score of each strategy: the row mean of the penalty matrix.

    Parameters
    ----------
    P : DataFrame
        Penalty matrix from :func:`penalty_matrix`.

    Returns
    -------
    scores : Series
        Indexed by strategy, named ``"win_score"``; higher is better.
    """
    _check_square(P)
    return P.mean(axis=1).rename("win_score")


def area_under_learning_curve(
    results, *, normalize=True, metric="accuracy", experiment=EXPERIMENT
):
    """Area under each learning curve (trapezoid rule over ``n_labeled``).

    Parameters
    ----------
    results : DataFrame
        Tidy results with columns ``strategy, seed, n_labeled``, ``metric`` and
        the ``experiment`` columns.
    normalize : bool, default=True
        Divide by the ``n_labeled`` range, so the value is the mean ``metric``
        over the labeling budget (a single-point curve gives its only value).
    metric : str, default="accuracy"
        Column integrated.
    experiment : tuple of str, default=("dataset", "model")
        Columns that identify an experiment.

    Returns
    -------
    aulc : DataFrame
        One row per (experiment, strategy, seed) with the column ``aulc``.
    """
    keys = [*experiment, "strategy", "seed"]
    _check_results(results, [*keys, "n_labeled", metric])
    _check_unique(results, [*keys, "n_labeled"])
    rows = []
    for key, curve in results.dropna(subset=[metric]).groupby(keys, sort=True):
        curve = curve.sort_values("n_labeled")
        x = curve["n_labeled"].to_numpy(dtype=float)
        y = curve[metric].to_numpy(dtype=float)
        width = x[-1] - x[0]
        if not normalize:
            area = trapezoid(y, x)
        else:
            area = trapezoid(y, x) / width if width > 0 else y.mean()
        rows.append((*key, area))
    return pd.DataFrame(rows, columns=[*keys, "aulc"])


def summarize(results, *, metric="accuracy", experiment=EXPERIMENT):
    """Mean and standard deviation over seeds per experiment, strategy and round.

    Parameters
    ----------
    results : DataFrame
        Tidy results with columns ``strategy, seed, round, n_labeled``,
        ``metric`` and the ``experiment`` columns.
    metric : str, default="accuracy"
        Column summarized.
    experiment : tuple of str, default=("dataset", "model")
        Columns that identify an experiment.

    Returns
    -------
    summary : DataFrame
        One row per (experiment, strategy, round) with ``n_labeled`` (mean over
        seeds), ``<metric>_mean``, ``<metric>_std`` (ddof=1, NaN for one seed)
        and ``n_seeds``.
    """
    keys = [*experiment, "strategy", "round"]
    _check_results(results, [*keys, "seed", "n_labeled", metric])
    grouped = results.dropna(subset=[metric]).groupby(keys, sort=True)
    return grouped.agg(
        n_labeled=("n_labeled", "mean"),
        **{f"{metric}_mean": (metric, "mean"), f"{metric}_std": (metric, "std")},
        n_seeds=("seed", "nunique"),
    ).reset_index()


# ------------------------------------------------------------- stopping criteria
STOP_PREFIX = "stop_"
_STOPPING_MEASURES = (
    "stop_round",
    "stop_n_labeled",
    "labels_saved",
    "accuracy_lost",
    "best_n_labeled",
    "labels_vs_best",
    "accuracy_lost_vs_best",
)


def stopping_points(
    results, *, tolerance=0.01, metric="accuracy", experiment=EXPERIMENT
):
    """Where each recorded stopping criterion would have stopped each cell.

    A criterion recorded by ``skal bench --stopping`` is a boolean column
    ``stop_<criterion>`` (fired at that round). In each cell it stops at the
    first round where it fired; one that never fired stops at the last round
    (the budget ran out), with ``fired`` False. The *best stopping point* of a
    cell is its first round whose ``metric`` is within ``tolerance`` of the
    final round's (issue 19; Pullar-Strecker et al. 2022 use one point).

    Parameters
    ----------
    results : DataFrame
        Tidy results with columns ``strategy, seed, round, n_labeled``,
        ``metric``, the ``experiment`` columns and ``stop_*`` columns. Cells
        with a missing ``stop_*`` value (run without that criterion) are left
        out for that criterion.
    tolerance : float, default=0.01
        How far below the final ``metric`` the best stopping point may be.
    metric : str, default="accuracy"
        Column judged (larger is better).
    experiment : tuple of str, default=("dataset", "model")

    Returns
    -------
    points : DataFrame
        One row per (cell, criterion): the experiment columns, ``strategy,
        seed, criterion`` (the column name without ``stop_``), ``fired``,
        ``stop_round``, ``stop_n_labeled``, ``budget`` (labels at the last
        round), ``labels_saved`` (``budget - stop_n_labeled``),
        ``final_accuracy``, ``stop_accuracy``, ``accuracy_lost`` (final minus
        at the stop; negative when stopping earlier was better),
        ``best_round``, ``best_n_labeled``, ``best_accuracy``,
        ``labels_vs_best`` (``stop_n_labeled - best_n_labeled``: > 0 labeled
        too long, < 0 stopped too early) and ``accuracy_lost_vs_best`` (best
        minus at the stop). "accuracy" is ``metric``.
    """
    experiment = list(experiment)
    keys = [*experiment, "strategy", "seed"]
    _check_results(results, [*keys, "round", "n_labeled", metric])
    _check_unique(results, [*keys, "round"])
    if not isinstance(tolerance, Real) or tolerance < 0:
        raise ValueError(f"tolerance must be a number >= 0, got {tolerance!r}.")
    criteria = [c for c in results.columns if str(c).startswith(STOP_PREFIX)]
    rows = []
    for key, cell in results.groupby(keys, sort=True):
        cell = cell.sort_values("round")
        accuracy = cell[metric].to_numpy(dtype=float)
        n_labeled = cell["n_labeled"].to_numpy()
        rounds = cell["round"].to_numpy()
        final = accuracy[-1]
        # The slack keeps "within" inclusive despite rounding (0.8 - 0.01 > 0.79).
        best = int(np.argmax(accuracy >= final - tolerance - 1e-9))
        for column in criteria:
            recorded = cell[column]
            if recorded.isna().any():
                continue
            fired = recorded.astype(bool).to_numpy()
            stop = int(np.argmax(fired)) if fired.any() else len(fired) - 1
            rows.append(
                (
                    *key,
                    column[len(STOP_PREFIX) :],
                    bool(fired.any()),
                    rounds[stop],
                    n_labeled[stop],
                    n_labeled[-1],
                    n_labeled[-1] - n_labeled[stop],
                    final,
                    accuracy[stop],
                    final - accuracy[stop],
                    rounds[best],
                    n_labeled[best],
                    accuracy[best],
                    n_labeled[stop] - n_labeled[best],
                    accuracy[best] - accuracy[stop],
                )
            )
    columns = [
        *keys,
        "criterion",
        "fired",
        "stop_round",
        "stop_n_labeled",
        "budget",
        "labels_saved",
        "final_accuracy",
        "stop_accuracy",
        "accuracy_lost",
        "best_round",
        "best_n_labeled",
        "best_accuracy",
        "labels_vs_best",
        "accuracy_lost_vs_best",
    ]
    return pd.DataFrame(rows, columns=columns)


def summarize_stopping(points, *, experiment=EXPERIMENT):
    """Mean and std over cells of :func:`stopping_points`, per criterion.

    Parameters
    ----------
    points : DataFrame
        From :func:`stopping_points`.
    experiment : tuple of str, default=("dataset", "model")

    Returns
    -------
    summary : DataFrame
        One row per (experiment, criterion): ``n_cells``, ``never_fired``
        (fraction of cells), ``budget`` (mean labels at the last round) and
        ``<measure>_mean``, ``<measure>_std`` (ddof=1, NaN for one cell) of
        ``stop_round``, ``stop_n_labeled``, ``labels_saved``,
        ``accuracy_lost``, ``best_n_labeled``, ``labels_vs_best`` and
        ``accuracy_lost_vs_best``.
    """
    group = [*experiment, "criterion"]
    _check_results(points, [*group, "fired", "budget", *_STOPPING_MEASURES], "points")
    statistics = {
        "n_cells": ("fired", "size"),
        "never_fired": ("fired", lambda fired: 1.0 - fired.astype(float).mean()),
        "budget": ("budget", "mean"),
    }
    for measure in _STOPPING_MEASURES:
        statistics[f"{measure}_mean"] = (measure, "mean")
        statistics[f"{measure}_std"] = (measure, "std")
    return points.groupby(group, sort=True).agg(**statistics).reset_index()
