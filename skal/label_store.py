"""Durable labeling sessions: every label an oracle gives is stored at once.

When the oracle is a person, every label costs money. Give an
:class:`~skal.ActiveLearner` a ``label_store`` and each answer (a label, or ``-1``
for "could not label") is written to it, in one committed transaction, as soon as
the oracle returns and before anything else happens. A session interrupted by
Ctrl-C, an exception or a killed process continues with
:meth:`ActiveLearner.resume <skal.ActiveLearner.resume>` (or by calling ``fit``
again with the same store): stored labels are reused, never asked again and never
duplicated.

Durability granularity
----------------------
One oracle call. By default the learner asks the oracle for a whole query batch
at once, so an oracle that fails (or a process that dies) in the middle of a
batch loses that batch's answers: they were never returned. With
``ActiveLearner(oracle_batch_size=1)`` the oracle is asked one row at a time (the
natural mode for a person at a terminal) and every single answer is durable the
moment the oracle returns it. SQLite's ``synchronous=FULL`` makes each commit
survive a power loss, not only a crash of the process.

What is stored
--------------
- per label: the pool index, the label (JSON: int, float or str), the round
  (0 for the initial random set, then 1, 2, ...), the time, and a fingerprint of
  the row (:func:`row_fingerprint`);
- per session, once: the pool's shape and fingerprint (:func:`pool_fingerprint`)
  and the learner's parameters needed to resume (``batch_size``, ``n_rounds``,
  ``random_state``, the strategy and estimator as class name plus parameters
  where they are skal or scikit-learn objects; never pickled code, never the
  oracle);
- when a stopping criterion fires (``ActiveLearner(stopping=...)``), the stop:
  which criterion, at which round, with how many labels (:func:`read_stop`).
  :meth:`ActiveLearner.resume <skal.ActiveLearner.resume>` then asks no more;
  :func:`clear_stop` lets the session continue.

Fingerprints hash values, not their representation: float32 and float64 copies of
a pool, a DataFrame and its array, and a dense array and its CSR matrix all have
the same fingerprint (the hash covers the non-zero positions and values as
float64, row by row).

The store is a small interface (:class:`LabelStore`); :class:`SQLiteLabelStore`
implements it with the standard library's ``sqlite3``. Stores that also have
``read_metadata``/``write_metadata`` (the SQLite store does) can record a stop.
Labels given in ``y`` when calling ``fit`` and samples added with ``teach`` are
not stored: they are the caller's own data.

Examples
--------
>>> import numpy as np
>>> from sklearn.datasets import load_digits
>>> from sklearn.linear_model import LogisticRegression
>>> from skal import ActiveLearner
>>> X, y = load_digits(return_X_y=True)
>>> ask = lambda rows: y[rows]          # a person would type these
>>> learner = ActiveLearner(LogisticRegression(max_iter=200), "margin",
...                         batch_size=10, n_rounds=3, oracle=ask,
...                         oracle_batch_size=1, label_store="labels.db",
...                         random_state=0)
>>> learner.fit(X / 16, np.full(len(y), -1))                  # doctest: +SKIP
>>> # after a crash: continue where the session stopped
>>> ActiveLearner.resume(X / 16, None, "labels.db", oracle=ask)  # doctest: +SKIP
"""

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ._codec import Decoder, Encoder
from ._fingerprints import pool_fingerprint, row_fingerprint  # noqa: F401 (public here)
from ._validation import UNLABELED

STORE_FORMAT = "skal-label-store"
STORE_VERSION = 1

# Learner parameters that are not kept in a store: code, and the store itself.
_NOT_STORED = ("oracle", "label_store")
# Arrays inside stored parameters with more values than this are data (a test
# set given to a recorder), not settings: such a parameter is not stored.
MAX_STORED_ARRAY_SIZE = 100_000


class LabelStoreMismatchError(ValueError):
    """A label store was opened against a pool other than the one it labeled."""


