"""The labeling loop after ``fit``: ``query`` proposes rows, ``teach`` learns them."""

import warnings

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._arrays import stack_rows
from .._validation import check_n_queries
from ._callbacks import _unlabeled_rows
from ._labels import _concat_labels


class _LabelingLoop:
    """``query`` and ``teach`` of :class:`~skal.ActiveLearner`."""

    def query(self, X_pool, n):
        """Indices of the ``n`` rows of ``X_pool`` the strategy would label next.

        When ``X_pool`` is the pool given to ``fit`` (same rows at the same
        positions), its labeled rows (``labeled_indices_``) and the rows an oracle
        declined are never proposed; any other pool is scored whole. The proposed
        rows are remembered, so that :meth:`teach` can record them as labeled.
        Before any label (``fit`` without labels, with ``initial_strategy``),
        the initial strategy proposes the rows. After a stopping criterion
        fired (``stop_reason_``), rows are still proposed, with a warning.

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
            if getattr(self, "stop_reason_", None) is not None:
                warnings.warn(
                    f"{self._stopped_message()} query proposes rows anyway.",
                    UserWarning,
                    stacklevel=2,
                )
            if self.estimator_ is None:  # nothing labeled yet: the initial set
                strategy = self.initial_strategy_
                picks = strategy.query(X_pool, n, candidates=candidates)
            else:
                picks = self._pick(X_pool, n, candidates)
            picks = np.asarray(picks, dtype=np.int64)
            if fitted_pool:
                self._remember_proposed(X_pool, picks)
                # For the stopping criteria and recorders of the next teach,
                # which evaluate the pool (never saved with the learner).
                self._query_pool = X_pool
            return picks

    def _warn_pool_unknown(self):
        """Warn that pool-based stopping criteria cannot be evaluated this round."""
        blind = [
            criterion.name
            for criterion in getattr(self, "stopping_", [])
            if getattr(criterion, "needs_pool", lambda: False)()
        ]
        if blind:
            warnings.warn(
                f"teach: the stopping criteria {blind} evaluate the pool, which "
                f"this learner does not hold (it is never pickled or saved): call "
                f"query(X_pool, n) before teach in this process. Their statistic "
                f"is NaN this round and they cannot stop.",
                UserWarning,
                stacklevel=3,
            )

    def teach(self, X_new, y_new):
        """Add labeled samples and retrain on everything labeled.

        Rows of ``X_new`` that :meth:`query` proposed from the fitted pool are
        recorded in ``labeled_indices_`` (matched by their values), so they are
        never proposed again; other rows are new data. The model is retrained
        from scratch, or trained further with ``warm_start=True``.

        Each ``teach`` is a round: the callbacks' ``on_round_begin`` and
        ``on_round_end`` fire (the recorded rows are the queried ones) and the
        stopping criteria are checked; a stop sets ``stop_reason_`` and is
        written to the ``label_store``. Criteria and recorders that read the
        pool use the one last given to ``fit`` or :meth:`query` in this process
        (a pickled or loaded learner has none until its next ``query``: teach
        then warns that pool-based criteria cannot be evaluated). The round is
        scored on the ``eval_set`` given to ``fit`` in this process
        (``history_["eval_score"]``; NaN without one).

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
            learned = pool_rows[pool_rows >= 0]
            round_ = (
                int(self.history_["round"].iloc[-1]) + 1 if len(self.history_) else 0
            )
            self._notify(
                "on_round_begin",
                round_=round_,
                labeled_indices=self.labeled_indices_.copy(),
            )
            self._labeled_X = stack_rows(self._labeled_X, X_new)
            self._labeled_y = _concat_labels(self._labeled_y, y_new)
            self._pool_rows = np.concatenate([self._pool_rows, pool_rows])
            self.labeled_indices_ = np.concatenate([self.labeled_indices_, learned])
            # The strategy that proposed these rows: the initial one before the
            # first model.
            if self.estimator_ is None:
                chooser = getattr(self, "initial_strategy_", None)
            else:
                chooser = self.strategy_
            seconds = self._train(self._labeled_X, self._labeled_y, self.estimator_)
            eval_score = self._eval_score(getattr(self, "_eval_set", None))
            pool = getattr(self, "_query_pool", None)
            if pool is None:
                self._warn_pool_unknown()
            statistics = self._end_round(
                round_=round_,
                labeled_indices=self.labeled_indices_.copy(),
                labels=self._labeled_y[self._pool_rows >= 0],
                queried_indices=learned,
                estimator=self.estimator_,
                strategy=chooser,
                X=pool,
                unlabeled_indices=None
                if pool is None
                else _unlabeled_rows(
                    pool.shape[0], self.labeled_indices_, self._pool["declined"]
                ),
                eval_score=eval_score,
            )
            self.strategy_.fit(
                self._labeled_X, self._labeled_y, estimator=self.estimator_
            )
            row = {
                "round": round_,
                "n_labeled": len(self._labeled_y),
                "queried": learned,
                "acquisition_seconds": 0.0,
                "training_seconds": seconds,
                "eval_score": eval_score,
                **statistics,
            }
            new_row = pd.DataFrame([row], columns=self._history_columns())
            self.history_ = (
                pd.concat([self.history_, new_row], ignore_index=True)
                if len(self.history_)
                else new_row
            )
            if getattr(self, "stop_reason_", None) is None:
                self._stop_if_fired(round_, len(self._labeled_y))
            return self
