"""ActiveLearner: the active-learning loop as a scikit-learn classifier."""

import time
from numbers import Integral

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from tqdm.auto import tqdm

from ._config import get_config
from ._validation import (
    UNLABELED,
    check_n_queries,
    check_pool,
    n_features_of_array,
    num_samples,
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


class ActiveLearner(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Pool-based active learning around any classifier, as a classifier.

    ``fit(X, y)`` runs the active-learning loop. Rows with ``y == -1`` are unlabeled
    (scikit-learn's semi-supervised convention):

    - **Simulation** (no ``-1`` in ``y``): labels are revealed only for
      ``n_initial`` random rows, then for the rows the strategy queries, for
      ``n_rounds`` rounds of ``batch_size`` points. Every round trains a fresh clone
      of ``estimator`` from scratch on the labeled rows.
    - **Labeling** (some ``-1``): trains on the labeled rows; with an ``oracle``,
      asks it for the labels of ``batch_size`` queried rows per round, ``n_rounds``
      times (starting with ``n_initial`` random rows if nothing is labeled yet).
      Without an oracle, the fitted learner is ready for :meth:`query` and
      :meth:`teach`.

    Parameters
    ----------
    estimator : classifier, default=None
        Trained from scratch (cloned) each round. ``None`` means
        :class:`skal.nets.MLPClassifier` with its defaults.
    strategy : QueryStrategy or str, default="entropy"
        A strategy instance or a registered name (see
        :func:`skal.strategies.available_strategies`).
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
        ``fit``. A returned label of ``-1`` means "could not label": the row is
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
        that accept ``classes`` (skal's nets) so that early models already have
        every output.
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
        Rows of ``X`` labeled during ``fit``, in the order they were labeled.
    history_ : pandas.DataFrame
        One row per trained model: ``round`` (0 is the initial set), ``n_labeled``,
        ``queried`` (rows added in that round), ``acquisition_seconds``,
        ``training_seconds`` and ``eval_score`` (accuracy on ``eval_set``, NaN
        without one).
    n_features_in_ : int

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
            Labels, ``-1`` for unlabeled rows.
        eval_set : tuple (X_eval, y_eval), default=None
            Held-out data scored after every round (``history_["eval_score"]``).

        Returns
        -------
        self : object
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        y = column_or_1d(y, warn=True)
        if len(y) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {len(y)} labels.")
        unlabeled = _unlabeled_mask(y)
        simulate = not unlabeled.any()
        if self.label_store is None:
            return self._fit(X, y, eval_set, simulate, session=None)
        if simulate:
            raise ValueError(
                "label_store records an oracle's answers, but every label in y is "
                "known (a simulation): mark the rows to ask for with -1."
            )
        from .label_store import LabelingSession

        session = LabelingSession(self.label_store, X, self.get_params(deep=False))
        try:
            return self._fit(X, y, eval_set, simulate, session)
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
            The labels given when the session started (``-1`` = unlabeled);
            ``None`` means none were given.
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
            y = np.full(num_samples(X), UNLABELED)
        return learner.fit(X, y, eval_set=eval_set)

    def _fit(self, X, y, eval_set, simulate, session):
        """The loop of :meth:`fit`; ``session`` links it to a label store."""
        self._session = session
        try:
            return self._run_rounds(X, y, eval_set, simulate)
        finally:
            del self._session

    def _run_rounds(self, X, y, eval_set, simulate):
        session = self._session
        asked, declined = {}, np.zeros(len(y), dtype=bool)
        known = np.flatnonzero(~_unlabeled_mask(y))
        n_given = len(known)
        if session is not None:
            asked = session.asked_per_round()
            y, restored, declined = session.restore(y)
            known = np.concatenate([known, restored])
        unlabeled = _unlabeled_mask(y)
        check_classification_targets(y[~unlabeled] if (~unlabeled).any() else [0, 1])
        if eval_set is not None:
            eval_set = (self._validate_X(eval_set[0]), column_or_1d(eval_set[1]))

        rng = check_random_state(self.random_state)
        n_initial, batch_size = self._sizes()
        if simulate:
            budget = n_initial + self.n_rounds * batch_size
            if budget > X.shape[0]:
                raise ValueError(
                    f"Every label in y is known, so fit simulates active learning, but "
                    f"n_initial + n_rounds * batch_size = {budget} exceeds the "
                    f"{X.shape[0]} samples. Mark unlabeled rows with -1 or reduce "
                    f"the budget."
                )
            self.classes_ = self._infer_classes(y)
            labeled = rng.choice(X.shape[0], n_initial, replace=False)
            labels = y[labeled]

            def reveal(rows, round_):
                return y[rows]
        else:
            self.classes_ = self._infer_classes(y[known])
            labeled, labels = known, y[known]
            reveal = self._ask_oracle
            if len(known) == 0 and self.oracle is None:
                raise ValueError(
                    "y marks every row as unlabeled (-1) and no oracle was given: "
                    "nothing to train on."
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
                    labeled = np.concatenate([labeled, new])
                    labels = np.concatenate([labels, new_labels])
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
        while True:
            training_seconds = self._train(self._labeled_X, self._labeled_y)
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
            queried, new_labels = self._keep_answered(queried, reveal(queried, round_))
            labeled = np.concatenate([labeled, queried])
            self._labeled_X = _stack(self._labeled_X, _take(X, queried))
            self._labeled_y = np.concatenate([self._labeled_y, new_labels])
        progress.close()
        # Ready for query(): the strategy sees the final model and labeled set.
        self.strategy_.fit(self._labeled_X, self._labeled_y, estimator=self.estimator_)
        self.labeled_indices_ = labeled
        self.history_ = pd.DataFrame(history, columns=HISTORY_COLUMNS)
        return self

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

    def _train(self, X, y):
        """Train a fresh clone of the estimator on (X, y); return the seconds."""
        estimator = clone(self._base_estimator())
        _seed_unset_random_states(estimator, self._model_rng)
        if "classes" in estimator.get_params(deep=False):
            if estimator.get_params(deep=False)["classes"] is None:
                estimator.set_params(classes=self.classes_)
        start = time.perf_counter()
        try:
            estimator.fit(X, y)
        except ValueError as exc:
            if len(np.unique(y)) < 2:
                raise ValueError(
                    f"{type(estimator).__name__} could not be trained on {len(y)} "
                    f"labeled samples of the single class {np.unique(y)[0].item()!r}; use a "
                    f"larger n_initial or an estimator that accepts `classes` "
                    f"(skal's nets). Original error: {exc}"
                ) from exc
            raise
        seconds = time.perf_counter() - start
        self.estimator_ = estimator
        return seconds

    def _ask_oracle(self, indices, round_):
        """Ask the oracle, ``oracle_batch_size`` rows per call; store each answer."""
        indices = np.asarray(indices)
        step = self.oracle_batch_size or max(len(indices), 1)
        answers = []
        for start in range(0, max(len(indices), 1), step):
            rows = indices[start : start + step]
            labels = column_or_1d(self.oracle(rows))
            if len(labels) != len(rows):
                raise ValueError(
                    f"The oracle returned {len(labels)} labels for {len(rows)} rows."
                )
            # Checked before storing: a bad label must not poison a resumed session.
            self._check_known_classes(labels[~_unlabeled_mask(labels)])
            if self._session is not None:
                self._session.add(round_, rows, labels)
            answers.append(labels)
        return np.concatenate(answers)

    def _keep_answered(self, indices, labels):
        """Drop rows the oracle declined (-1); reject labels outside ``classes``."""
        answered = ~_unlabeled_mask(labels)
        indices, labels = np.asarray(indices)[answered], labels[answered]
        self._check_known_classes(labels)
        if self.classes is None:
            self.classes_ = np.union1d(self.classes_, labels)
        return indices, labels

    def _check_known_classes(self, labels):
        if self.classes is not None:
            unknown = ~np.isin(labels, self.classes_)
            if unknown.any():
                raise ValueError(
                    f"Labels {np.unique(labels[unknown]).tolist()} are not in "
                    f"classes={list(self.classes_)}."
                )

    # --- use after fit -----------------------------------------------------------
    def query(self, X_pool, n):
        """Indices of the ``n`` rows of ``X_pool`` the strategy would label next.

        Parameters
        ----------
        X_pool : array-like, DataFrame or sparse matrix of shape (n_pool, n_features)
        n : int

        Returns
        -------
        indices : ndarray of shape (n,)
        """
        check_is_fitted(self)
        X_pool = self._validate_X(X_pool)
        n = check_n_queries(n, X_pool.shape[0])
        return np.asarray(self._pick(X_pool, n), dtype=np.int64)

    def teach(self, X_new, y_new):
        """Add labeled samples and retrain from scratch on everything labeled.

        Parameters
        ----------
        X_new : array-like, DataFrame or sparse matrix of shape (n_new, n_features)
        y_new : array-like of shape (n_new,)

        Returns
        -------
        self : object
        """
        check_is_fitted(self)
        X_new = self._validate_X(X_new)
        y_new = column_or_1d(y_new)
        if len(y_new) != X_new.shape[0]:
            raise ValueError(
                f"X_new has {X_new.shape[0]} samples but y_new has {len(y_new)} labels."
            )
        if _unlabeled_mask(y_new).any():
            raise ValueError("y_new contains -1 (unlabeled): teach needs real labels.")
        _, y_new = self._keep_answered(np.arange(len(y_new)), y_new)
        self._labeled_X = _stack(self._labeled_X, X_new)
        self._labeled_y = np.concatenate([self._labeled_y, y_new])
        seconds = self._train(self._labeled_X, self._labeled_y)
        self.strategy_.fit(self._labeled_X, self._labeled_y, estimator=self.estimator_)
        row = (
            int(self.history_["round"].iloc[-1]) + 1,
            len(self._labeled_y),
            np.array([], dtype=np.int64),
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
        X = self._validate_X(X)
        return self.estimator_.predict(X)

    # --- helpers -----------------------------------------------------------------
    def _validate_X(self, X, *, reset=False):
        """Finite values, sparse kept CSR, N-D images allowed, feature count."""
        n_features = None if reset else self.n_features_in_
        X = check_pool(X, n_features=n_features, name="X", owner=type(self).__name__)
        if reset:
            self.n_features_in_ = n_features_of_array(X)
        return X

    def _check_params(self):
        for name in ("batch_size", "n_rounds"):
            value = getattr(self, name)
            minimum = 1 if name == "batch_size" else 0
            if not isinstance(value, Integral) or value < minimum:
                raise ValueError(
                    f"{name} must be an integer >= {minimum}, got {value!r}."
                )
        for name in ("n_initial", "subsample"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, Integral) or value < 1):
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


def _unlabeled_mask(y):
    y = np.asarray(y)
    if y.dtype.kind in "iuf":
        return y == UNLABELED
    return np.array([label == UNLABELED for label in y], dtype=bool)


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
