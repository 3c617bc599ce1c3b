"""Stopping criteria: when labeling more stops paying off.

Give an :class:`~skal.ActiveLearner` ``stopping=criterion`` (or a list: the
learner stops at the first that fires, in list order). A criterion is a round
callback (:class:`skal.callbacks.Callback`): after every round's model is
trained it computes a statistic and decides whether to stop. The learner then
asks no more: ``stop_reason_`` names the criterion that fired and
``stop_round_`` the round, ``history_`` has one column per criterion with its
statistic (the criterion's ``name``), and in a labeling session with a
``label_store`` the stop is written to the store, so that
:meth:`ActiveLearner.resume <skal.ActiveLearner.resume>` does not ask further.
In the ``query``/``teach`` loop every ``teach`` is a round; a stop sets
``stop_reason_`` and ``query`` warns.

Criteria (statistic, and when it fires):

- :class:`StabilizingPredictions`: mean Cohen's kappa between successive
  models' predictions on a fixed stop set over the last ``window`` rounds,
  ``>= threshold`` (Bloodgood & Vijay-Shanker 2009);
- :class:`ClassificationChange`: fraction of unlabeled rows whose predicted
  label changed since the previous round, ``<= threshold`` (0: none changed;
  Zhu et al. 2008);
- :class:`OverallUncertainty`: mean or max of ``1 - max probability`` over the
  unlabeled rows, ``< threshold`` (Zhu et al. 2008);
- :class:`LabelBudget`: labeled rows, ``>= n_labels``;
- :class:`ValidationPlateau`: rounds since the ``eval_set`` accuracy last
  improved by more than ``min_delta``, ``>= patience``.

Criteria are cloned per ``fit`` like every callback (``learner.stopping_`` holds
the fitted clones; each has ``history_``). A single criterion's parameters are
grid-searchable as ``stopping__<param>`` (``GridSearchCV(learner,
{"stopping__threshold": [0.95, 0.99]})``). With a list, ``stopping__`` names
would be ambiguous and are refused: search over whole lists instead
(``{"stopping": [[A(), B(window=2)], [A(), B(window=5)]]}``).
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.metrics import cohen_kappa_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from . import embeddings
from ._arrays import chunks
from ._validation import take_rows
from .callbacks import RoundStatistic


class StoppingCriterion(RoundStatistic):
    """Base class of stopping criteria.

    Subclasses implement ``_statistic(context)`` (a float, NaN while undefined)
    and ``_fires(statistic)``; ``context`` holds the keyword arguments of
    :meth:`on_round_end` (``estimator``, ``X``, ``unlabeled_indices``,
    ``labeled_indices``, ``eval_score``, ...).

    Given as ``stopping=`` a criterion stops the learner when it fires; given
    among ``callbacks=`` it only records (its statistic and ``fired`` per
    round), to see where it would have stopped without stopping.

    Attributes
    ----------
    history_ : list of dict
        Per round: ``round``, ``statistic``, ``fired``.
    fired_ : bool
        Whether the criterion fired at the last round.
    """

    def on_fit_begin(self, learner, **kwargs):
        super().on_fit_begin(learner, **kwargs)
        self.fired_ = False

    def on_round_end(self, learner, *, round_, **context):
        super().on_round_end(learner, round_=round_, **context)
        statistic = self.history_[-1]["statistic"]
        self.fired_ = bool(not np.isnan(statistic) and self._fires(statistic))
        self.history_[-1]["fired"] = self.fired_

    def describe(self):
        """One sentence on the last round's statistic (for messages)."""
        statistic = self.history_[-1]["statistic"] if self.history_ else np.nan
        return f"{self.name} = {statistic:.4g}"

    def _fires(self, statistic):
        raise NotImplementedError


