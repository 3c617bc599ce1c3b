"""The protocol every query strategy follows.

A strategy is a scikit-learn estimator whose constructor takes acquisition
hyperparameters only, so ``get_params``/``set_params``/``clone`` and
``GridSearchCV``'s ``strategy__<param>`` names work:

>>> strategy.fit(X_labeled, y_labeled, estimator=fitted_classifier)  # doctest: +SKIP
>>> indices = strategy.query(X_pool, n)                               # doctest: +SKIP

``fit`` computes what the strategy needs from the labeled set and keeps a reference
to the (already trained) estimator; it never trains the estimator. ``query`` returns
``n`` distinct integer indices into ``X_pool``. Ranking strategies also expose
``score(X_pool)``: higher means more informative, and ``query`` takes the top ``n``.
"""

import contextlib
import sys

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from .._arrays import chunks
from .._config import get_config
from .._validation import (
    check_fitted_estimator,
    check_n_queries,
    check_pool,
    n_features_of,
    n_features_of_array,
    take_rows,
)


class QueryStrategy(BaseEstimator):
    """Base class of query strategies.

    Subclasses implement :meth:`_score` (ranking strategies) or override
    :meth:`_select` (batch strategies that pick points jointly), and may override
    :meth:`_fit` to compute state from the labeled set.

    Class attributes
    ----------------
    needs_estimator : bool
        Whether ``fit`` requires a fitted estimator (False for random sampling).
    estimator_settings : dict
        ``{parameter: (off_value, value)}``: how the estimator must be set up for
        this strategy (see :func:`prepare_estimator`).
    """

    needs_estimator = True
    # {parameter: [constraints]} as in scikit-learn; checked at the start of fit.
    _parameter_constraints: dict = {}
    # Estimator settings the strategy is defined with, applied by
    # `prepare_estimator` where the estimator has them switched off (e.g. dropout
    # for MC-dropout strategies): {parameter: (value when off, value to use)}.
    estimator_settings = {}
    # True where `_score` draws its randomness anew in every call (MC dropout):
    # scores of chunks would then differ from the scores of the whole pool, so
    # `query` scores the candidates in one call.
    scores_in_one_call = False
    # skal.distributed.query_dask_pool, set by skal.strategies: the distributed
    # layer builds on the strategies, so this module cannot import it.
    _dask_query = None

    def fit(self, X, y, *, estimator=None):
        """Prepare the strategy from the labeled set and the trained estimator.

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_labeled, n_features)
            Labeled samples (may be ``None`` for strategies that do not use them).
        y : array-like of shape (n_labeled,)
            Their labels.
        estimator : fitted classifier, default=None
            The model trained on ``(X, y)``; required unless ``needs_estimator``
            is False.

        Returns
        -------
        self : object
        """
        self._validate_params()
        if self.needs_estimator:
            check_fitted_estimator(estimator)
        self.estimator_ = estimator
        n_features = n_features_of(estimator) if estimator is not None else None
        if X is not None:
            X = check_pool(X, n_features=n_features, name="X", owner="the estimator")
            n_features = n_features_of_array(X)
            y = np.asarray(y)
            if len(y) != X.shape[0]:
                raise ValueError(
                    f"X has {X.shape[0]} samples but y has {len(y)} labels."
                )
        self.n_features_in_ = n_features
        self._fit(X, y)
        return self

    def _fit(self, X, y):
        """Hook for subclasses: state computed from the labeled set."""

    def query(self, X_pool, n, candidates=None):
        """Select ``n`` distinct points of the pool to label.

        Parameters
        ----------
        X_pool : array-like, DataFrame or sparse matrix of shape (n_pool, n_features)
            Candidate points. A Dask array or DataFrame is queried on the
            current ``dask.distributed`` client, with the same answer (see
            :mod:`skal.distributed` for the strategies that support it).
        n : int
            Number of points to select, ``1 <= n <= n_pool`` (or
            ``len(candidates)``).
        candidates : array-like of int, default=None
            Rows of ``X_pool`` to choose from (e.g. the unlabeled rows of a
            pool); ``None`` means every row. Ranking strategies score them chunk
            by chunk (``skal.get_config()["chunk_size"]`` rows) without copying
            them out of ``X_pool``; joint strategies get them as one pool.

        Returns
        -------
        indices : ndarray of shape (n,), dtype int64
            Distinct row indices into ``X_pool`` (among ``candidates``), most
            informative first where the strategy ranks.
        """
        if _is_dask_collection(X_pool):  # a pool spread over a cluster
            return QueryStrategy._dask_query(self, X_pool, n, candidates)
        X_pool = self._check_pool(X_pool)
        candidates = _check_candidates(candidates, X_pool.shape[0])
        size = X_pool.shape[0] if candidates is None else len(candidates)
        n = check_n_queries(n, size)
        with _numerical_errors_raise(self):
            if self._ranks_in_chunks():
                # Scores of a chunk do not depend on the others: top n of the
                # chunked scores is _select's answer, without keeping features
                # (or a copy) of every candidate at once.
                picks = top_n(self._chunked_scores(X_pool, candidates), n)
            else:
                pool = X_pool if candidates is None else take_rows(X_pool, candidates)
                picks = np.asarray(self._select(pool, n), dtype=np.int64)
        return picks if candidates is None else candidates[picks]

    def score(self, X_pool):
        """Informativeness of each pool point (higher is more informative).

        Parameters
        ----------
        X_pool : array-like, DataFrame or sparse matrix of shape (n_pool, n_features)

        Returns
        -------
        scores : ndarray of shape (n_pool,)
        """
        if _is_dask_collection(X_pool):
            raise TypeError(
                f"{type(self).__name__}.score does not take a Dask pool; use "
                f"query(X_pool, n), or X_pool.compute() if the pool fits in memory."
            )
        X_pool = self._check_pool(X_pool)
        with _numerical_errors_raise(self):
            return self._checked_scores(self._score(X_pool))

    def _select(self, X_pool, n):
        return top_n(self._checked_scores(self._score(X_pool)), n)

    def _ranks_in_chunks(self):
        """True if ``query`` is the top ``n`` of scores computed chunk by chunk.

        That is the protocol's default ``_select`` (ranking strategies implement
        ``_score`` only; joint ones override ``_select``), unless the scores
        are drawn anew in every call (``scores_in_one_call``: MC dropout's
        masks would change with the chunks).
        """
        return type(self)._select is QueryStrategy._select and not (
            self.scores_in_one_call
        )

    def _chunked_scores(self, X_pool, candidates):
        size = X_pool.shape[0] if candidates is None else len(candidates)
        chunk_size = get_config()["chunk_size"]
        if candidates is None and size <= chunk_size:
            return self._checked_scores(self._score(X_pool))
        return np.concatenate(
            [
                self._checked_scores(
                    self._score(
                        X_pool[rows]
                        if candidates is None
                        else take_rows(X_pool, candidates[rows])
                    )
                )
                for rows in chunks(size, chunk_size)
            ]
        )

    def _score(self, X_pool):
        raise NotImplementedError(
            f"{type(self).__name__} selects points jointly and does not rank them "
            f"one by one; use query()."
        )

    def _check_fitted(self):
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call "
                f"fit(X_labeled, y_labeled, estimator=...) before query or score."
            )

    def _check_pool(self, X_pool):
        self._check_fitted()
        return check_pool(
            X_pool, n_features=self.n_features_in_, owner=type(self).__name__
        )

    @staticmethod
    def _checked_scores(scores):
        scores = np.asarray(scores, dtype=np.float64)
        if not np.all(np.isfinite(scores)):
            raise FloatingPointError(
                "The acquisition scores contain NaN or infinity: the model's outputs "
                "are not finite (did training diverge? try a lower learning rate)."
            )
        return scores


