"""Judge every active-learning round by a semi-supervised learner (paper 004)."""

import time
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval

from ..callbacks import RoundStatistic
from ._self_training import SelfTrainingClassifier


class SemiSupervisedScore(RoundStatistic):
    """After each round, the accuracy of a semi-supervised learner on ``eval_set``.

    Paper 004 judges an active-learning strategy by what a semi-supervised
    learner makes of the labeled *and* the unlabeled pool after each round,
    since supervised accuracy mixes the value of the new labels with the value of
    the samples themselves. Given to :class:`skal.ActiveLearner` as a callback,
    this fits ``estimator`` on the whole pool (the round's labels, ``-1``
    elsewhere) after every ``every``-th round, scores it on the ``eval_set``
    given to ``fit`` and records the accuracy in the learner's ``history_``
    (column ``semi_supervised_score``), beside the supervised ``eval_score``.
    The active-learning rounds are unchanged: the strategy still queries with
    the supervised model.

    Parameters
    ----------
    estimator : classifier or None, default=None
        A semi-supervised classifier following scikit-learn's convention
        (``fit(X, y)`` with ``y = -1`` on unlabeled rows, then ``predict``), such
        as :class:`SelfTrainingClassifier` or :class:`FixMatchClassifier`;
        cloned for every round. None self-trains a clone of the learner's own
        estimator with DARP towards a uniform class distribution
        (``SelfTrainingClassifier(estimator, darp="uniform")``, paper 004's
        refinement).
    every : int, default=1
        Evaluate after rounds ``0, every, 2 * every, ...`` and after the last
        round of ``fit``; the other rounds record NaN (a semi-supervised fit
        costs several supervised ones).
    random_state : int, RandomState or None, default=None
        Seeds the ``random_state`` parameters of the cloned estimator, one seed
        per round.

    Attributes
    ----------
    history_ : list of dict
        Per round: ``round``, ``statistic`` (the accuracy, NaN when skipped)
        and ``seconds`` (the semi-supervised fit and prediction; 0 when skipped).
        The fitted semi-supervised learners are not kept (a learner with this
        callback stays saveable with :mod:`skal.persistence`).
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "every": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, every=1, random_state=None):
        self.estimator = estimator
        self.every = every
        self.random_state = random_state

    def on_fit_begin(self, learner, *, eval_set=None, **kwargs):
        super().on_fit_begin(learner, **kwargs)
        if eval_set is None:
            raise ValueError(
                "SemiSupervisedScore scores on the eval_set given to fit: call "
                "learner.fit(X, y, eval_set=(X_test, y_test))."
            )
        self._eval_set = eval_set
        self._rng = None  # drawn at first use: the learner may seed random_state
        self._last_round = getattr(learner, "n_rounds", None)

    def _due(self, round_):
        return round_ % self.every == 0 or round_ == self._last_round

    def on_round_end(self, learner, *, round_, **context):
        # The learner's classes and estimator are needed, so the statistic is
        # computed here rather than in ``_statistic(context)``.
        start = time.perf_counter()
        score = self._score(learner, round_, **context) if self._due(round_) else np.nan
        seconds = time.perf_counter() - start if self._due(round_) else 0.0
        self.history_.append(
            {"round": int(round_), "statistic": score, "seconds": seconds}
        )

    def _score(
        self, learner, round_, *, X=None, labeled_indices=None, labels=None, **_
    ):
        if X is None or labels is None:  # a ``teach`` without the pool
            return np.nan
        classes = np.asarray(learner.classes_)
        y = np.full(X.shape[0], -1, dtype=np.int64)
        y[labeled_indices] = np.searchsorted(classes, labels)  # classes_ is sorted
        model = self._seeded(self._make_estimator(learner)).fit(X, y)
        X_eval, y_eval = self._eval_set
        codes = np.asarray(model.predict(X_eval), dtype=np.int64)
        return float(np.mean(classes[codes] == np.asarray(y_eval)))

    def _make_estimator(self, learner):
        if self.estimator is not None:
            return clone(self.estimator)
        base = clone(learner.estimator)
        if "classes" in base.get_params(deep=False):
            # Labels are coded 0..C-1 for the semi-supervised fit: a skal net must
            # know every class even when the labeled rows miss some.
            base.set_params(classes=np.arange(len(learner.classes_)))
        return SelfTrainingClassifier(base, darp="uniform")

    def _seeded(self, estimator):
        if self._rng is None:
            self._rng = check_random_state(self.random_state)
        seed = self._rng.randint(np.iinfo(np.int32).max)
        keys = [
            key
            for key in estimator.get_params(deep=True)
            if key == "random_state" or key.endswith("__random_state")
        ]
        return estimator.set_params(**dict.fromkeys(keys, seed))