class _PoolCriterion(StoppingCriterion):
    """A criterion computed on unlabeled rows: a fixed stop set or the pool.

    ``stop_set_size=None`` evaluates the rows unlabeled at each round (the
    pool shrinks as rows are labeled); an int draws that many unlabeled rows
    once, when round 0 ends, and evaluates them every round (their rows are
    copied, so the criterion also works in ``teach`` without the pool).
    """

    def on_fit_begin(self, learner, **kwargs):
        super().on_fit_begin(learner, **kwargs)
        self.stop_set_indices_ = None
        self.stop_set_ = None

    def needs_pool(self):
        """Whether the next round can only be evaluated with the pool given."""
        return self.stop_set_size is None or getattr(self, "stop_set_", None) is None

    def _rows(self, context):
        """``(indices, rows)`` to evaluate, or ``(None, None)`` if unknown."""
        X, unlabeled = context.get("X"), context.get("unlabeled_indices")
        if self.stop_set_size is None:
            if X is None or unlabeled is None or len(unlabeled) == 0:
                return None, None
            return unlabeled, take_rows(X, unlabeled)
        if self.stop_set_ is None:
            if X is None or unlabeled is None or len(unlabeled) == 0:
                return None, None
            rng = check_random_state(self.random_state)
            size = min(self.stop_set_size, len(unlabeled))
            self.stop_set_indices_ = np.sort(rng.choice(unlabeled, size, replace=False))
            self.stop_set_ = take_rows(X, self.stop_set_indices_)
        return self.stop_set_indices_, self.stop_set_


def predictions(estimator, X, chunk_size=None):
    """``estimator.predict`` chunk by chunk (bounded memory on large pools)."""
    parts = [
        np.asarray(estimator.predict(X[rows]))
        for rows in chunks(X.shape[0], chunk_size)
    ]
    return np.concatenate(parts)


def agreement_kappa(a, b):
    """Cohen's kappa of two prediction vectors; 1.0 when they are identical.

    Identical vectors of a single class have kappa 0/0 (chance agreement is
    1); they agree perfectly, so they count as 1.
    """
    if np.array_equal(a, b):
        return 1.0
    return float(cohen_kappa_score(a, b))


class StabilizingPredictions(_PoolCriterion):
    """Stop when successive models agree on a stop set (stabilizing predictions).

    When round 0 ends, ``stop_set_size`` unlabeled rows are drawn once (the
    stop set; they need no labels). After every later round, Cohen's kappa
    (:func:`sklearn.metrics.cohen_kappa_score`) compares the new model's
    predictions on the stop set with the previous model's. The statistic is
    the mean of the last ``window`` kappas (NaN until there are ``window``);
    the criterion fires when it is at least ``threshold``. Two identical
    prediction vectors count as kappa 1 (sklearn's kappa is undefined when
    both predict a single class).

    Parameters
    ----------
    stop_set_size : int or None, default=2000
        Rows in the stop set (all unlabeled rows if fewer); ``None`` uses every
        row unlabeled after round 0.
    window : int, default=3
        Successive agreements averaged (the paper's ``k``).
    threshold : float, default=0.99
        Mean kappa at which to stop.
    random_state : int, RandomState instance or None, default=None
        Draws the stop set; the learner seeds it when None.

    Attributes
    ----------
    kappas_ : list of float
        Kappa between each pair of successive models.
    stop_set_indices_ : ndarray of int
        Pool rows of the stop set.

    References
    ----------
    Bloodgood, M. & Vijay-Shanker, K. (2009). A Method for Stopping Active
    Learning Based on Stabilizing Predictions and the Need for User-Adjustable
    Stopping. CoNLL.
    """

    _parameter_constraints = {
        "stop_set_size": [Interval(Integral, 1, None, closed="left"), None],
        "window": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Interval(Real, -1, 1, closed="both")],
        "random_state": ["random_state"],
    }

    def __init__(self, stop_set_size=2000, window=3, threshold=0.99, random_state=None):
        self.stop_set_size = stop_set_size
        self.window = window
        self.threshold = threshold
        self.random_state = random_state

    def on_fit_begin(self, learner, **kwargs):
        super().on_fit_begin(learner, **kwargs)
        self.kappas_ = []
        self.previous_predictions_ = None

    def _rows(self, context):
        if self.stop_set_size is not None:
            return super()._rows(context)
        # Fixed too: every row unlabeled when round 0 ends.
        if self.stop_set_ is None:
            X, unlabeled = context.get("X"), context.get("unlabeled_indices")
            if X is not None and unlabeled is not None and len(unlabeled):
                self.stop_set_indices_ = np.asarray(unlabeled, dtype=np.int64)
                self.stop_set_ = take_rows(X, self.stop_set_indices_)
        return self.stop_set_indices_, self.stop_set_

    def _statistic(self, context):
        _, rows = self._rows(context)
        if rows is None:
            return np.nan
        predicted = predictions(context["estimator"], rows)
        if self.previous_predictions_ is not None:
            self.kappas_.append(agreement_kappa(self.previous_predictions_, predicted))
        self.previous_predictions_ = predicted
        if len(self.kappas_) < self.window:
            return np.nan
        return float(np.mean(self.kappas_[-self.window :]))

    def _fires(self, statistic):
        return statistic >= self.threshold


