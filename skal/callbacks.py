"""Round callbacks: objects an :class:`~skal.ActiveLearner` notifies every round.

In the spirit of skorch's callbacks (which act on training epochs), a
:class:`Callback` is told when ``fit`` begins and ends and when each
active-learning round begins and ends, with the learner, the round number, the
labeled and newly queried rows, and the round's model and strategy. Users log
with them; :class:`RoundRecorder` keeps what :mod:`skal.diagnostics` draws, and
the stopping criteria of :mod:`skal.stopping` are callbacks too.

When the hooks fire
-------------------
A *round* trains one model. Round 0 trains on the initial labeled set (the rows
given in ``y``, the random or ``initial_strategy`` set of a simulation, or an
oracle's first answers); round ``r >= 1`` adds the rows the strategy queried with
the model of round ``r - 1``.

``fit`` (simulation, or labeling with an oracle)::

    on_fit_begin
    on_round_begin(round_=0)   # before the initial set is chosen
    on_round_end(round_=0)     # after its model is trained
    on_round_begin(round_=1)   # before the strategy queries
    on_round_end(round_=1)
    ...                        # until n_rounds, the pool is empty or a criterion stops
    on_fit_end

``fit`` without an oracle trains round 0 on the given labels (or, with no label
and an ``initial_strategy``, trains nothing: only ``on_fit_begin`` and
``on_fit_end`` fire). Then, in the labeling loop, each :meth:`teach
<skal.ActiveLearner.teach>` is one round: ``on_round_begin`` and
``on_round_end`` fire, with the rows ``teach`` recorded (those :meth:`query
<skal.ActiveLearner.query>` proposed from the fitted pool) as the queried rows;
``query`` itself fires nothing. ``on_fit_begin``/``on_fit_end`` fire in ``fit``
only.

The learner gives every hook keyword arguments (``round_``, ``labeled_indices``,
...; see :class:`Callback`) and may add new ones later: accept ``**kwargs``.

Cloning
-------
A learner never changes the callbacks it is given (scikit-learn's rule for
constructor parameters): every ``fit`` works on clones
(:func:`sklearn.base.clone`), kept in the learner's ``callbacks_``. Read what a
callback recorded there, e.g. ``learner.callbacks_[0].records_``. A callback is
therefore a scikit-learn estimator: its constructor stores its parameters, and
what it collects ends in ``_`` and is reset in :meth:`Callback.on_fit_begin`.
"""

import copy
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator

from . import embeddings
from ._fingerprints import pool_fingerprint
from ._validation import check_pool


class Callback(BaseEstimator):
    """Base class of round callbacks: every hook does nothing.

    Subclass it and override the hooks you need (see :mod:`skal.callbacks` for
    when each fires). Every hook receives the learner first and the rest as
    keyword arguments; accept ``**kwargs`` for arguments you do not use.
    """

    def on_fit_begin(self, learner, *, X=None, eval_set=None, **kwargs):
        """Called once at the start of ``fit``, after its input is validated.

        Parameters
        ----------
        learner : ActiveLearner
        X : ndarray or CSR matrix
            The validated pool given to ``fit`` (labeled and unlabeled rows).
        eval_set : tuple (X_eval, y_eval) or None
            The validated ``eval_set`` given to ``fit``.
        **kwargs
        """

    def on_round_begin(self, learner, *, round_, labeled_indices, **kwargs):
        """Called before a round adds rows (before the initial set is chosen,
        before the strategy queries, at the start of ``teach``).

        Parameters
        ----------
        learner : ActiveLearner
        round_ : int
        labeled_indices : ndarray of int
            Rows of the pool labeled before this round.
        **kwargs
        """

    def on_round_end(
        self,
        learner,
        *,
        round_,
        labeled_indices,
        queried_indices,
        estimator,
        strategy,
        **kwargs,
    ):
        """Called after the round's model is trained.

        Parameters
        ----------
        learner : ActiveLearner
        round_ : int
        labeled_indices : ndarray of int
            Rows of the pool the round's model was trained on.
        labels : ndarray
            The labels of ``labeled_indices``, in that order.
        queried_indices : ndarray of int
            Rows labeled in this round (the initial set in round 0).
        estimator : fitted classifier
            The model trained this round. With ``warm_start=True`` the same
            object is trained further in later rounds: copy it to keep it.
        strategy : QueryStrategy or None
            The strategy that chose ``queried_indices`` (fitted on the previous
            round's model; the ``initial_strategy`` in round 0, None for a
            random or given initial set). It is refitted in later rounds.
        X : ndarray or CSR matrix or None
            The pool, or None in a ``teach`` whose pool the learner does not
            know (no :meth:`~skal.ActiveLearner.query` on the fitted pool
            before it in this process).
        unlabeled_indices : ndarray of int or None
            Rows of the pool still unlabeled (declined rows excluded); None when
            ``X`` is.
        eval_score : float
            Accuracy on ``eval_set`` (NaN without one, and in ``teach``).
        **kwargs
        """

    def on_fit_end(self, learner, **kwargs):
        """Called once at the end of ``fit``.

        Parameters
        ----------
        learner : ActiveLearner
        **kwargs
        """


