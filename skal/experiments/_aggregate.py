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
    "summarize",
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