def _is_dask_collection(X):
    """True for a Dask array or DataFrame (without importing dask)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(X)


@contextlib.contextmanager
def _numerical_errors_raise(strategy):
    """Overflow or invalid values while scoring become a clear FloatingPointError.

    A NaN inside a distance or score would otherwise silently change the ranking.
    """
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield
    except FloatingPointError as exc:
        raise FloatingPointError(
            f"{type(strategy).__name__}: the acquisition scores are not finite "
            f"(NaN or infinity from {exc}); the inputs or the model's outputs are too "
            f"large: standardize the features or check that training converged."
        ) from exc


def _check_candidates(candidates, n_pool):
    if candidates is None:
        return None
    candidates = np.asarray(candidates)
    if candidates.ndim != 1 or (
        len(candidates) and not np.issubdtype(candidates.dtype, np.integer)
    ):
        raise ValueError(
            f"candidates must be a 1-D array of row indices, got an array of shape "
            f"{candidates.shape} and dtype {candidates.dtype}."
        )
    candidates = candidates.astype(np.int64, copy=False)
    if len(candidates) and (candidates.min() < 0 or candidates.max() >= n_pool):
        raise ValueError(
            f"candidates must be rows of X_pool (0 <= index < {n_pool}), got indices "
            f"from {candidates.min()} to {candidates.max()}."
        )
    increasing = np.all(candidates[1:] > candidates[:-1])  # O(N): the usual case
    if not increasing and len(np.unique(candidates)) != len(candidates):
        raise ValueError("candidates must not repeat a row.")
    return candidates


def top_n(scores, n):
    """Indices of the ``n`` largest scores, largest first; ties go to the lower index.

    Uses ``argpartition`` so the cost is O(N + n log n), not O(N log N).
    """
    scores = np.asarray(scores)
    if n < len(scores):
        # Negate so that a stable sort puts ties in index order.
        candidates = np.argpartition(-scores, n - 1)[:n]
        # argpartition may cut a tie arbitrarily; widen to every tied candidate.
        threshold = scores[candidates].min()
        candidates = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.arange(len(scores))
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order][:n]


def prepare_estimator(estimator, strategy):
    """A clone of ``estimator`` set up as ``strategy`` needs, or ``estimator`` itself.

    Some strategies are defined together with a training setup: MC-dropout
    strategies need dropout, Learning Loss and LPLgrad a loss-prediction module.
    Where ``estimator`` has such a parameter switched off, the clone gets the
    strategy's value; an estimator without the parameter is returned unchanged (the
    strategy then raises its own clear error).

    Parameters
    ----------
    estimator : estimator
    strategy : QueryStrategy or str

    Returns
    -------
    estimator : estimator
    """
    from sklearn.base import clone

    from ._registry import get_strategy

    if isinstance(strategy, str):
        strategy = get_strategy(strategy)
    params = estimator.get_params(deep=False)
    changes = {
        name: value
        for name, (off, value) in type(strategy).estimator_settings.items()
        if name in params and params[name] == off
    }
    if not changes:
        return estimator
    return clone(estimator).set_params(
        **{k: clone(v) if hasattr(v, "get_params") else v for k, v in changes.items()}
    )