@dataclass(frozen=True)
class LabelRecord:
    """One answer of the oracle.

    Attributes
    ----------
    index : int
        Row of the pool (the ``X`` given to ``fit``).
    label : int, float or str
        The answer; ``-1`` means the oracle declined to label the row.
    round : int
        0 for the initial random set, then the acquisition round.
    fingerprint : str
        :func:`row_fingerprint` of the row when it was labeled.
    received_at : float
        Unix time the answer was stored.
    """

    index: int
    label: object
    round: int
    fingerprint: str
    received_at: float = 0.0


@runtime_checkable
class LabelStore(Protocol):
    """What an :class:`~skal.ActiveLearner` needs from a label store.

    ``add`` must be atomic and durable: when it returns, every record in the call
    is stored; when it raises (or the process dies), none is. Indices are unique:
    adding a label for an index already stored must raise ``ValueError``.

    Optional: ``read_metadata() -> dict`` and ``write_metadata(key, value)``
    (a JSON value; ``None`` removes the key), needed to record a stopping
    criterion's stop (see :class:`SQLiteLabelStore`).
    """

    def read_session(self):
        """The session document (dict) written by ``write_session``, or None."""

    def write_session(self, session):
        """Store the session document (a JSON-serializable dict) once."""

    def add(self, records):
        """Store a sequence of :class:`LabelRecord` in one transaction."""

    def records(self):
        """All stored :class:`LabelRecord`, in the order they were received."""

    def close(self):
        """Release resources; the store can be used again afterwards."""