class RoundStatistic(Callback):
    """A callback that computes one number per round, kept in ``history_``.

    The learner adds a column to its ``history_`` for every round statistic
    among its ``callbacks`` and ``stopping`` criteria, named by :attr:`name`
    (numbered when repeated). Stopping criteria
    (:class:`skal.stopping.StoppingCriterion`) are round statistics that may
    also stop the learner; :class:`skal.semi_supervised.SemiSupervisedScore` is
    one that only records. Subclasses implement ``_statistic(context)``, where
    ``context`` holds the keyword arguments of :meth:`on_round_end`, and return
    a float (NaN while undefined).

    Attributes
    ----------
    history_ : list of dict
        Per round: ``round`` and ``statistic`` (criteria add ``fired``).
    """

    _parameter_constraints: dict = {}

    @property
    def name(self):
        """The statistic's column in ``history_``: the class name in snake case."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    def on_fit_begin(self, learner, **kwargs):
        self._validate_params()
        self.history_ = []

    def on_round_end(self, learner, *, round_, **context):
        statistic = float(self._statistic(context))
        self.history_.append({"round": int(round_), "statistic": statistic})

    def _statistic(self, context):
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class RoundRecord:
    """One active-learning round, as the round figures of
    :mod:`skal.diagnostics` read it.

    Attributes
    ----------
    round : int
        Round number (0 = the model trained on the initial labeled set).
    estimator : fitted classifier or None
        The model trained this round. Each record needs its own fitted object
        (e.g. a clone per round, as :class:`skal.ActiveLearner` trains): a model
        refitted in place would show the last round in every panel. ``None``
        when ``proba`` and ``features`` hold what a figure needs.
    labeled : ndarray of int
        Rows of ``X`` the model was trained on.
    queried : ndarray of int, default=empty
        Rows of ``X`` the strategy chose with this model (labeled next round).
    proba : ndarray of shape (n_rows, n_classes), default=None
        The model's probabilities on every row of the ``X`` a figure is given,
        in the order of ``classes`` (used instead of the estimator).
    features : ndarray of shape (n_rows, n_features), default=None
        The model's penultimate features on every row of that ``X``.
    classes : ndarray, default=None
        The labels of the columns of ``proba`` (the model's ``classes_``).
    """

    round: int
    estimator: object
    labeled: np.ndarray
    queried: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    proba: np.ndarray = None
    features: np.ndarray = None
    classes: np.ndarray = None


class RoundRecorder(Callback):
    """Keeps, per round, what the diagnostic figures need.

    For each round: the labeled rows, the rows queried with the round's model,
    and optionally the model's probabilities and penultimate features on ``X``
    (the fitted pool by default) and the model itself. ``records_`` is a list of
    :class:`RoundRecord`, which :func:`skal.diagnostics.plot_feature_embeddings`,
    :func:`~skal.diagnostics.plot_confidence_histograms`,
    :func:`~skal.diagnostics.plot_per_class_accuracy` and
    :func:`~skal.diagnostics.plot_class_balance` take directly (pass the
    recorder itself or ``recorder.records_``).

    Parameters
    ----------
    X : array-like or sparse matrix, default=None
        Rows on which ``proba`` and ``features`` are recorded; ``None`` means the
        pool given to ``fit`` (what the embedding and confidence figures show;
        give a test set for the per-class accuracy). Cloning the learner copies
        it.
    proba : bool, default=False
        Record each round's ``predict_proba`` on ``X`` (N x C floats per round).
    features : bool, default=False
        Record each round's penultimate features on ``X`` (N x D per round; a
        skal net, a skorch net ending in ``nn.Linear`` or a linear model).
    keep_estimators : bool, default=False
        Keep each round's model (a copy under ``warm_start=True``, where the
        learner trains the same object further). Figures then compute what was
        not recorded, on any ``X``.

    Attributes
    ----------
    records_ : list of RoundRecord
        One per round, in order. ``queried`` of a round is filled when the next
        round ends (the rows chosen with this round's model).
    rounds_ : list of dict
        The same as plain dicts (what is stored).
    fingerprint_ : str or None
        :func:`skal.label_store.pool_fingerprint` of the rows ``proba`` and
        ``features`` were recorded on (figures check it against their ``X``).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal import ActiveLearner
    >>> from skal.callbacks import RoundRecorder
    >>> X, y = load_digits(return_X_y=True)
    >>> learner = ActiveLearner(LogisticRegression(max_iter=200), "margin",
    ...                         n_rounds=2, random_state=0,
    ...                         callbacks=[RoundRecorder(proba=True)])
    >>> recorder = learner.fit(X / 16, y).callbacks_[0]
    >>> [(r.round, len(r.labeled), len(r.queried)) for r in recorder.records_]
    [(0, 10, 10), (1, 20, 10), (2, 30, 0)]
    >>> recorder.records_[0].proba.shape
    (1797, 10)
    """

    def __init__(self, X=None, *, proba=False, features=False, keep_estimators=False):
        self.X = X
        self.proba = proba
        self.features = features
        self.keep_estimators = keep_estimators

    def on_fit_begin(self, learner, **kwargs):
        self.rounds_ = []
        self.fingerprint_ = None
        self._warned = False

    @property
    def records_(self):
        """The rounds recorded so far, as a list of :class:`RoundRecord`."""
        return [RoundRecord(**entry) for entry in self.rounds_]

    def on_round_end(
        self,
        learner,
        *,
        round_,
        labeled_indices,
        queried_indices,
        estimator,
        strategy,
        X=None,
        **kwargs,
    ):
        if self.rounds_:
            # The rows labeled this round were chosen with the previous model.
            self.rounds_[-1]["queried"] = np.array(queried_indices, dtype=np.int64)
        proba, features = self._arrays(learner, estimator, X)
        kept = None
        if self.keep_estimators:
            kept = copy.deepcopy(estimator) if learner.warm_start else estimator
        # Plain dicts (not RoundRecord) so that skal.persistence can save them.
        self.rounds_.append(
            {
                "round": int(round_),
                "estimator": kept,
                "labeled": np.array(labeled_indices, dtype=np.int64),
                "queried": np.empty(0, dtype=np.int64),
                "proba": proba,
                "features": features,
                "classes": None if proba is None else np.asarray(estimator.classes_),
            }
        )

    def _arrays(self, learner, estimator, pool):
        """The round's probabilities and features on the recorded rows."""
        if not (self.proba or self.features):
            return None, None
        if self.X is not None:
            rows = check_pool(self.X, name="RoundRecorder X")
        elif pool is None:
            self._warn_no_pool()
            return None, None
        else:
            rows = pool
        if self.fingerprint_ is None:
            self.fingerprint_ = pool_fingerprint(rows)
        proba = embeddings.predict_proba(estimator, rows) if self.proba else None
        features = (
            np.asarray(embeddings.forward_pass(estimator, rows).features)
            if self.features
            else None
        )
        return proba, features

    def _warn_no_pool(self):
        if not getattr(self, "_warned", False):
            warnings.warn(
                "RoundRecorder records probabilities and features on the fitted "
                "pool, which this teach does not know (call learner.query on the "
                "pool before teach, or give RoundRecorder(X=...)): this round's "
                "arrays are not recorded.",
                UserWarning,
                stacklevel=4,
            )
            self._warned = True
