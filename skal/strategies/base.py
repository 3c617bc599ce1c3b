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

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from .._validation import (
    check_fitted_estimator,
    check_n_queries,
    check_pool,
    n_features_of,
    n_features_of_array,
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

    def query(self, X_pool, n):
        """Select ``n`` distinct points of the pool to label.

        Parameters
        ----------
        X_pool : array-like, DataFrame or sparse matrix of shape (n_pool, n_features)
            Candidate points.
        n : int
            Number of points to select, ``1 <= n <= n_pool``.

        Returns
        -------
        indices : ndarray of shape (n,), dtype int64
            Distinct row indices into ``X_pool``, most informative first where the
            strategy ranks.
        """
        X_pool = self._check_pool(X_pool)
        n = check_n_queries(n, X_pool.shape[0])
        with _numerical_errors_raise(self):
            indices = np.asarray(self._select(X_pool, n), dtype=np.int64)
        return indices

    def score(self, X_pool):
        """Informativeness of each pool point (higher is more informative).

        Parameters
        ----------
        X_pool : array-like, DataFrame or sparse matrix of shape (n_pool, n_features)

        Returns
        -------
        scores : ndarray of shape (n_pool,)
        """
        X_pool = self._check_pool(X_pool)
        with _numerical_errors_raise(self):
            return self._checked_scores(self._score(X_pool))

    def _select(self, X_pool, n):
        return top_n(self._checked_scores(self._score(X_pool)), n)

    def _score(self, X_pool):
        raise NotImplementedError(
            f"{type(self).__name__} selects points jointly and does not rank them "
            f"one by one; use query()."
        )

    def _check_pool(self, X_pool):
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call "
                f"fit(X_labeled, y_labeled, estimator=...) before query or score."
            )
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