class SQLiteLabelStore:
    """A :class:`LabelStore` in one SQLite file (standard library ``sqlite3``).

    The connection is opened on first use, so the object is cheap to create and
    can be copied or cloned (a copy refers to the same file). Every ``add`` is one
    committed transaction with ``PRAGMA synchronous=FULL``.

    Parameters
    ----------
    path : str or path-like
        Database file; created on first use.
    timeout : float, default=30.0
        Seconds to wait when another connection holds a lock.

    Examples
    --------
    >>> store = SQLiteLabelStore(":memory:")
    >>> store.add([LabelRecord(index=3, label=7, round=1, fingerprint="x")])
    >>> [(r.index, r.label) for r in store.records()]
    [(3, 7)]
    """

    def __init__(self, path, *, timeout=30.0):
        self.path = path
        self.timeout = timeout

    def __repr__(self):
        return f"SQLiteLabelStore({os.fspath(self.path)!r})"

    # Copies (sklearn's clone, deepcopy, pickle) reopen the file lazily.
    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_connection", None)
        return state

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _db(self):
        connection = getattr(self, "_connection", None)
        if connection is not None:
            return connection
        try:
            connection = sqlite3.connect(os.fspath(self.path), timeout=self.timeout)
            connection.execute("PRAGMA synchronous=FULL")
            with connection:
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS session "
                    "(id INTEGER PRIMARY KEY CHECK (id = 1), document TEXT NOT NULL)"
                )
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS labels ("
                    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                    " pool_index INTEGER NOT NULL UNIQUE,"
                    " round INTEGER NOT NULL,"
                    " label TEXT NOT NULL,"
                    " row_fingerprint TEXT NOT NULL,"
                    " received_at REAL NOT NULL)"
                )
                # Added after version 1 without changing it: older files gain
                # the (empty) table when opened; older skal ignores it.
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS metadata "
                    "(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
        except sqlite3.DatabaseError as exc:
            raise ValueError(
                f"{os.fspath(self.path)!r} is not a usable label store (SQLite "
                f"database): {exc}."
            ) from exc
        self._connection = connection
        return connection

    def read_session(self):
        """The stored session document, or None for a new store.

        Returns
        -------
        session : dict or None
        """
        row = self._db().execute("SELECT document FROM session").fetchone()
        return None if row is None else json.loads(row[0])

    def write_session(self, session):
        """Store the session document (once; an existing one is kept).

        Parameters
        ----------
        session : dict
        """
        db = self._db()
        with db:
            db.execute(
                "INSERT OR IGNORE INTO session (id, document) VALUES (1, ?)",
                (json.dumps(session),),
            )

    def add(self, records):
        """Store answers atomically and durably.

        Parameters
        ----------
        records : sequence of LabelRecord

        Raises
        ------
        ValueError
            If an index already has a stored label (nothing is stored then).
        """
        now = time.time()
        rows = [
            (
                int(r.index),
                int(r.round),
                json.dumps(_plain_label(r.label)),
                r.fingerprint,
                r.received_at or now,
            )
            for r in records
        ]
        db = self._db()
        try:
            with db:  # one transaction: commit on success, rollback on any error
                db.executemany(
                    "INSERT INTO labels (pool_index, round, label, row_fingerprint, "
                    "received_at) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.IntegrityError as exc:
            raise ValueError(
                f"A label for one of rows {[r[0] for r in rows]} is already stored in "
                f"{self!r}; a row is never labeled twice ({exc})."
            ) from exc

    def records(self):
        """Every stored answer, in the order received.

        Returns
        -------
        records : list of LabelRecord
        """
        rows = self._db().execute(
            "SELECT pool_index, label, round, row_fingerprint, received_at "
            "FROM labels ORDER BY seq"
        )
        return [
            LabelRecord(index, json.loads(label), round_, fingerprint, received_at)
            for index, label, round_, fingerprint, received_at in rows
        ]

    def read_metadata(self):
        """Session metadata written by :meth:`write_metadata` (e.g. a stop).

        Returns
        -------
        metadata : dict
        """
        rows = self._db().execute("SELECT key, value FROM metadata")
        return {key: json.loads(value) for key, value in rows}

    def write_metadata(self, key, value):
        """Set (or, with ``value=None``, remove) one metadata entry, committed.

        Parameters
        ----------
        key : str
        value : JSON-serializable or None
        """
        db = self._db()
        with db:
            if value is None:
                db.execute("DELETE FROM metadata WHERE key = ?", (key,))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO metadata (key, value) VALUES (?, ?)",
                    (key, json.dumps(value)),
                )

    def __len__(self):
        return self._db().execute("SELECT COUNT(*) FROM labels").fetchone()[0]

    def close(self):
        """Close the connection (it is reopened on next use)."""
        connection = self.__dict__.pop("_connection", None)
        if connection is not None:
            connection.close()


def as_label_store(store):
    """A :class:`LabelStore` from a store or a path (an SQLite file).

    Parameters
    ----------
    store : LabelStore, str or path-like

    Returns
    -------
    store : LabelStore
    """
    if isinstance(store, (str, os.PathLike)):
        return SQLiteLabelStore(store)
    if isinstance(store, LabelStore):
        return store
    raise TypeError(
        f"label_store must be a path or a LabelStore (read_session, write_session, "
        f"add, records, close), got {type(store).__name__}."
    )


# --- stops -------------------------------------------------------------------------
_STOP_KEY = "stop"


@contextlib.contextmanager
def _opened(label_store):
    """The store of ``label_store``, closed afterwards if opened from a path."""
    store = as_label_store(label_store)
    try:
        yield store
    finally:
        if isinstance(label_store, (str, os.PathLike)):
            store.close()


def supports_stop(store):
    """Whether ``store`` can record a stop (has ``read/write_metadata``)."""
    return callable(getattr(store, "read_metadata", None)) and callable(
        getattr(store, "write_metadata", None)
    )


def read_stop(label_store):
    """The stop a stopping criterion wrote to the store, or None.

    Parameters
    ----------
    label_store : LabelStore, str or path-like

    Returns
    -------
    stop : dict or None
        ``{"reason": criterion name, "round": int, "n_labeled": int,
        "statistic": float, "stopped_at": unix time}``.
    """
    with _opened(label_store) as store:
        if not supports_stop(store):
            return None
        return store.read_metadata().get(_STOP_KEY)


