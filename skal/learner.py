"""ActiveLearner: the active-learning loop as a scikit-learn classifier."""

import contextlib
import time
import warnings
from numbers import Integral

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_feature_names,
    check_is_fitted,
    column_or_1d,
)
from tqdm.auto import tqdm

from ._config import get_config
from ._validation import (
    UNLABELED,
    check_n_queries,
    check_pool,
    n_features_of_array,
    num_samples,
    take_rows,
)
from .strategies import QueryStrategy, RandomSampling, get_strategy, top_n

HISTORY_COLUMNS = [
    "round",
    "n_labeled",
    "queried",
    "acquisition_seconds",
    "training_seconds",
    "eval_score",
]

# Rows of the fitted pool whose fingerprints are kept to recognize it in `query`.
_POOL_SAMPLE_ROWS = 32


class ActiveLearner(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
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
        without one).
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

    def __init__(
        self,
        estimator=None,
        strategy="entropy",
        *,
        n_initial=None,
        batch_size=10,
        n_rounds=10,
        subsample=None,
        oracle=None,
        oracle_batch_size=None,
        label_store=None,
        classes=None,
        missing_label=UNLABELED,
        warm_start=False,
        n_threads=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.strategy = strategy
        self.n_initial = n_initial
        self.batch_size = batch_size
        self.n_rounds = n_rounds
        self.subsample = subsample
        self.oracle = oracle
        self.oracle_batch_size = oracle_batch_size
        self.label_store = label_store
        self.classes = classes
        self.missing_label = missing_label
        self.warm_start = warm_start
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def set_params(self, **params):
        """Set parameters; ``strategy__<param>`` also works for a strategy name.

        A strategy given by name becomes that strategy's instance (with the
        given parameters), so that ``GridSearchCV`` can search strategy names
        together with their parameters.

        Returns
        -------
        self : object
        """
        prefix = "strategy__"
        nested = {
            key[len(prefix) :]: params.pop(key)
            for key in list(params)
            if key.startswith(prefix)
        }
        super().set_params(**params)
        if nested:
            if isinstance(self.strategy, str):
                self.strategy = get_strategy(self.strategy)
            if not isinstance(self.strategy, QueryStrategy):
                raise TypeError(
                    f"strategy__ parameters need a strategy (an instance or a "
                    f"registered name), got strategy={self.strategy!r}."
                )
            self.strategy.set_params(**nested)
        return self

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
            simulate = not unlabeled.any()
            if self.label_store is None:
                return self._fit(X, y, unlabeled, eval_set, simulate, session=None)
            if simulate:
                raise ValueError(
                    "label_store records an oracle's answers, but every label in y "
                    f"is known (a simulation): mark the rows to ask for with "
                    f"{self.missing_label!r} (missing_label)."
                )
            from .label_store import LabelingSession

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
        from .label_store import stored_learner_params

        stored, not_stored = stored_learner_params(label_store)
        missing = [name for name in not_stored if name not in params]
        if missing:
            raise ValueError(
                f"The label store could not keep the parameters {missing} (only skal "
                f"and scikit-learn objects are stored, never code); pass them to "
                f"resume, e.g. ActiveLearner.resume(X, y, store, {missing[0]}=...)."
            )
        learner = cls(**{**stored, **params, "label_store": label_store})
        if y is None:
            y = np.full(num_samples(X), learner.missing_label, dtype=object)
        return learner.fit(X, y, eval_set=eval_set)

    def _fit(self, X, y, unlabeled, eval_set, simulate, session):
        """The loop of :meth:`fit`; ``session`` links it to a label store."""
        self._session = session
        try:
            return self._run_rounds(X, y, unlabeled, eval_set, simulate)
        finally:
            del self._session

    def _run_rounds(self, X, y, unlabeled, eval_set, simulate):
        session = self._session
        asked, declined = {}, np.zeros(len(y), dtype=bool)
        known = np.flatnonzero(~unlabeled)
        n_given = len(known)
        if session is not None:
            asked = session.asked_per_round()
            y, unlabeled, restored, declined = self._restore(session, y, unlabeled)
            known = np.concatenate([known, restored])
        self._check_targets(_labels_at(y, known))
        if eval_set is not None:
            eval_set = self._validate_eval_set(eval_set)

        rng = check_random_state(self.random_state)
        n_initial, batch_size = self._sizes()
        if simulate:
            budget = n_initial + self.n_rounds * batch_size
            if budget > X.shape[0]:
                raise ValueError(
                    f"Every label in y is known, so fit simulates active learning, but "
                    f"n_initial + n_rounds * batch_size = {budget} exceeds the "
                    f"{X.shape[0]} samples. Mark unlabeled rows with "
                    f"missing_label={self.missing_label!r} or reduce the budget."
                )
            self.classes_ = self._infer_classes(y)
            labeled = rng.choice(X.shape[0], n_initial, replace=False)
            labels = y[labeled]

            def reveal(rows, round_):
                return y[rows]
        else:
            labels = _labels_at(y, known)
            self.classes_ = self._infer_classes(labels)
            labeled = known
            reveal = self._ask_oracle
            if len(known) == 0 and self.oracle is None:
                raise ValueError(
                    f"y marks every row as unlabeled (missing_label="
                    f"{self.missing_label!r}) and no oracle was given: nothing to "
                    f"train on."
                )
            if n_given == 0 and self.oracle is not None:
                # permutation()[:n] draws like choice(n, replace=False). A resumed
                # session draws the same way (same seeds downstream) and asks only
                # the rows of the initial set it is still missing.
                order = rng.permutation(X.shape[0])
                n_missing = min(n_initial, X.shape[0]) - asked.get(0, 0)
                draw = order[~(declined | ~unlabeled)[order]][: max(n_missing, 0)]
                if len(draw):
                    new, new_labels = self._keep_answered(draw, reveal(draw, 0))
                    declined[np.setdiff1d(draw, new)] = True
                    labeled = np.concatenate([labeled, new])
                    labels = _concat_labels(labels, new_labels)
        n_rounds = self.n_rounds if (simulate or self.oracle is not None) else 0
        # Rounds still to run and their sizes; a resumed session completes the
        # round it was interrupted in.
        plan = [
            (round_, batch_size - asked.get(round_, 0))
            for round_ in range(1, n_rounds + 1)
            if batch_size - asked.get(round_, 0) > 0
        ]

        # Independent streams, so that (for a given seed) every strategy trains the
        # same round-0 model and the models' seeds do not depend on the strategy.
        model_rng, strategy_rng, self._rng = (
            np.random.RandomState(_new_seed(rng)) for _ in range(3)
        )
        self._model_rng = model_rng
        self.strategy_ = self._make_strategy(strategy_rng)
        self._labeled_X, self._labeled_y = _take(X, labeled), labels
        history = []
        available = np.ones(X.shape[0], dtype=bool)
        if not simulate:
            available &= unlabeled & ~declined
        available[labeled] = False
        queried, acquisition_seconds = labeled, 0.0
        round_ = plan[0][0] - 1 if plan else n_rounds
        progress = tqdm(total=len(plan) + 1, disable=not self.verbose, desc="rounds")
        previous_model = None  # fit always starts from a fresh model
        while True:
            training_seconds = self._train(
                self._labeled_X, self._labeled_y, previous_model, simulate=simulate
            )
            previous_model = self.estimator_
            progress.update()
            history.append(
                (
                    round_,
                    len(self._labeled_y),
                    np.asarray(queried),
                    acquisition_seconds,
                    training_seconds,
                    self._eval_score(eval_set),
                )
            )
            if not plan or not available.any():
                break
            round_, n_queries = plan.pop(0)
            start = time.perf_counter()  # strategy fit + query: the acquisition cost
            self.strategy_.fit(
                self._labeled_X, self._labeled_y, estimator=self.estimator_
            )
            queried = self._acquire(X, np.flatnonzero(available), n_queries)
            acquisition_seconds = time.perf_counter() - start
            available[queried] = False
            answered, new_labels = self._keep_answered(queried, reveal(queried, round_))
            declined[np.setdiff1d(queried, answered)] = True
            queried = answered
            labeled = np.concatenate([labeled, queried])
            self._labeled_X = _stack(self._labeled_X, _take(X, queried))
            self._labeled_y = _concat_labels(self._labeled_y, new_labels)
        progress.close()
        # Ready for query(): the strategy sees the final model and labeled set.
        self.strategy_.fit(self._labeled_X, self._labeled_y, estimator=self.estimator_)
        self.labeled_indices_ = np.asarray(labeled, dtype=np.int64)
        self._remember_pool(X, declined)
        self.history_ = pd.DataFrame(history, columns=HISTORY_COLUMNS)
        return self

    def _restore(self, session, y, unlabeled):
        """Merge a label store's answers into ``(y, unlabeled)``.

        The store marks declined rows with -1 (``UNLABELED``), whatever
        ``missing_label`` is, so ``y`` is handed over in that convention.
        """
        marked = np.array(y, dtype=object)
        marked[unlabeled] = UNLABELED
        merged, restored, declined = session.restore(marked)
        restored = np.asarray(restored, dtype=np.int64)
        if len(restored) == 0:
            return y, unlabeled, restored, declined
        unlabeled = unlabeled.copy()
        unlabeled[restored] = False
        merged = np.array(merged, dtype=object)
        merged[unlabeled] = None
        return merged, unlabeled, restored, declined

    def _acquire(self, X, pool, batch_size):
        """Fit the strategy on the current model and pick rows of ``X`` from ``pool``."""
        if self.subsample is not None and len(pool) > self.subsample:
            pool = np.sort(self._rng.choice(pool, self.subsample, replace=False))
        return self._pick(X, min(batch_size, len(pool)), pool)

    def _pick(self, X, n, candidates=None):
        """Rows of ``X`` (among ``candidates``, default all) the strategy picks."""
        size = X.shape[0] if candidates is None else len(candidates)
        chunk_size = get_config()["chunk_size"]
        if size > chunk_size and _ranks_points(self.strategy_):
            # Score chunk by chunk: the strategy's query would keep features of
            # every row, and X[candidates] would copy nearly the whole pool (2.5 GB
            # for a 1M x 617 float32 memmap). Same scores, hence the same picks.
            scores = np.concatenate(
                [
                    self.strategy_.score(
                        X[rows] if candidates is None else _take(X, candidates[rows])
                    )
                    for rows in gen_batches(size, chunk_size)
                ]
            )
            picks = top_n(scores, n)
        else:
            pool = X if candidates is None else _take(X, candidates)
            picks = self.strategy_.query(pool, n)
        return picks if candidates is None else candidates[picks]

    def _train(self, X, y, previous=None, *, simulate=False):
        """Train a model on (X, y); return the seconds.

        A fresh clone of the estimator, or ``previous`` trained further when
        ``warm_start`` is set.
        """
        estimator = self._model_for_round(y, previous)
        _check_skorch_labels(estimator, y)
        start = time.perf_counter()
        try:
            estimator.fit(X, y)
        except (ValueError, IndexError) as exc:
            _explain_training_error(estimator, y, exc, simulate=simulate)
            raise
        seconds = time.perf_counter() - start
        self.estimator_ = estimator
        self._align_skorch_outputs(estimator, X)
        return seconds

    def _model_for_round(self, y, previous):
        wanted = self._classes_for(self._base_estimator())
        if self.warm_start and previous is not None:
            had = (
                previous.get_params(deep=False).get("classes")
                if wanted is not None
                else getattr(previous, "classes_", None)
            )
            needed = wanted if wanted is not None else np.unique(y)
            if had is not None and np.array_equal(np.asarray(had), needed):
                return previous
            warnings.warn(
                f"warm_start: the labeled set now has the classes "
                f"{np.asarray(needed).tolist()}, but the previous round's model has "
                f"outputs for {np.asarray(had).tolist()} only; this round trains a "
                f"fresh model. Pass classes=[...] (the full label set) so that "
                f"networks have every output from the first round.",
                UserWarning,
                stacklevel=4,
            )
        estimator = clone(self._base_estimator())
        _seed_unset_random_states(estimator, self._model_rng)
        if wanted is not None:
            estimator.set_params(classes=wanted)
        if self.warm_start:
            estimator.set_params(warm_start=True)
        return estimator

    def _classes_for(self, estimator):
        """The ``classes`` an estimator accepting them gets, else None."""
        params = estimator.get_params(deep=False)
        if "classes" not in params:
            return None
        return self.classes_ if params["classes"] is None else params["classes"]

    def _align_skorch_outputs(self, estimator, X):
        """A plain skorch net's output j is class j: make ``classes_`` say so.

        skorch's ``NeuralNetClassifier`` does not encode labels; its module fixes
        the number of outputs. When the labels seen so far are a subset of
        ``0..n_outputs-1`` (labeling without ``classes``), the label set is all of
        them; other labels cannot be told apart from output indices.
        """
        if not _is_plain_skorch_net(estimator):
            return
        n_outputs = np.asarray(estimator.predict_proba(X[:1])).shape[1]
        classes = np.asarray(self.classes_)
        if n_outputs == len(classes):
            return
        integers = classes.dtype.kind in "iu" or (
            classes.dtype.kind == "f" and np.all(classes == np.round(classes))
        )
        if self.classes is None and integers and np.all(classes >= 0):
            if np.all(classes < n_outputs):
                self.classes_ = np.arange(n_outputs)
                estimator.set_params(classes=self.classes_)
                return
        raise ValueError(
            f"The module of {type(estimator).__name__} has {n_outputs} outputs but "
            f"the label set is {classes.tolist()}: skorch's NeuralNetClassifier "
            f"treats output j as the label j. Pass classes=np.arange({n_outputs}) "
            f"to ActiveLearner with labels 0..{n_outputs - 1} (encode them with "
            f"sklearn.preprocessing.LabelEncoder), or size the output layer to the "
            f"classes, or use skal.nets.SkalNetClassifier, which encodes labels."
        )

    def _ask_oracle(self, indices, round_):
        """Ask the oracle, ``oracle_batch_size`` rows per call; store each answer."""
        indices = np.asarray(indices)
        step = self.oracle_batch_size or max(len(indices), 1)
        answers = []
        for start in range(0, max(len(indices), 1), step):
            rows = indices[start : start + step]
            labels = column_or_1d(np.asarray(self.oracle(rows), dtype=object))
            if len(labels) != len(rows):
                raise ValueError(
                    f"The oracle returned {len(labels)} labels for {len(rows)} rows."
                )
            declined = self._missing(labels)
            # Checked before storing: a bad label must not poison a resumed session.
            self._check_known_classes(self._clean(labels[~declined], "The oracle"))
            if self._session is not None:
                self._session.add(round_, rows, self._as_stored(labels, declined))
            answers.append(labels)
        return np.concatenate(answers) if answers else np.array([], dtype=object)

    def _as_stored(self, labels, declined):
        """Labels in the label store's convention: -1 marks a declined row."""
        stored = np.array(labels, dtype=object)
        real = ~declined & np.array(
            [not isinstance(v, str) and v == UNLABELED for v in stored], dtype=bool
        )
        if real.any():
            raise ValueError(
                f"The oracle answered the label {UNLABELED}, but a label store "
                f"records declined rows as {UNLABELED}: with a label_store, "
                f"{UNLABELED} cannot be a class (recode it, e.g. to 0)."
            )
        stored[declined] = UNLABELED
        return stored

    def _keep_answered(self, indices, labels):
        """Drop rows the oracle declined; reject labels outside ``classes``."""
        labels = np.asarray(labels, dtype=object)
        answered = ~self._missing(labels)
        indices = np.asarray(indices)[answered]
        labels = self._clean(labels[answered], "The oracle")
        self._check_known_classes(labels)
        if self.classes is None and len(labels):
            self.classes_ = (
                np.union1d(self.classes_, labels)
                if len(self.classes_)
                else np.unique(labels)
            )
        return indices, labels

    def _check_known_classes(self, labels):
        if self.classes is not None and len(labels):
            unknown = ~np.isin(labels, self.classes_)
            if unknown.any():
                raise ValueError(
                    f"Labels {np.unique(labels[unknown]).tolist()} are not in "
                    f"classes={list(self.classes_)}."
                )

    # --- use after fit -----------------------------------------------------------
    def query(self, X_pool, n):
        """Indices of the ``n`` rows of ``X_pool`` the strategy would label next.

        When ``X_pool`` is the pool given to ``fit`` (same rows at the same
        positions), its labeled rows (``labeled_indices_``) and the rows an oracle
        declined are never proposed; any other pool is scored whole. The proposed
        rows are remembered, so that :meth:`teach` can record them as labeled.

        Parameters
        ----------
        X_pool : array-like, DataFrame or sparse matrix of shape (n_pool, n_features)
        n : int

        Returns
        -------
        indices : ndarray of shape (n,)
            Rows of ``X_pool``.
        """
        check_is_fitted(self)
        with self._torch_threads():
            X_pool = self._validate_X(X_pool)
            fitted_pool = self._is_fitted_pool(X_pool)
            n = check_n_queries(n, X_pool.shape[0])
            candidates = None
            if fitted_pool:
                excluded = np.union1d(self.labeled_indices_, self._pool["declined"])
                candidates = np.setdiff1d(np.arange(X_pool.shape[0]), excluded)
                if n > len(candidates):
                    raise ValueError(
                        f"n={n} is larger than the {len(candidates)} unlabeled rows "
                        f"left in the fitted pool ({len(excluded)} of its "
                        f"{X_pool.shape[0]} rows are labeled or declined)."
                    )
            picks = np.asarray(self._pick(X_pool, n, candidates), dtype=np.int64)
            if fitted_pool:
                self._remember_proposed(X_pool, picks)
            return picks

    def teach(self, X_new, y_new):
        """Add labeled samples and retrain on everything labeled.

        Rows of ``X_new`` that :meth:`query` proposed from the fitted pool are
        recorded in ``labeled_indices_`` (matched by their values), so they are
        never proposed again; other rows are new data. The model is retrained
        from scratch, or trained further with ``warm_start=True``.

        Parameters
        ----------
        X_new : array-like, DataFrame or sparse matrix of shape (n_new, n_features)
        y_new : array-like of shape (n_new,)

        Returns
        -------
        self : object
        """
        check_is_fitted(self)
        with self._torch_threads():
            X_new = self._validate_X(X_new)
            y_new = column_or_1d(np.asarray(y_new, dtype=object))
            if len(y_new) != X_new.shape[0]:
                raise ValueError(
                    f"X_new has {X_new.shape[0]} samples but y_new has {len(y_new)} "
                    f"labels."
                )
            if self._missing(y_new).any():
                raise ValueError(
                    f"y_new contains missing_label={self.missing_label!r} "
                    f"(unlabeled): teach needs real labels."
                )
            y_new = self._clean(y_new, "y_new")
            self._check_targets(y_new)
            _, y_new = self._keep_answered(np.arange(len(y_new)), y_new)
            pool_rows = self._match_proposed(X_new)
            self._labeled_X = _stack(self._labeled_X, X_new)
            self._labeled_y = _concat_labels(self._labeled_y, y_new)
            self._pool_rows = np.concatenate([self._pool_rows, pool_rows])
            learned = pool_rows[pool_rows >= 0]
            self.labeled_indices_ = np.concatenate([self.labeled_indices_, learned])
            seconds = self._train(self._labeled_X, self._labeled_y, self.estimator_)
            self.strategy_.fit(
                self._labeled_X, self._labeled_y, estimator=self.estimator_
            )
            row = (
                int(self.history_["round"].iloc[-1]) + 1,
                len(self._labeled_y),
                learned,
                0.0,
                seconds,
                np.nan,
            )
            self.history_ = pd.concat(
                [self.history_, pd.DataFrame([row], columns=HISTORY_COLUMNS)],
                ignore_index=True,
            )
            return self

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
        check_is_fitted(self)
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
        check_is_fitted(self)
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

    # --- labels ------------------------------------------------------------------
    def _missing(self, y):
        """Boolean mask of the rows of ``y`` equal to ``missing_label``."""
        return _missing_mask(np.asarray(y), self.missing_label)

    def _clean(self, labels, name):
        """Labeled values as a plain array (object input -> int/float/str)."""
        return _clean_labels(labels, name, self.missing_label)

    def _split_labels(self, y, *, n_samples):
        """``(labels, unlabeled mask)`` from the ``y`` given to ``fit``.

        Refuses a ``y`` whose unlabeled rows are ambiguous (see
        ``missing_label``).
        """
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] != 1:
            raise ValueError(
                f"y has shape {y.shape}: ActiveLearner does single-label "
                f"classification (one class per row); multi-label and multi-output "
                f"targets are not supported."
            )
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {len(y)} labels.")
        unlabeled = self._missing(y)
        self._check_missing_label_choice(y, unlabeled)
        labels = self._clean(y[~unlabeled], "y")
        if not unlabeled.any():
            return labels, unlabeled
        full = np.empty(len(y), dtype=object)
        full[~unlabeled] = labels.tolist()
        return full, unlabeled

    def _check_missing_label_choice(self, y, unlabeled):
        missing = self.missing_label
        if self.classes is not None and not _is_nan_marker(missing):
            if np.any(_missing_mask(np.asarray(self.classes, dtype=object), missing)):
                raise ValueError(
                    f"classes={list(self.classes)} contains missing_label="
                    f"{missing!r}, which marks unlabeled rows. If {missing!r} is a "
                    f"class, pass missing_label=None (unlabeled rows are then None "
                    f"or NaN)."
                )
        labeled = y[~unlabeled]
        if isinstance(missing, (Integral, float)) and not _is_nan_marker(missing):
            strings = np.array([isinstance(v, str) for v in labeled], dtype=bool)
            if strings.any() and np.any(labeled[strings] == str(missing)):
                raise ValueError(
                    f"y holds string labels, among them {str(missing)!r}, but "
                    f"missing_label={missing!r} is a number, so no row is unlabeled. "
                    f"If {str(missing)!r} marks unlabeled rows, pass "
                    f"missing_label={str(missing)!r}; if it is a class, pass "
                    f"missing_label=None."
                )
        if not _is_nan_marker(missing) and np.any(pd.isna(labeled)):
            raise ValueError(
                f"y contains None or NaN, but missing_label={missing!r}. If None/NaN "
                f"marks unlabeled rows, pass missing_label=None (or np.nan)."
            )
        if not unlabeled.any() or self.classes is not None or len(labeled) == 0:
            return
        present = pd.unique(pd.Series(labeled, dtype=object))
        if len(present) > 1:
            return
        (only,) = present
        if _is_nan_marker(missing):
            binary = ""
        else:
            binary = (
                f"If {missing!r} is a class (binary labels {missing!r}/{only!r}), pass "
                f"missing_label=None (unlabeled rows are then marked None or NaN; "
                f"here none is). "
            )
        raise ValueError(
            f"y is ambiguous: with missing_label={missing!r}, {int(unlabeled.sum())} "
            f"rows are unlabeled and the {len(labeled)} labeled rows are all of the "
            f"single class {only!r}, leaving nothing to tell apart. {binary}If those "
            f"rows are unlabeled, pass the full label set with classes=[...] or "
            f"label rows of another class."
        )

    def _check_targets(self, labels):
        try:
            check_classification_targets(labels if len(labels) else [0, 1])
        except ValueError as exc:
            raise ValueError(
                f"{exc} ActiveLearner does classification: y must hold one class "
                f"label per row (integers or strings, missing_label="
                f"{self.missing_label!r} for unlabeled rows); regression targets are "
                f"not supported."
            ) from exc

    # --- the fitted pool ------------------------------------------------------------
    def _remember_pool(self, X, declined):
        """What :meth:`query` needs to recognize the fitted pool, and its rows."""
        n = X.shape[0]
        sample = np.unique(np.linspace(0, n - 1, min(n, _POOL_SAMPLE_ROWS)).astype(int))
        self._pool = {
            "n_samples": int(n),
            "sample_rows": sample.astype(np.int64),
            "sample_signatures": _row_signatures(X, sample),
            "declined": np.flatnonzero(declined).astype(np.int64),
            "proposed": {},
        }
        self._pool_rows = self.labeled_indices_.copy()  # pool row of each labeled row

    def _is_fitted_pool(self, X):
        """True if ``X`` has the fitted pool's rows at the fitted pool's positions.

        Checked where it matters: every labeled row is where it was (so excluding
        ``labeled_indices_`` excludes exactly them), and evenly spaced rows are
        unchanged (three sums per row kept at fit). Values are compared up to
        rounding: a vectorizer's ``transform`` may differ from its
        ``fit_transform`` in the last bit. Costs one gather of the labeled rows.
        """
        pool = getattr(self, "_pool", None)
        if pool is None or X.shape[0] != pool["n_samples"]:
            return False
        from_pool = self._pool_rows >= 0
        here = _take(X, self._pool_rows[from_pool])
        if not _close(here, _take(self._labeled_X, np.flatnonzero(from_pool))):
            return False
        now = _row_signatures(X, pool["sample_rows"])
        return _close(now, pool["sample_signatures"])

    def _remember_proposed(self, X, picks):
        from .label_store import row_fingerprint

        proposed = self._pool["proposed"]
        for row in picks:
            rows = proposed.setdefault(row_fingerprint(X, row), [])
            if int(row) not in rows:
                rows.append(int(row))

    def _match_proposed(self, X_new):
        """Pool row of each row of ``X_new`` that ``query`` proposed, else -1."""
        from .label_store import row_fingerprint

        proposed = self._pool["proposed"] if hasattr(self, "_pool") else {}
        rows = np.full(X_new.shape[0], -1, dtype=np.int64)
        for i in range(X_new.shape[0]):
            candidates = proposed.get(row_fingerprint(X_new, i))
            if candidates:
                rows[i] = candidates.pop(0)
        return rows

    # --- helpers -----------------------------------------------------------------
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
        for name in ("batch_size", "n_rounds"):
            value = getattr(self, name)
            minimum = 1 if name == "batch_size" else 0
            if not isinstance(value, Integral) or value < minimum:
                raise ValueError(
                    f"{name} must be an integer >= {minimum}, got {value!r}."
                )
        for name in ("n_initial", "subsample", "n_threads"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, Integral) or value < 1
            ):
                raise ValueError(
                    f"{name} must be a positive integer or None, got {value!r}."
                )
        if self.oracle is not None and not callable(self.oracle):
            raise TypeError("oracle must be callable: oracle(indices) -> labels.")
        size = self.oracle_batch_size
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, Integral) or size < 1
        ):
            raise ValueError(
                f"oracle_batch_size must be a positive integer or None, got {size!r}."
            )
        missing = self.missing_label
        if not (
            missing is None
            or isinstance(missing, str)
            or (
                isinstance(missing, (Integral, float)) and not isinstance(missing, bool)
            )
        ):
            raise TypeError(
                f"missing_label must be an int, a float (NaN), a string or None, got "
                f"{missing!r}."
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

    def _torch_threads(self):
        return torch_threads(self.n_threads)

    def _sizes(self):
        n_initial = self.batch_size if self.n_initial is None else self.n_initial
        return int(n_initial), int(self.batch_size)

    def _infer_classes(self, y):
        if self.classes is None:
            return np.unique(y)
        classes = np.unique(np.asarray(self.classes))
        unknown = ~np.isin(y, classes)
        if unknown.any():
            raise ValueError(
                f"y contains labels {np.unique(y[unknown]).tolist()} that are not in "
                f"classes={classes.tolist()}."
            )
        return classes

    def _base_estimator(self):
        if self.estimator is None:
            from .nets import MLPClassifier

            return MLPClassifier()
        return self.estimator

    def _make_strategy(self, rng):
        if isinstance(self.strategy, str):
            strategy = get_strategy(self.strategy)
        elif isinstance(self.strategy, QueryStrategy):
            strategy = clone(self.strategy)
        else:
            raise TypeError(
                f"strategy must be a QueryStrategy or a registered name, got "
                f"{self.strategy!r}."
            )
        # A RandomState object (not an int) so that successive rounds draw anew.
        if strategy.get_params().get("random_state", 0) is None:
            strategy.set_params(random_state=np.random.RandomState(_new_seed(rng)))
        return strategy

    def _eval_score(self, eval_set):
        if eval_set is None:
            return np.nan
        return self.score(*eval_set)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class ActiveLearningPipeline(Pipeline):
    """A scikit-learn ``Pipeline`` ending in an :class:`ActiveLearner`, with the
    labeling loop on raw input.

    A plain ``Pipeline([("tfidf", TfidfVectorizer()), ("al", ActiveLearner(...))])``
    trains and predicts on raw texts, but has no ``query``/``teach``, and its
    ``al__eval_set`` would reach the learner untransformed. This subclass adds
    both: :meth:`query` and :meth:`teach` take raw rows (texts) and pass them
    through the fitted preceding steps, and ``fit(..., <last step>__eval_set=
    (X_eval, y_eval))`` transforms ``X_eval`` the same way. Everything else is
    ``Pipeline`` (``GridSearchCV``, ``cross_val_score``, ``set_params``...).

    Parameters
    ----------
    steps : list of (name, transformer or estimator) tuples
        The last step must be an :class:`ActiveLearner`.
    memory, transform_input, verbose
        As in :class:`sklearn.pipeline.Pipeline`.

    Examples
    --------
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from sklearn.linear_model import LogisticRegression
    >>> texts = ["good goal", "bad code", "great match", "buggy kernel"] * 5
    >>> labels = np.array([0, 1, 0, 1] * 5)
    >>> y = np.where(np.arange(20) < 4, labels, -1)   # 4 labeled texts
    >>> pipe = ActiveLearningPipeline([
    ...     ("tfidf", TfidfVectorizer()),
    ...     ("al", ActiveLearner(LogisticRegression(), "margin")),
    ... ]).fit(texts, y, al__eval_set=(texts, labels))
    >>> picks = pipe.query(texts, 2)                   # rows of texts to label
    >>> pipe = pipe.teach([texts[i] for i in picks], labels[picks])
    >>> len(pipe[-1].labeled_indices_)
    6
    """

    def fit(self, X, y=None, **params):
        """Fit the preceding steps, then the learner (``eval_set`` transformed).

        Parameters
        ----------
        X : iterable
            Raw training input (e.g. texts), labeled and unlabeled rows.
        y : array-like of shape (n_samples,)
            Labels, the learner's ``missing_label`` for unlabeled rows.
        **params
            ``<step>__<param>`` fit parameters, as for ``Pipeline``;
            ``<last step>__eval_set=(X_eval, y_eval)`` takes raw ``X_eval``.

        Returns
        -------
        self : object
        """
        name = self.steps[-1][0]
        eval_set = params.pop(f"{name}__eval_set", None)
        if eval_set is None:
            return super().fit(X, y, **params)
        prefix = f"{name}__"
        own = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
        others = {k: v for k, v in params.items() if not k.startswith(prefix)}
        head = self._head()
        Xt = X if head is None else head.fit_transform(X, y, **others)
        X_eval, y_eval = eval_set
        self._final_estimator.fit(
            Xt, y, eval_set=(self._transform(X_eval), y_eval), **own
        )
        return self

    def query(self, X_pool, n):
        """Rows of the raw ``X_pool`` the learner would label next.

        See :meth:`ActiveLearner.query`: given the raw rows ``fit`` saw, labeled
        rows are never proposed.

        Parameters
        ----------
        X_pool : iterable
            Raw rows (e.g. texts).
        n : int

        Returns
        -------
        indices : ndarray of shape (n,)
        """
        return self._learner().query(self._transform(X_pool), n)

    def teach(self, X_new, y_new):
        """Teach the learner labeled raw rows (see :meth:`ActiveLearner.teach`).

        Parameters
        ----------
        X_new : iterable
            Raw rows (e.g. texts).
        y_new : array-like of shape (n_new,)

        Returns
        -------
        self : object
        """
        self._learner().teach(self._transform(X_new), y_new)
        return self

    def _head(self):
        return self[:-1] if len(self.steps) > 1 else None

    def _transform(self, X):
        head = self._head()
        return X if head is None else head.transform(X)

    def _learner(self):
        learner = self._final_estimator
        if not hasattr(learner, "query") or not hasattr(learner, "teach"):
            raise TypeError(
                f"The last step of an ActiveLearningPipeline must be an "
                f"ActiveLearner, got {type(learner).__name__}."
            )
        return learner


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run a block with ``n_threads`` torch and BLAS threads, then restore them.

    ``None`` leaves both alone. BLAS (OpenBLAS/MKL, through threadpoolctl) is
    limited too: the strategies' NumPy work (K-center, BADGE, grad_seq) slowed
    5-8x when OpenBLAS spun threads on cores busy with other processes
    (measured with benchmarks/acquisition.py on a loaded 2-core machine).
    """
    if n_threads is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        with threadpool_limits(limits=int(n_threads)):
            yield
    finally:
        torch.set_num_threads(previous)


# --- labels ----------------------------------------------------------------------
def _is_nan_marker(value):
    """True for the missing labels that mean "None or NaN"."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def _missing_mask(y, missing_label):
    if _is_nan_marker(missing_label):
        return np.asarray(pd.isna(y), dtype=bool).reshape(len(y))
    if isinstance(missing_label, str):
        if y.dtype.kind in "US":
            return y == missing_label
        if y.dtype == object:
            return np.array(
                [isinstance(v, str) and v == missing_label for v in y], dtype=bool
            )
        return np.zeros(len(y), dtype=bool)
    if y.dtype.kind in "iufb":
        return y == missing_label
    if y.dtype == object:
        return np.array(
            [
                not isinstance(v, str) and v is not None and bool(v == missing_label)
                for v in y
            ],
            dtype=bool,
        )
    return np.zeros(len(y), dtype=bool)  # string labels, numeric missing_label


def _clean_labels(labels, name, missing_label):
    """An object array of numeric labels as a plain int/float array.

    Object arrays of strings stay as they are (as in scikit-learn); numbers in an
    object array (unlabeled rows were None) become a numeric array.
    """
    labels = np.asarray(labels)
    if labels.dtype != object or len(labels) == 0:
        return labels
    is_string = np.array([isinstance(v, str) for v in labels], dtype=bool)
    if is_string.all():
        return labels
    if is_string.any():
        raise ValueError(
            f"{name} mixes string and numeric labels (e.g. {labels[is_string][0]!r} "
            f"and {labels[~is_string][0]!r}); use one type. Unlabeled rows are "
            f"marked with missing_label={missing_label!r}."
        )
    if pd.isna(labels).any():
        raise ValueError(
            f"{name} contains None or NaN, but missing_label={missing_label!r}. If "
            f"None/NaN marks unlabeled rows, pass missing_label=None (or np.nan)."
        )
    return np.asarray(labels.tolist())


def _labels_at(y, rows):
    rows = np.asarray(rows, dtype=np.int64)
    return _clean_labels(y[rows], "y", None) if y.dtype == object else y[rows]


def _concat_labels(a, b):
    if len(a) == 0:
        return np.asarray(b)
    if len(b) == 0:
        return np.asarray(a)
    return np.concatenate([a, b])


# --- skorch nets -------------------------------------------------------------------
def _is_skorch_net(estimator):
    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        return False
    return isinstance(estimator, NeuralNet)


def _is_plain_skorch_net(estimator):
    """A skorch net that is not one of skal's (which encode labels and cast X)."""
    from .nets import SkalNetClassifier

    return _is_skorch_net(estimator) and not isinstance(estimator, SkalNetClassifier)


def _wants_float32(estimator):
    """True for a plain skorch net whose module computes in float32."""
    if not _is_plain_skorch_net(estimator):
        return False
    import torch

    module = getattr(estimator, "module_", None) or estimator.module
    if isinstance(module, torch.nn.Module):
        parameter = next(module.parameters(), None)
        return parameter is None or parameter.dtype == torch.float32
    return torch.get_default_dtype() == torch.float32


def _check_skorch_labels(estimator, y):
    if not _is_plain_skorch_net(estimator):
        return
    y = np.asarray(y)
    integers = y.dtype.kind in "iu" or (
        y.dtype.kind == "f" and np.all(y == np.round(y))
    )
    if not integers or (len(y) and y.min() < 0):
        shown = np.unique(y)[:5].tolist()
        raise ValueError(
            f"{type(estimator).__name__} (skorch) takes labels 0..n_classes-1 (output "
            f"j is class j), got labels such as {shown}. Encode them with "
            f"sklearn.preprocessing.LabelEncoder, or use skal.nets.SkalNetClassifier "
            f"(or skal.nets.MLPClassifier), which encodes labels."
        )


def _explain_training_error(estimator, y, exc, *, simulate):
    """Re-raise a training error with what the user should change, if known."""
    name = type(estimator).__name__
    text = str(exc)
    if _is_skorch_net(estimator) and getattr(estimator, "train_split", None):
        if "n_splits" in text or "members in each class" in text:
            raise ValueError(
                f"{name}'s train_split holds out a validation split (skorch's "
                f"default: 5-fold stratified), which the {len(y)} labeled rows of "
                f"an active-learning round cannot fill. Pass train_split=None to "
                f"the net (e.g. NeuralNetClassifier(..., train_split=None)). "
                f"Original error: {text}"
            ) from exc
    if _is_plain_skorch_net(estimator) and isinstance(exc, IndexError):
        raise ValueError(
            f"{name} could not be trained: a label is not smaller than the number "
            f"of outputs of its module (skorch's output j is class j). Size the "
            f"output layer to the classes or encode the labels 0..n_classes-1. "
            f"Original error: {text}"
        ) from exc
    if len(np.unique(y)) < 2:
        fix = "use a larger n_initial" if simulate else "label rows of another class"
        raise ValueError(
            f"{name} could not be trained on {len(y)} labeled samples of the single "
            f"class {np.unique(y)[0].item()!r}; {fix}, or use an estimator that "
            f"accepts `classes` (skal's nets) and pass classes=[...]. Original "
            f"error: {text}"
        ) from exc


# --- arrays --------------------------------------------------------------------------
def _ranks_points(strategy):
    """True if ``query`` is the top ``n`` of ``score`` whatever the chunking.

    That is the protocol's default ``query``, with deterministic scores: scores
    drawn per call (MC dropout) would change with the chunks. Random sampling's
    uniform draws come out the same in chunks.
    """
    cls = type(strategy)
    if cls.query is not QueryStrategy.query or cls._select is not QueryStrategy._select:
        return False
    return "random_state" not in strategy.get_params() or isinstance(
        strategy, RandomSampling
    )


def _take(X, indices):
    return X[np.asarray(indices, dtype=np.int64)]


def _stack(A, B):
    if sparse.issparse(A):
        return sparse.vstack([A, B], format="csr")
    return np.concatenate([A, B])


def _close(A, B, rtol=1e-6):
    """Same shape and values equal up to ``rtol`` times the largest magnitude."""
    if A.shape != B.shape:
        return False
    if sparse.issparse(A) or sparse.issparse(B):
        A, B = sparse.csr_matrix(A, dtype=np.float64), sparse.csr_matrix(B)
        gap, scale = abs(A - B), max(abs(A).max(), abs(B).max(), 0.0)
        return gap.nnz == 0 or gap.max() <= rtol * scale
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    if A.size == 0:
        return True
    scale = max(np.abs(A).max(), np.abs(B).max())
    return bool(np.all(np.abs(A - B) <= rtol * scale))


def _row_signatures(X, rows):
    """Per row: the sum, the sum of squares and a position-weighted sum."""
    block = _take(X, rows)
    if sparse.issparse(block):
        block = sparse.csr_matrix(block, dtype=np.float64)
        weights = np.arange(1, block.shape[1] + 1) / block.shape[1]
        return np.column_stack(
            [
                np.asarray(block.sum(axis=1)).ravel(),
                np.asarray(block.multiply(block).sum(axis=1)).ravel(),
                block @ weights,
            ]
        )
    block = np.asarray(block, dtype=np.float64).reshape(len(rows), -1)
    weights = np.arange(1, block.shape[1] + 1) / block.shape[1]
    return np.column_stack([block.sum(axis=1), (block**2).sum(axis=1), block @ weights])


def _brief(exc, limit=300):
    """An exception's message cut to ``limit`` characters (no whole documents)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _new_seed(rng):
    return int(rng.randint(np.iinfo(np.int32).max))


def _seed_unset_random_states(estimator, rng):
    """Give every ``random_state`` left at None a seed drawn from ``rng``.

    Like scikit-learn's ensembles do for their members, so that an ActiveLearner
    with a ``random_state`` is reproducible end to end.
    """
    params = estimator.get_params(deep=True)
    unset = {
        key: _new_seed(rng)
        for key, value in params.items()
        if (key == "random_state" or key.endswith("__random_state")) and value is None
    }
    if unset:
        estimator.set_params(**unset)
