"""ActiveLearner: the active-learning loop as a scikit-learn classifier."""

import os
import warnings
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import (
    _check_feature_names,
    check_is_fitted,
    column_or_1d,
)

from .._validation import (
    UNLABELED,
    check_pool,
    n_features_of_array,
    num_samples,
    take_rows,
)
from ..label_store import (
    MAX_STORED_ARRAY_SIZE,
    LabelingSession,
    LabelStore,
    stored_learner_params,
)
from ..stopping import StoppingCriterion, check_stopping
from ..strategies import QueryStrategy
from ._callbacks import check_callbacks
from ._labeling import _LabelingLoop
from ._labels import _LabelHandling
from ._params import _NestedParams
from ._pool import _FittedPool
from ._rounds import _RoundLoop
from ._training import _Training, _wants_float32

# Private attributes that `query` and `teach` need after `fit` (see `_get_state`).
_PRIVATE_STATE = (
    "_labeled_X",
    "_labeled_y",
    "_model_rng",
    "_rng",
    "_pool",
    "_pool_rows",
)


class ActiveLearner(
    _NestedParams,
    _LabelingLoop,
    _RoundLoop,
    _Training,
    _FittedPool,
    _LabelHandling,
    ClassifierMixin,
    MetaEstimatorMixin,
    BaseEstimator,
):
    """Pool-based active learning around any classifier, as a classifier.

    ``fit(X, y)`` runs the active-learning loop. Rows whose label is
    ``missing_label`` (default ``-1``, scikit-learn's semi-supervised convention;
    ``None``/NaN as in scikit-activeml) are unlabeled:

    - **Simulation** (no unlabeled row in ``y``): labels are revealed only for
      ``n_initial`` random rows, then for the rows the strategy queries, for
      ``n_rounds`` rounds of ``batch_size`` points. Every round trains a fresh clone
      of ``estimator`` from scratch on the labeled rows (or, with
      ``warm_start=True``, continues training the previous round's model).
    - **Labeling** (some unlabeled rows): trains on the labeled rows; with an
      ``oracle``, asks it for the labels of ``batch_size`` queried rows per round,
      ``n_rounds`` times (starting with ``n_initial`` random rows if nothing is
      labeled yet). Without an oracle, the fitted learner is ready for the
      labeling loop: :meth:`query` proposes rows, :meth:`teach` learns their
      labels (see the example below).

    Parameters
    ----------
    estimator : classifier, default=None
        Trained from scratch (cloned) each round. ``None`` means
        :class:`skal.nets.MLPClassifier` with its defaults. Any scikit-learn
        classifier works; a plain skorch ``NeuralNetClassifier`` takes labels
        ``0..n_outputs-1`` and is given float32 input (float64 is cast).
    strategy : QueryStrategy or str, default="entropy"
        A strategy instance or a registered name (see
        :func:`skal.strategies.available_strategies`). Its parameters are reachable
        as ``strategy__<param>`` even when it is given by name (a grid over
        ``{"strategy": ["bald", "mc_entropy"], "strategy__n_samples": [5, 10]}``
        works).
    n_initial : int, default=None
        Size of the random initial labeled set; ``None`` means ``batch_size`` (the
        protocol of paper 001).
    initial_strategy : str, QueryStrategy or None, default=None
        How the initial set is chosen when no label is given (a simulation, or
        an oracle session starting from nothing). ``None`` and ``"random"``
        draw ``n_initial`` rows uniformly from ``random_state`` (the same rows
        as before this parameter existed). A model-free strategy picks them
        instead: ``"typiclust"``, ``"probcover"`` or ``"kcenter"`` (their
        names mean ``space="input"``), or an instance whose
        ``needs_estimator`` is False (e.g. ``TypiClust(space=embed)``); a
        strategy that needs a model is refused. With no label and no oracle,
        ``fit`` trains nothing and :meth:`query` proposes the first rows with
        it (``None`` raises there: nothing to train on).
    batch_size : int, default=10
        Points queried per round.
    n_rounds : int, default=10
        Acquisition rounds.
    subsample : int, default=None
        If set, each round's candidates are a uniform random subset of this many
        unlabeled rows (the candidate set R of Learning Loss and LPLgrad).
    oracle : callable, default=None
        ``oracle(indices) -> labels`` for rows ``indices`` of the ``X`` given to
        ``fit``. A returned ``missing_label`` means "could not label": the row is
        dropped from the pool and never asked again.
    oracle_batch_size : int, default=None
        Rows per oracle call. ``None`` asks for a whole query batch at once; ``1``
        asks one row at a time (a person at a terminal), so that with a
        ``label_store`` every answer is durable as soon as it is given.
    label_store : str, path-like or LabelStore, default=None
        Where the oracle's answers are written, each oracle call in one committed
        transaction, before anything else happens (a path means an SQLite file,
        see :mod:`skal.label_store`). If the store already holds answers for
        this pool, ``fit`` continues that session: stored labels are reused and
        never asked again, and the rounds continue where they stopped (see
        :meth:`resume`). A store created for another pool is refused.
    classes : array-like, default=None
        The full label set. Inferred from ``y`` when omitted; passed to estimators
        that accept ``classes`` (skal's nets, skorch nets) so that early models
        already have every output.
    missing_label : int, float, str or None, default=-1
        The value of ``y`` that marks an unlabeled row. ``None`` and ``np.nan``
        both mean "``None`` or NaN" (for object or float ``y``); a string marks
        unlabeled rows of string labels. ``y`` is refused when its meaning is
        ambiguous: when the labeled rows would hold a single class (binary labels
        ``{-1, +1}`` with the default would leave only ``+1``: pass
        ``missing_label=None`` if ``-1`` is a class), when ``classes`` contains
        ``missing_label``, when string labels contain ``str(missing_label)``, or
        when ``y`` holds NaN/None while ``missing_label`` is not ``None``/NaN.
    callbacks : list of skal.callbacks.Callback, default=None
        Notified when ``fit`` begins and ends and when each round begins and
        ends (see :mod:`skal.callbacks`, which also says which hooks fire in
        ``query``/``teach``). Each ``fit`` works on clones, kept in
        ``callbacks_``; :class:`skal.callbacks.RoundRecorder` keeps what
        :mod:`skal.diagnostics` draws.
    stopping : skal.stopping criterion or list of them, default=None
        Checked after every round; the learner stops querying at the first that
        fires (``stop_reason_``), even before ``n_rounds``. Each criterion's
        statistic is a column of ``history_``; in a labeling session the stop is
        written to the ``label_store`` and :meth:`resume` asks no more. A single
        criterion's parameters are searchable as ``stopping__<param>``; a list
        is searched as whole lists (see :mod:`skal.stopping`).
    warm_start : bool, default=False
        When true, each round continues training the previous round's model
        instead of a fresh clone (Algorithm 1 of papers 002 and 003): skorch and
        skal nets keep their weights and optimizer state (skorch's
        ``warm_start=True``); scikit-learn estimators with a ``warm_start``
        parameter get it set. Other estimators are refused. A round whose labeled
        set gains a class the previous model has no output for starts afresh (with
        a warning; pass ``classes`` to avoid it). ``fit`` always starts from a
        fresh model; :meth:`teach` continues the fitted one.
    n_threads : int, default=None
        Torch threads used during ``fit``, ``query``, ``teach`` and prediction; the
        previous setting is restored afterwards. ``None`` leaves torch's setting
        alone. Small networks run fastest on one thread, and torch's default (one
        thread per core) collapses when cores are shared: one BADGE run took 48.8 s
        with the default threads on a busy machine and 3.7-5.3 s with
        ``n_threads=1``.
    random_state : int, RandomState instance or None, default=None
        Controls the initial set, the candidate subsamples, and the seeds given to
        the estimator and strategy where their own ``random_state`` is ``None``.
    verbose : int, default=0
        Show a progress bar over rounds when positive.

    Attributes
    ----------
    estimator_ : classifier
        The model trained on the final labeled set.
    strategy_ : QueryStrategy
        The strategy, fitted on the final labeled set (ready for :meth:`query`).
    classes_ : ndarray of shape (n_classes,)
    labeled_indices_ : ndarray of int
        Rows of the fitted ``X`` that are labeled, in the order they were labeled
        (``fit``'s rows, then rows taught with :meth:`teach` after :meth:`query`
        proposed them).
    history_ : pandas.DataFrame
        One row per trained model: ``round`` (0 is the initial set), ``n_labeled``,
        ``queried`` (rows added in that round), ``acquisition_seconds``,
        ``training_seconds`` and ``eval_score`` (accuracy on ``eval_set``, NaN
        without one), then one column per stopping criterion (its ``name``,
        numbered when repeated) with its statistic.
    initial_strategy_ : QueryStrategy or None
        The fitted initial strategy; None when the initial set was drawn at
        random or given.
    callbacks_ : list of Callback
        The callbacks of the last ``fit`` (clones of ``callbacks``), with what
        they recorded.
    stopping_ : list of StoppingCriterion
        The fitted criteria (clones of ``stopping``), each with its
        ``history_``.
    stop_reason_ : str or None
        History column of the criterion that stopped the learner, None if none
        did (or the one recorded in the label store by an earlier run).
    stop_round_ : int or None
        The round after which it stopped.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` (only then); later DataFrames must have
        the same columns in the same order.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal import ActiveLearner
    >>> X, y = load_digits(return_X_y=True)
    >>> learner = ActiveLearner(LogisticRegression(max_iter=200), "margin",
    ...                         batch_size=20, n_rounds=3, random_state=0)
    >>> learner.fit(X / 16, y).history_["n_labeled"].tolist()
    [20, 40, 60, 80]

    The labeling loop: ``query`` never proposes a labeled row of the fitted pool,
    and ``teach`` records the rows it learns.

    >>> y_partial = np.full(len(y), -1)
    >>> y_partial[:40] = y[:40]
    >>> learner = ActiveLearner(LogisticRegression(max_iter=200), "margin")
    >>> learner = learner.fit(X / 16, y_partial)
    >>> picks = learner.query(X / 16, 5)              # rows of X, none of the 40
    >>> learner = learner.teach((X / 16)[picks], y[picks])
    >>> len(learner.labeled_indices_)
    45
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        # A name is checked against the registry by get_strategy, whose message
        # lists the registered names.
        "strategy": [QueryStrategy, str],
        "n_initial": [Interval(Integral, 1, None, closed="left"), None],
        "initial_strategy": [QueryStrategy, str, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_rounds": [Interval(Integral, 0, None, closed="left")],
        "subsample": [Interval(Integral, 1, None, closed="left"), None],
        "oracle": [callable, None],
        "oracle_batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "label_store": [str, os.PathLike, LabelStore, None],
        "classes": ["array-like", None],
        # bool is refused in _check_params (it is an Integral).
        "missing_label": [Integral, Real, str, None],
        "callbacks": [list, None],
        "stopping": [StoppingCriterion, list, None],
        "warm_start": ["boolean"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        strategy="entropy",
        *,
        n_initial=None,
        initial_strategy=None,
        batch_size=10,
        n_rounds=10,
        subsample=None,
        oracle=None,
        oracle_batch_size=None,
        label_store=None,
        classes=None,
        missing_label=UNLABELED,
        callbacks=None,
        stopping=None,
        warm_start=False,
        n_threads=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.strategy = strategy
        self.n_initial = n_initial
        self.initial_strategy = initial_strategy
        self.batch_size = batch_size
        self.n_rounds = n_rounds
        self.subsample = subsample
        self.oracle = oracle
        self.oracle_batch_size = oracle_batch_size
        self.label_store = label_store
        self.classes = classes
        self.missing_label = missing_label
        self.callbacks = callbacks
        self.stopping = stopping
        self.warm_start = warm_start
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # --- fit: the loop -----------------------------------------------------------
    def fit(self, X, y, eval_set=None):
        """Run the active-learning loop (see the class docstring).

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)
            The pool, labeled and unlabeled rows together.
        y : array-like of shape (n_samples,)
            Labels, ``missing_label`` (default ``-1``) for unlabeled rows.
        eval_set : tuple (X_eval, y_eval), default=None
            Held-out data scored after every round (``history_["eval_score"]``).

        Returns
        -------
        self : object
        """
        self._check_params()
        with self._torch_threads():
            X = self._validate_X(X, reset=True)
            y, unlabeled = self._split_labels(y, n_samples=X.shape[0])
            # For the stopping criteria and recorders of a later teach (a
            # reference to the user's pool, never pickled or saved).
            self._query_pool = X
            simulate = not unlabeled.any()
            if self.label_store is None:
                return self._fit(X, y, unlabeled, eval_set, simulate, session=None)
            if simulate:
                raise ValueError(
                    "label_store records an oracle's answers, but every label in y "
                    f"is known (a simulation): mark the rows to ask for with "
                    f"{self.missing_label!r} (missing_label)."
                )
            session = LabelingSession(self.label_store, X, self.get_params(deep=False))
            try:
                return self._fit(X, y, unlabeled, eval_set, simulate, session)
            finally:
                session.close()

    @classmethod
    def resume(cls, X, y, label_store, *, eval_set=None, **params):
        """Continue a labeling session from its label store.

        Rebuilds the learner from the parameters the store kept (``params``
        override them; the ``oracle`` is code and is never stored), verifies that
        ``X`` is the pool the session labeled (raising
        :class:`~skal.label_store.LabelStoreMismatchError` otherwise), restores
        every stored label, retrains and continues with the next query. Stored
        labels are never asked again or duplicated; an interrupted round is
        completed first. Durability holds per oracle call: see
        ``oracle_batch_size`` and :mod:`skal.label_store`.

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)
            The same pool as when the session started.
        y : array-like of shape (n_samples,) or None
            The labels given when the session started (``missing_label`` =
            unlabeled); ``None`` means none were given.
        label_store : str, path-like or LabelStore
        eval_set : tuple (X_eval, y_eval), default=None
        **params
            Constructor parameters, e.g. ``oracle=ask`` (needed to continue
            asking), or ``estimator=...`` when the store could not keep it.

        Returns
        -------
        learner : ActiveLearner
            Fitted. Its ``history_`` starts with the model trained on the restored
            labels.
        """
        stored, not_stored = stored_learner_params(label_store)
        missing = [name for name in not_stored if name not in params]
        if missing:
            raise ValueError(
                f"The label store could not keep the parameters {missing} (only skal "
                f"and scikit-learn objects are stored, never code or arrays of more "
                f"than {MAX_STORED_ARRAY_SIZE:,} values); pass them to resume, e.g. "
                f"ActiveLearner.resume(X, y, store, {missing[0]}=...)."
            )
        learner = cls(**{**stored, **params, "label_store": label_store})
        if y is None:
            y = np.full(num_samples(X), learner.missing_label, dtype=object)
        return learner.fit(X, y, eval_set=eval_set)

    # --- use after fit (query and teach: _labeling.py) ----------------------------
    def predict_proba(self, X):
        """Probabilities over ``classes_`` from the final model.

        Classes the final model never saw get probability 0.

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        self._check_model()
        with self._torch_threads():
            X = self._validate_X(X)
            proba = self.estimator_.predict_proba(X)
        model_classes = np.asarray(self.estimator_.classes_)
        if len(model_classes) == len(self.classes_):
            return proba
        full = np.zeros((proba.shape[0], len(self.classes_)), dtype=proba.dtype)
        full[:, np.searchsorted(self.classes_, model_classes)] = proba
        return full

    def predict(self, X):
        """Labels predicted by the final model.

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        self._check_model()
        with self._torch_threads():
            X = self._validate_X(X)
            return self.estimator_.predict(X)

    def score(self, X, y, sample_weight=None):
        """Accuracy on the labeled rows of ``(X, y)``.

        Rows whose label is ``missing_label`` have no true label to score
        against: they are left out, with a warning (``cross_val_score`` on a
        partly labeled ``y`` would otherwise count them as errors).

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        y = column_or_1d(np.asarray(y, dtype=object))
        unlabeled = self._missing(y)
        if unlabeled.any():
            if unlabeled.all():
                raise ValueError(
                    f"Every label in y is missing_label={self.missing_label!r}: "
                    f"there is nothing to score against."
                )
            warnings.warn(
                f"score: {int(unlabeled.sum())} of the {len(y)} rows of y are "
                f"unlabeled (missing_label={self.missing_label!r}) and are left out; "
                f"the accuracy is over the {int((~unlabeled).sum())} labeled rows.",
                UserWarning,
                stacklevel=2,
            )
            keep = np.flatnonzero(~unlabeled)
            X = take_rows(X.tocsr() if sparse.issparse(X) else X, keep)
            if sample_weight is not None:
                sample_weight = np.asarray(sample_weight)[keep]
        y = self._clean(y[~unlabeled], "y")
        return super().score(X, y, sample_weight=sample_weight)

    # --- state, for skal.persistence ---------------------------------------------
    def _get_state(self):
        """What ``fit`` (and ``teach``) learned, as ``{name: value}``.

        The public fitted attributes (``estimator_``, ``strategy_``, ``history_``,
        ...) and the private ones ``query`` and ``teach`` need (the labeled rows,
        the random streams, the fitted pool's bookkeeping). :meth:`_set_state`
        restores it.
        """
        check_is_fitted(self)
        state = {
            name: value
            for name, value in vars(self).items()
            if name.endswith("_") and not name.startswith("_")
        }
        for name in _PRIVATE_STATE:
            if hasattr(self, name):
                state[name] = getattr(self, name)
        return state

    def _set_state(self, state):
        """Restore what :meth:`_get_state` exported; returns ``self``.

        Only fitted-state names (``name_``) and the learner's own private state
        are set: a name outside them raises ``ValueError``.
        """
        for name in state:
            public = (
                isinstance(name, str)
                and name.isidentifier()
                and name.endswith("_")
                and not name.startswith("_")
            )
            if not public and name not in _PRIVATE_STATE:
                raise ValueError(
                    f"refusing to set the attribute {name!r} of {type(self).__name__}, "
                    f"which is not fitted state."
                )
        for name, value in state.items():
            setattr(self, name, value)
        return self

    # --- helpers -----------------------------------------------------------------
    def _check_model(self):
        """Fitted, and a model exists (``fit`` without labels trains none)."""
        check_is_fitted(self)
        if self.estimator_ is None:
            raise NotFittedError(
                f"This {type(self).__name__} has no model yet: fit got no label "
                f"(initial_strategy={self.initial_strategy!r}). Label the rows "
                f"query proposes and pass them to teach first."
            )

    def _validate_X(self, X, *, reset=False):
        """Finite values, sparse kept CSR, N-D images allowed, feature count."""
        _check_feature_names(self, X, reset=reset)
        n_features = None if reset else self.n_features_in_
        X = check_pool(X, n_features=n_features, name="X", owner=type(self).__name__)
        if reset:
            self.n_features_in_ = n_features_of_array(X)
        if X.dtype == np.float64 and _wants_float32(self._base_estimator()):
            # skorch feeds X to the module as is: float64 meets float32 weights.
            X = X.astype(np.float32)
        return X

    def _validate_eval_set(self, eval_set):
        X_eval, y_eval = eval_set
        try:
            return self._validate_X(X_eval), column_or_1d(y_eval)
        except ValueError as exc:
            raise ValueError(
                f"eval_set: {_brief(exc)} ActiveLearner scores eval_set with its "
                f"estimator, so X_eval must look like the X given to fit (e.g. "
                f"already vectorized). In a Pipeline, use "
                f"skal.ActiveLearningPipeline: it transforms eval_set through the "
                f"preceding steps."
            ) from None

    def _check_params(self):
        """Checks beyond ``_parameter_constraints``: types sklearn cannot express
        and parameters that depend on each other."""
        self._validate_params()
        check_callbacks(self.callbacks)
        check_stopping(self.stopping)
        self._initial_strategy_instance()  # refuses strategies that need a model
        if isinstance(self.missing_label, bool):
            raise TypeError(
                f"missing_label must be an int, a float (NaN), a string or None, got "
                f"{self.missing_label!r}."
            )
        if self.warm_start:
            base = self._base_estimator()
            if "warm_start" not in base.get_params(deep=False):
                raise TypeError(
                    f"warm_start=True continues training the previous round's model, "
                    f"but {type(base).__name__} has no warm_start parameter. Use a "
                    f"skorch or skal net, or a scikit-learn estimator that has one "
                    f"(e.g. LogisticRegression, SGDClassifier), or warm_start=False."
                )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __getstate__(self):
        # The pool last given to fit/query and the fit's eval_set are the user's
        # data, kept only for the next teach in this process: a pickled or
        # copied learner does not carry them (teach then warns if a criterion
        # needs the pool, and scores NaN).
        state = dict(super().__getstate__())
        state.pop("_query_pool", None)
        state.pop("_eval_set", None)
        return state


def _brief(exc, limit=300):
    """An exception's message cut to ``limit`` characters (no whole documents)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