def write_stop(label_store, stop):
    """Record a stop (a JSON-serializable dict, see :func:`read_stop`).

    Parameters
    ----------
    label_store : LabelStore, str or path-like
    stop : dict
    """
    with _opened(label_store) as store:
        if not supports_stop(store):
            raise TypeError(
                f"{store!r} cannot record a stop: a stopping criterion in a "
                f"labeling session needs a label store with read_metadata and "
                f"write_metadata (SQLiteLabelStore has them)."
            )
        store.write_metadata(_STOP_KEY, {**stop, "stopped_at": time.time()})


def clear_stop(label_store):
    """Remove a recorded stop, so that ``resume`` continues the session.

    Parameters
    ----------
    label_store : LabelStore, str or path-like
    """
    with _opened(label_store) as store:
        if supports_stop(store):
            store.write_metadata(_STOP_KEY, None)


# --- the learner's side --------------------------------------------------------------
def stored_learner_params(label_store):
    """The learner parameters a store kept, ready for ``ActiveLearner(**params)``.

    Parameters
    ----------
    label_store : LabelStore, str or path-like

    Returns
    -------
    params : dict
        Constructor parameters; those that could not be stored (the message of
        :meth:`ActiveLearner.resume <skal.ActiveLearner.resume>` names them) are
        missing.
    missing : list of str
        Names of parameters the store could not keep (e.g. a custom estimator).
    """
    store = as_label_store(label_store)
    session = store.read_session()
    if session is None:
        raise ValueError(
            f"{store!r} holds no labeling session yet: start one with "
            f"ActiveLearner(label_store=...).fit(X, y)."
        )
    _check_format(session, store)
    decoder = Decoder(path=repr(store))
    params = {name: decoder.decode(value) for name, value in session["learner"].items()}
    return params, list(session.get("not_stored", []))


def _check_format(session, store):
    if session.get("format") != STORE_FORMAT or session.get("version") != STORE_VERSION:
        raise ValueError(
            f"{store!r} holds a session of format {session.get('format')!r} version "
            f"{session.get('version')!r}; this skal reads {STORE_FORMAT!r} version "
            f"{STORE_VERSION}."
        )


