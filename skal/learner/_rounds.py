"""The active-learning loop of ``ActiveLearner.fit``: rounds, oracle, label store."""

import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import column_or_1d
from tqdm.auto import tqdm

from .._arrays import stack_rows
from .._validation import UNLABELED
from ..strategies import QueryStrategy, get_strategy
from ._callbacks import _Callbacks
from ._initial import _InitialSet
from ._labels import _concat_labels, _labels_at
from ._pool import _take
from ._training import _new_seed


class _RoundLoop(_Callbacks, _InitialSet):
    """Initial set, then rounds of strategy fit, query, oracle and training."""

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
        self._start_callbacks()
        self._check_stop_store(session)
        stored_stop = None
        if session is not None:
            asked = session.asked_per_round()
            stored_stop = session.stop()
            y, unlabeled, restored, declined = self._restore(session, y, unlabeled)
            known = np.concatenate([known, restored])
        self._check_targets(_labels_at(y, known))
        if eval_set is not None:
            eval_set = self._validate_eval_set(eval_set)
        # Scores the rounds of a later teach (in-process only, like the pool).
        self._eval_set = eval_set

        rng = check_random_state(self.random_state)
        n_initial, batch_size = self._sizes()
        initial_strategy = self._initial_strategy_instance()
        self.initial_strategy_ = None  # the random draw (or labels given)
        n_rounds = self.n_rounds if (simulate or self.oracle is not None) else 0
        plan, round_ = _round_plan(n_rounds, batch_size, asked, stored_stop)
        self._notify("on_fit_begin", X=X, eval_set=eval_set)
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
            nothing = np.array([], dtype=np.int64)  # labels are hidden until revealed
            self._notify("on_round_begin", round_=round_, labeled_indices=nothing)
            if initial_strategy is None:
                labeled = rng.choice(X.shape[0], n_initial, replace=False)
            else:
                self._fit_initial_strategy(initial_strategy, rng)
                labeled = self._initial_picks(X, n_initial)
            labels = y[labeled]

            def reveal(rows, round_):
                return y[rows]
        else:
            labels = _labels_at(y, known)
            self.classes_ = self._infer_classes(labels)
            labeled = known
            reveal = self._ask_oracle
            if len(known) == 0 and self.oracle is None:
                return self._start_without_labels(X, declined, rng)
            self._notify("on_round_begin", round_=round_, labeled_indices=known)
            if n_given == 0 and self.oracle is not None:
                labeled, labels = self._ask_initial_set(
                    X,
                    unlabeled,
                    declined,
                    asked,
                    rng,
                    initial_strategy,
                    labeled,
                    labels,
                )

        # Independent streams, so that (for a given seed) every strategy trains the
        # same round-0 model and the models' seeds do not depend on the strategy.
        model_rng, strategy_rng, self._rng = (
            np.random.RandomState(_new_seed(rng)) for _ in range(3)
        )
        self._model_rng = model_rng
        self.strategy_ = self._make_strategy(strategy_rng)
        self._seed_criteria(strategy_rng)  # after the strategy: its seed is unchanged
        self._labeled_X, self._labeled_y = _take(X, labeled), labels
        history = []
        available = np.ones(X.shape[0], dtype=bool)
        if not simulate:
            available &= unlabeled & ~declined
        available[labeled] = False
        queried, acquisition_seconds = labeled, 0.0
        chooser = self.initial_strategy_  # the strategy that picked `queried`
        progress = tqdm(total=len(plan) + 1, disable=not self.verbose, desc="rounds")
        previous_model = None  # fit always starts from a fresh model
        while True:
            training_seconds = self._train(
                self._labeled_X, self._labeled_y, previous_model, simulate=simulate
            )
            previous_model = self.estimator_
            progress.update()
            eval_score = self._eval_score(eval_set)
            statistics = self._end_round(
                round_=round_,
                labeled_indices=np.asarray(labeled, dtype=np.int64),
                labels=self._labeled_y,
                queried_indices=np.asarray(queried, dtype=np.int64),
                estimator=self.estimator_,
                strategy=chooser,
                X=X,
                unlabeled_indices=np.flatnonzero(available),
                eval_score=eval_score,
            )
            history.append(
                {
                    "round": round_,
                    "n_labeled": len(self._labeled_y),
                    "queried": np.asarray(queried),
                    "acquisition_seconds": acquisition_seconds,
                    "training_seconds": training_seconds,
                    "eval_score": eval_score,
                    **statistics,
                }
            )
            if stored_stop is None and self._stop_if_fired(
                round_, len(self._labeled_y), session
            ):
                break
            if not plan or not available.any():
                break
            round_, n_queries = plan.pop(0)
            self._notify(
                "on_round_begin",
                round_=round_,
                labeled_indices=np.asarray(labeled, dtype=np.int64),
            )
            start = time.perf_counter()  # strategy fit + query: the acquisition cost
            self.strategy_.fit(
                self._labeled_X, self._labeled_y, estimator=self.estimator_
            )
            queried = self._acquire(X, np.flatnonzero(available), n_queries)
            acquisition_seconds = time.perf_counter() - start
            chooser = self.strategy_
            available[queried] = False
            answered, new_labels = self._keep_answered(queried, reveal(queried, round_))
            declined[np.setdiff1d(queried, answered)] = True
            queried = answered
            labeled = np.concatenate([labeled, queried])
            self._labeled_X = stack_rows(self._labeled_X, _take(X, queried))
            self._labeled_y = _concat_labels(self._labeled_y, new_labels)
        progress.close()
        # Ready for query(): the strategy sees the final model and labeled set.
        self.strategy_.fit(self._labeled_X, self._labeled_y, estimator=self.estimator_)
        self.labeled_indices_ = np.asarray(labeled, dtype=np.int64)
        self._remember_pool(X, declined)
        self.history_ = pd.DataFrame(history, columns=self._history_columns())
        if stored_stop is not None:
            self._restore_stop(stored_stop)
            warnings.warn(
                f"{self._stopped_message()} Trained on the {len(self._labeled_y)} "
                f"labels; no further rows are asked. To continue the session, call "
                f"skal.label_store.clear_stop(label_store) first.",
                UserWarning,
                stacklevel=4,
            )
        self._notify("on_fit_end")
        return self

    def _ask_initial_set(
        self, X, unlabeled, declined, asked, rng, strategy, labeled, labels
    ):
        """Ask the oracle for the initial set when no label was given.

        The random draw is ``permutation()[:n]`` (it draws like ``choice(n,
        replace=False)``); an ``initial_strategy`` picks from the whole pool.
        A resumed session draws the same way (same seeds downstream) and asks
        only the rows of the initial set it is still missing.
        """
        n_missing = min(self._sizes()[0], X.shape[0]) - asked.get(0, 0)
        if strategy is None:
            order = rng.permutation(X.shape[0])
        else:
            self._fit_initial_strategy(strategy, rng)
            n_picks = min(self._sizes()[0], X.shape[0])
            order = self._initial_picks(X, n_picks) if n_missing > 0 else labeled[:0]
        draw = order[~(declined | ~unlabeled)[order]][: max(n_missing, 0)]
        if len(draw):
            new, new_labels = self._keep_answered(draw, self._ask_oracle(draw, 0))
            declined[np.setdiff1d(draw, new)] = True
            labeled = np.concatenate([labeled, new])
            labels = _concat_labels(labels, new_labels)
        return labeled, labels

    def _start_without_labels(self, X, declined, rng):
        """No label and no oracle: ready for ``query`` to propose the initial set
        (with ``initial_strategy``); no model is trained."""
        if self.initial_strategy is None:
            raise ValueError(
                f"y marks every row as unlabeled (missing_label="
                f"{self.missing_label!r}) and no oracle was given: nothing to "
                f"train on. Give an oracle, or initial_strategy='random' (or a "
                f"model-free strategy such as 'typiclust') to let query propose "
                f"the rows to label first."
            )
        self._cold_start_strategy(rng)
        model_rng, strategy_rng, self._rng = (
            np.random.RandomState(_new_seed(rng)) for _ in range(3)
        )
        self._model_rng = model_rng
        self.strategy_ = self._make_strategy(strategy_rng)
        self._seed_criteria(strategy_rng)
        self.estimator_ = None
        empty = np.array([], dtype=np.int64)
        self._labeled_X, self._labeled_y = _take(X, empty), np.array([])
        self.labeled_indices_ = empty
        self._remember_pool(X, declined)
        self.history_ = pd.DataFrame([], columns=self._history_columns())
        self._notify("on_fit_end")
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
        """Rows of ``X`` (among ``candidates``, default all) the strategy picks.

        The strategy decides how to score them: ranking strategies go chunk by
        chunk and never copy the candidates out of ``X`` (2.5 GB for a 1M x 617
        float32 memmap).
        """
        return self.strategy_.query(X, n, candidates=candidates)

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

    def _sizes(self):
        n_initial = self.batch_size if self.n_initial is None else self.n_initial
        return int(n_initial), int(self.batch_size)

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


def _round_plan(n_rounds, batch_size, asked, stop):
    """Rounds still to run with their sizes, and the round of the first model.

    A resumed session completes the round it was interrupted in (``asked``:
    answers stored per round); a session a criterion stopped runs none.
    """
    if stop is not None:
        return [], int(stop["round"])
    plan = [
        (round_, batch_size - asked.get(round_, 0))
        for round_ in range(1, n_rounds + 1)
        if batch_size - asked.get(round_, 0) > 0
    ]
    return plan, plan[0][0] - 1 if plan else n_rounds
