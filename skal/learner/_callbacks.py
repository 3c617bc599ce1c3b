"""Round callbacks and stopping criteria of the learner (see :mod:`skal.callbacks`)."""

import numpy as np
from sklearn.base import clone

from ..callbacks import Callback, RoundStatistic
from ..label_store import as_label_store, supports_stop, write_stop
from ..stopping import check_stopping
from ._training import _new_seed

HISTORY_COLUMNS = [
    "round",
    "n_labeled",
    "queried",
    "acquisition_seconds",
    "training_seconds",
    "eval_score",
]


def check_callbacks(callbacks):
    """The ``callbacks`` parameter as a list of :class:`~skal.callbacks.Callback`.

    A stopping criterion among the callbacks only records its statistic (it
    never stops the learner): that is how one sees where it would have stopped.
    """
    if callbacks is None:
        return []
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(
                f"callbacks must be a list of skal.callbacks.Callback instances "
                f"(subclass it and override on_round_end etc.), got "
                f"{type(callback).__name__}: {callback!r}."
            )
    return list(callbacks)


def criterion_columns(criteria):
    """History column of each criterion: its name, numbered when repeated."""
    seen = dict.fromkeys(HISTORY_COLUMNS, 1)
    columns = []
    for criterion in criteria:
        name = criterion.name
        seen[name] = seen.get(name, 0) + 1
        columns.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return columns


class _Callbacks:
    """Clones the callbacks and criteria per fit, notifies them, stops."""

    def _start_callbacks(self):
        """Fresh clones of ``callbacks`` and ``stopping`` for this fit."""
        self.stopping_ = [clone(c) for c in check_stopping(self.stopping)]
        self.callbacks_ = [clone(c) for c in check_callbacks(self.callbacks)]
        self.stop_reason_ = None
        self.stop_round_ = None

    def _check_stop_store(self, session):
        if self.stopping_ and session is not None and not supports_stop(session.store):
            raise TypeError(
                f"stopping writes the stop to the label store, but {session.store!r} "
                f"has no read_metadata/write_metadata: use an SQLiteLabelStore (a "
                f"path) or add those methods to the store."
            )

    def _seed_criteria(self, rng):
        """Seed round statistics whose ``random_state`` is None (stop sets, the
        semi-supervised learners): criteria first, so their seeds do not depend
        on the callbacks."""
        for criterion in self._round_statistics():
            if criterion.get_params().get("random_state", 0) is None:
                criterion.set_params(random_state=_new_seed(rng))

    def _notify(self, hook, **kwargs):
        """Call ``hook`` on the criteria first, then on the user's callbacks
        (which can then read this round's statistics from ``stopping_``)."""
        for callback in [
            *getattr(self, "stopping_", []),
            *getattr(self, "callbacks_", []),
        ]:
            getattr(callback, hook)(self, **kwargs)

    def _end_round(self, **context):
        """Fire ``on_round_end``; the round statistics by history column."""
        self._notify("on_round_end", **context)
        statistics = self._round_statistics()
        return {
            column: statistic.history_[-1]["statistic"]
            for column, statistic in zip(criterion_columns(statistics), statistics)
        }

    def _round_statistics(self):
        """Criteria, then the callbacks that are round statistics (history columns)."""
        return [
            *getattr(self, "stopping_", []),
            *(
                c
                for c in getattr(self, "callbacks_", [])
                if isinstance(c, RoundStatistic)
            ),
        ]

    def _history_columns(self):
        return HISTORY_COLUMNS + criterion_columns(self._round_statistics())

    def _stop_if_fired(self, round_, n_labeled, session=None):
        """Record the first criterion that fired this round; True if one did.

        In a labeling session the stop is written to the label store at once
        (``session`` during ``fit``; the ``label_store`` itself in ``teach``).
        """
        criteria = getattr(self, "stopping_", [])
        fired = [
            (column, criterion)
            for column, criterion in zip(criterion_columns(criteria), criteria)
            if criterion.fired_
        ]
        if not fired:
            return False
        column, criterion = fired[0]  # the first in list order
        self.stop_reason_ = column
        self.stop_round_ = int(round_)
        stop = {
            "reason": column,
            "round": int(round_),
            "n_labeled": int(n_labeled),
            "statistic": float(criterion.history_[-1]["statistic"]),
        }
        if session is not None:
            session.record_stop(stop)
        elif self.label_store is not None:
            write_stop(self.label_store, stop)
        return True

    def _restore_stop(self, stop):
        """A stop read from the label store: the learner stays stopped."""
        self.stop_reason_ = stop["reason"]
        self.stop_round_ = int(stop["round"])

    def _stopped_message(self):
        store = as_label_store(self.label_store) if self.label_store else None
        where = f" (recorded in {store!r})" if store is not None else ""
        return (
            f"The stopping criterion {self.stop_reason_!r} fired at round "
            f"{self.stop_round_}{where}."
        )


def _unlabeled_rows(n_samples, labeled, declined):
    """Rows of a pool of ``n_samples`` that are neither labeled nor declined."""
    return np.setdiff1d(np.arange(n_samples), np.union1d(labeled, declined))