class LabelingSession:
    """Links one ``ActiveLearner.fit`` to a label store (used by the learner).

    Opening verifies the stored pool against ``X`` (or starts a new session);
    :meth:`restore` merges stored answers into ``y``; :meth:`add` stores answers.

    Parameters
    ----------
    label_store : LabelStore, str or path-like
    X : ndarray or sparse matrix
        The validated pool given to ``fit``.
    params : dict
        The learner's ``get_params(deep=False)``.
    """

    def __init__(self, label_store, X, params):
        self.owns_store = isinstance(label_store, (str, os.PathLike))
        self.store = as_label_store(label_store)
        self.X = X
        session = self.store.read_session()
        fingerprint = pool_fingerprint(X)
        if session is None:
            self.store.write_session(_new_session(X, fingerprint, params))
            self.records = []
        else:
            _check_format(session, self.store)
            self.records = self.store.records()
            self._verify(session["pool"], fingerprint)

    def _verify(self, stored, fingerprint):
        shape = tuple(self.X.shape)
        where = f"The label store {self.store!r}"
        if tuple(stored["shape"]) != shape:
            raise LabelStoreMismatchError(
                f"{where} was created for a pool of shape {tuple(stored['shape'])}, "
                f"but X has shape {shape}: it belongs to another pool."
            )
        changed = [
            r.index
            for r in self.records
            if row_fingerprint(self.X, r.index) != r.fingerprint
        ]
        if changed:
            raise LabelStoreMismatchError(
                f"{where} does not match X: {len(changed)} of the "
                f"{len(self.records)} stored rows "
                f"{'differs' if len(changed) == 1 else 'differ'} from the rows of X "
                f"they labeled (pool indices {changed[:10]}"
                f"{' ...' if len(changed) > 10 else ''}). Resume with the pool the "
                f"session was started on."
            )
        if stored["fingerprint"] != fingerprint:
            raise LabelStoreMismatchError(
                f"{where} does not match X: the {len(self.records)} stored rows are "
                f"unchanged, but other rows of the pool differ (pool fingerprint "
                f"{fingerprint}, stored {stored['fingerprint']}). Resume with the "
                f"pool the session was started on."
            )

    def stop(self):
        """The stop recorded in the store (see :func:`read_stop`), or None."""
        if not supports_stop(self.store):
            return None
        return self.store.read_metadata().get(_STOP_KEY)

    def record_stop(self, stop):
        """Write a stop to the store (see :func:`write_stop`)."""
        write_stop(self.store, stop)

    def asked_per_round(self):
        """Number of stored answers (declines included) in each round."""
        counts = {}
        for record in self.records:
            counts[record.round] = counts.get(record.round, 0) + 1
        return counts

    def restore(self, y):
        """Merge the stored answers into ``y``.

        Parameters
        ----------
        y : ndarray of shape (n_samples,)
            Labels given to ``fit`` (``-1`` = unlabeled).

        Returns
        -------
        y : ndarray
            A copy with every stored label filled in.
        restored : ndarray of int
            Rows labeled from the store (in the order received).
        declined : ndarray of bool of shape (n_samples,)
            Rows the oracle declined; they are never asked again.
        """
        declined = np.zeros(len(y), dtype=bool)
        answered = [r for r in self.records if not _is_unlabeled(r.label)]
        declined[[r.index for r in self.records if _is_unlabeled(r.label)]] = True
        if not answered:
            return y, np.array([], dtype=np.int64), declined
        indices = np.array([r.index for r in answered], dtype=np.int64)
        labels = np.array([r.label for r in answered])
        if y.dtype.kind not in "iuf" or labels.dtype.kind not in "iuf":
            y = y.astype(object)
        else:
            y = y.astype(np.result_type(y, labels))
        given = ~np.array([_is_unlabeled(v) for v in y[indices]], dtype=bool)
        conflict = given & (y[indices] != labels)
        if conflict.any():
            row = int(indices[conflict][0])
            raise ValueError(
                f"Row {row} is labeled {y[row]!r} in y but {labels[conflict][0]!r} in "
                f"the label store {self.store!r}."
            )
        y[indices] = labels
        return y, indices[~given], declined

    def add(self, round_, indices, labels):
        """Store the oracle's answers for ``indices`` in one transaction."""
        records = [
            LabelRecord(int(i), label, int(round_), row_fingerprint(self.X, i))
            for i, label in zip(indices, labels)
        ]
        self.store.add(records)
        self.records.extend(records)

    def close(self):
        """Close the store if the session opened it from a path."""
        if self.owns_store:
            self.store.close()


def _new_session(X, fingerprint, params):
    # Parameters holding data (e.g. RoundRecorder(X=...)) would bloat the session
    # row; beyond the limit they are not stored and resume asks for them.
    encoder = Encoder(inline_arrays=True, max_inline_size=MAX_STORED_ARRAY_SIZE)
    learner, not_stored = {}, []
    for name, value in params.items():
        if name in _NOT_STORED:
            continue
        try:
            learner[name] = encoder.encode(value, name)
        except TypeError:
            not_stored.append(name)
    return {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "created_at": time.time(),
        "pool": {"shape": list(X.shape), "fingerprint": fingerprint},
        "learner": learner,
        "not_stored": not_stored,
    }


def _plain_label(label):
    if isinstance(label, np.generic):
        return label.item()
    return label


def _is_unlabeled(label):
    return not isinstance(label, str) and label == UNLABELED
