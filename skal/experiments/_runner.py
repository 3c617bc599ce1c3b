"""Run active-learning comparisons: one learner per (strategy, seed) cell.

Within a seed every strategy starts from the same initial labeled set and sees the
same pool, because :class:`skal.ActiveLearner` draws the initial set first from its
``random_state``.
"""

import itertools

import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone

from ..learner import ActiveLearner

RESULT_COLUMNS = [
    "dataset",
    "model",
    "strategy",
    "seed",
    "round",
    "n_labeled",
    "accuracy",
    "acquisition_seconds",
    "training_seconds",
]


def run_cell(
    estimator, strategy, seed, data, *, dataset="data", model=None, **learner_params
):
    """One active-learning run; returns its rows of the tidy results table.

    Parameters
    ----------
    estimator : classifier
        Cloned and trained from scratch every round.
    strategy : str or QueryStrategy
    seed : int
        ``random_state`` of the learner (initial set, candidate draws, model seeds).
    data : tuple (X_train, y_train, X_test, y_test)
    dataset, model : str
        Labels for the table.
    **learner_params
        Other :class:`skal.ActiveLearner` parameters (``batch_size``, ``n_rounds``...).

    Returns
    -------
    rows : pandas.DataFrame with columns ``RESULT_COLUMNS``
    """
    X_train, y_train, X_test, y_test = data
    learner = ActiveLearner(
        clone(estimator), strategy, random_state=seed, **learner_params
    ).fit(X_train, y_train, eval_set=(X_test, y_test))
    history = learner.history_
    name = strategy if isinstance(strategy, str) else type(strategy).__name__
    return pd.DataFrame(
        {
            "dataset": dataset,
            "model": model or type(estimator).__name__,
            "strategy": name,
            "seed": seed,
            "round": history["round"],
            "n_labeled": history["n_labeled"],
            "accuracy": history["eval_score"],
            "acquisition_seconds": history["acquisition_seconds"],
            "training_seconds": history["training_seconds"],
        },
        columns=RESULT_COLUMNS,
    )


def run_comparison(
    estimator, strategies, seeds, data, *, n_jobs=1, verbose=0, **kwargs
):
    """Every (strategy, seed) cell of a comparison, in parallel with joblib.

    Parameters
    ----------
    estimator : classifier
    strategies : list of str or QueryStrategy
    seeds : list of int
    data : tuple (X_train, y_train, X_test, y_test)
    n_jobs : int, default=1
        joblib workers (processes); ``-1`` for all cores.
    verbose : int, default=0
        joblib verbosity.
    **kwargs
        Passed to :func:`run_cell`.

    Returns
    -------
    results : pandas.DataFrame
        The tidy results table, one row per (strategy, seed, round).
    """
    cells = Parallel(n_jobs=n_jobs, verbose=verbose)(
        delayed(run_cell)(estimator, strategy, seed, data, **kwargs)
        for strategy, seed in itertools.product(strategies, seeds)
    )
    return pd.concat(cells, ignore_index=True)