class ClassificationChange(_PoolCriterion):
    """Stop when no unlabeled prediction changes between rounds.

    The statistic is the fraction of the evaluated rows whose predicted label
    differs from the previous round's model's (NaN at round 0). With
    ``stop_set_size=None`` the rows are those unlabeled at this round (all of
    them were unlabeled at the previous round too: the pool only shrinks);
    otherwise a fixed random stop set drawn when round 0 ends. Fires when the
    fraction is at most ``threshold`` (0, the default, is the paper's rule: no
    prediction changed).

    Parameters
    ----------
    stop_set_size : int or None, default=None
        Rows of a fixed stop set; ``None`` evaluates the whole unlabeled pool
        every round (one prediction pass over it per round).
    threshold : float, default=0.0
        Fraction of changed predictions at or below which to stop.
    random_state : int, RandomState instance or None, default=None
        Draws the stop set; the learner seeds it when None.

    References
    ----------
    Zhu, J., Wang, H. & Hovy, E. (2008). Multi-criteria-based Strategy to Stop
    Active Learning for Data Annotation. COLING.
    """

    _parameter_constraints = {
        "stop_set_size": [Interval(Integral, 1, None, closed="left"), None],
        "threshold": [Interval(Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
    }

    def __init__(self, stop_set_size=None, threshold=0.0, random_state=None):
        self.stop_set_size = stop_set_size
        self.threshold = threshold
        self.random_state = random_state

    def on_fit_begin(self, learner, **kwargs):
        super().on_fit_begin(learner, **kwargs)
        self.previous_ = None  # (rows, predictions) of the previous round

    def _statistic(self, context):
        indices, rows = self._rows(context)
        if rows is None:
            self.previous_ = None
            return np.nan
        predicted = predictions(context["estimator"], rows)
        previous, self.previous_ = self.previous_, (indices, predicted)
        if previous is None:
            return np.nan
        before_rows, before = previous
        # Rows evaluated in both rounds (all of them, unless the pool grew).
        common, now_at, before_at = np.intersect1d(
            indices, before_rows, assume_unique=True, return_indices=True
        )
        if len(common) == 0:
            return np.nan
        return float(np.mean(predicted[now_at] != before[before_at]))

    def _fires(self, statistic):
        return statistic <= self.threshold


class OverallUncertainty(_PoolCriterion):
    """Stop when the model is confident on the unlabeled rows.

    The uncertainty of a row is ``1 - max_k p_k`` (least confidence), in
    ``[0, 1 - 1/C]``. It was chosen over the entropy because a threshold on it
    means the same with 2 or 100 classes (the entropy's range is ``log C``).
    The statistic is its mean (``aggregate="mean"``) or maximum (``"max"``:
    every row confident) over the evaluated rows; fires when it is below
    ``threshold``.

    Parameters
    ----------
    threshold : float, default=0.05
        Uncertainty below which to stop. A model trained with label smoothing
        ``eps`` (skal's ``MLPClassifier`` defaults to 0.1) keeps the uncertainty
        of even well-fit rows near ``eps (1 - 1/C)``; a threshold at or under
        that warns (raise it, or train with ``criterion__label_smoothing=0.0``).
    aggregate : {"mean", "max"}, default="mean"
    stop_set_size : int or None, default=None
        Rows of a fixed stop set; ``None`` evaluates the rows unlabeled at each
        round.
    random_state : int, RandomState instance or None, default=None
        Draws the stop set; the learner seeds it when None.

    References
    ----------
    Zhu, J., Wang, H. & Hovy, E. (2008). Multi-criteria-based Strategy to Stop
    Active Learning for Data Annotation. COLING.
    """

    _parameter_constraints = {
        "threshold": [Interval(Real, 0, 1, closed="both")],
        "aggregate": [StrOptions({"mean", "max"})],
        "stop_set_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self, threshold=0.05, aggregate="mean", stop_set_size=None, random_state=None
    ):
        self.threshold = threshold
        self.aggregate = aggregate
        self.stop_set_size = stop_set_size
        self.random_state = random_state

    def on_fit_begin(self, learner, **kwargs):
        super().on_fit_begin(learner, **kwargs)
        self._checked_smoothing = False

    def _statistic(self, context):
        _, rows = self._rows(context)
        if rows is None:
            return np.nan
        proba = embeddings.predict_proba(context["estimator"], rows)
        if not self._checked_smoothing:
            self._warn_if_unreachable(context["estimator"], proba.shape[1])
            self._checked_smoothing = True
        uncertainty = 1.0 - proba.max(axis=1)
        return float(
            uncertainty.max() if self.aggregate == "max" else uncertainty.mean()
        )

    def _fires(self, statistic):
        return statistic < self.threshold

    def _warn_if_unreachable(self, estimator, n_classes):
        # Label smoothing eps trains the top probability towards 1 - eps (1 - 1/C),
        # so the uncertainty of well-fit rows stays near eps (1 - 1/C) (skal's
        # MLPClassifier defaults to eps = 0.1).
        params = (
            estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
        )
        smoothing = params.get("criterion__label_smoothing") or 0.0
        floor = smoothing * (1.0 - 1.0 / n_classes)
        if floor and self.threshold <= floor:
            warnings.warn(
                f"OverallUncertainty(threshold={self.threshold}) will hardly ever "
                f"fire: the model is trained with label smoothing {smoothing}, which "
                f"keeps the uncertainty 1 - max p of even well-fit rows near "
                f"{floor:.3g}. Use a threshold above {floor:.3g}, or train with "
                f"criterion__label_smoothing=0.0.",
                UserWarning,
                stacklevel=2,
            )


class LabelBudget(StoppingCriterion):
    """Stop once ``n_labels`` rows of the pool are labeled.

    The statistic is the number of labeled rows of the pool (given labels
    included). Rounds are not cut short: choose ``n_labels = n_initial + k *
    batch_size`` to stop exactly at it.

    Parameters
    ----------
    n_labels : int
    """

    _parameter_constraints = {"n_labels": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, n_labels=100):
        self.n_labels = n_labels

    def _statistic(self, context):
        return float(len(context["labeled_indices"]))

    def _fires(self, statistic):
        return statistic >= self.n_labels


class ValidationPlateau(StoppingCriterion):
    """Stop when the ``eval_set`` accuracy has not improved for ``patience`` rounds.

    The statistic is the number of rounds since the best accuracy so far, where
    a round counts as an improvement when it beats the best by more than
    ``min_delta``. It needs ``fit(X, y, eval_set=...)``; ``teach`` rounds are
    scored on that set too, in the process that called ``fit`` (rounds without a
    score, e.g. after unpickling, leave it unchanged).

    Parameters
    ----------
    patience : int, default=3
    min_delta : float, default=0.0
    """

    _parameter_constraints = {
        "patience": [Interval(Integral, 1, None, closed="left")],
        "min_delta": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, patience=3, min_delta=0.0):
        self.patience = patience
        self.min_delta = min_delta

    def on_fit_begin(self, learner, *, eval_set=None, **kwargs):
        if eval_set is None:
            raise ValueError(
                "ValidationPlateau watches the accuracy on a validation set, but "
                "fit was called without one: pass fit(X, y, eval_set=(X_val, "
                "y_val)), or use a criterion that needs no labels (e.g. "
                "StabilizingPredictions)."
            )
        super().on_fit_begin(learner, **kwargs)
        self.best_score_ = -np.inf
        self.rounds_since_best_ = np.nan

    def _statistic(self, context):
        score = context.get("eval_score", np.nan)
        if score is None or np.isnan(score):
            return self.rounds_since_best_
        if score > self.best_score_ + self.min_delta:
            self.best_score_ = float(score)
            self.rounds_since_best_ = 0
        else:
            self.rounds_since_best_ += 1
        return float(self.rounds_since_best_)

    def _fires(self, statistic):
        return statistic >= self.patience


def check_stopping(stopping):
    """The criteria of a ``stopping`` parameter as a list (empty for None)."""
    if stopping is None:
        return []
    criteria = list(stopping) if isinstance(stopping, (list, tuple)) else [stopping]
    for criterion in criteria:
        if not isinstance(criterion, StoppingCriterion):
            raise TypeError(
                f"stopping must be a skal.stopping criterion (e.g. "
                f"StabilizingPredictions()) or a list of them, got "
                f"{type(criterion).__name__}: {criterion!r}."
            )
    return criteria


__all__ = [
    "ClassificationChange",
    "LabelBudget",
    "OverallUncertainty",
    "StabilizingPredictions",
    "StoppingCriterion",
    "ValidationPlateau",
    "agreement_kappa",
    "check_stopping",
]
