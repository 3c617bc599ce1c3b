"""Durable labeling sessions: the store, fingerprints, kill and resume."""

import copy
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skal import ActiveLearner
from skal.label_store import (
    LabelRecord,
    LabelStore,
    LabelStoreMismatchError,
    SQLiteLabelStore,
    as_label_store,
    pool_fingerprint,
    row_fingerprint,
)

REPO = Path(__file__).resolve().parents[1]


def pool():
    X, y = make_classification(
        n_samples=300, n_features=8, n_informative=5, n_classes=3, random_state=0
    )
    return X, y


def learner(store, oracle, **params):
    defaults = dict(
        n_initial=10, batch_size=6, n_rounds=5, oracle_batch_size=1, random_state=0
    )
    return ActiveLearner(
        LogisticRegression(max_iter=300),
        "margin",
        oracle=oracle,
        label_store=store,
        **{**defaults, **params},
    )


def stored(path):
    return [(r.index, r.label, r.round) for r in SQLiteLabelStore(path).records()]


# --- the store --------------------------------------------------------------------
def test_store_round_trip_order_types_and_reopen(tmp_path):
    path = tmp_path / "labels.db"
    with SQLiteLabelStore(path) as store:
        assert isinstance(store, LabelStore)
        assert store.read_session() is None and store.records() == []
        store.write_session({"format": "x", "n": 1})
        store.write_session({"format": "ignored"})  # written once
        store.add([LabelRecord(5, 2, 0, "f5"), LabelRecord(1, "cat", 0, "f1")])
        store.add([LabelRecord(9, -1, 1, "f9"), LabelRecord(0, 0.5, 1, "f0")])
    again = SQLiteLabelStore(str(path))  # a second connection sees everything
    assert again.read_session() == {"format": "x", "n": 1}
    records = again.records()
    assert [(r.index, r.label, r.round) for r in records] == [
        (5, 2, 0),
        (1, "cat", 0),
        (9, -1, 1),
        (0, 0.5, 1),
    ]
    assert all(r.received_at > 0 for r in records) and len(again) == 4


def test_store_is_atomic_and_never_duplicates(tmp_path):
    store = SQLiteLabelStore(tmp_path / "labels.db")
    store.add([LabelRecord(1, 0, 0, "a")])
    with pytest.raises(ValueError, match="already stored"):
        store.add([LabelRecord(2, 0, 1, "b"), LabelRecord(1, 1, 1, "c")])
    assert [r.index for r in store.records()] == [1]  # row 2 rolled back too


def test_store_copies_and_clone(tmp_path):
    store = SQLiteLabelStore(tmp_path / "labels.db")
    store.add([LabelRecord(3, 1, 0, "a")])
    copied = copy.deepcopy(store)
    assert [r.index for r in copied.records()] == [3]
    cloned = clone(ActiveLearner(label_store=store))
    assert repr(cloned.label_store) == repr(store)


def test_bad_store_inputs(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="not a usable label store"):
        SQLiteLabelStore(junk).records()
    with pytest.raises(TypeError, match="label_store must be a path or a LabelStore"):
        as_label_store(42)
    with pytest.raises(ValueError, match="holds no labeling session"):
        ActiveLearner.resume(np.ones((3, 2)), None, tmp_path / "empty.db")


# --- fingerprints -----------------------------------------------------------------
def test_fingerprints_hash_values_not_representation():
    X, _ = pool()
    X[:, 3] = np.where(X[:, 3] > 0, 0.0, X[:, 3])  # some zeros for sparsity
    X32 = X.astype(np.float32)
    variants = [
        X32,
        X32.astype(np.float64),
        sparse.csr_matrix(X32),
        np.asarray(pd.DataFrame(X32)),
    ]
    fingerprints = {
        pool_fingerprint(v, chunk_size=c) for v in variants for c in (1, 64)
    }
    assert len(fingerprints) == 1
    assert len({row_fingerprint(v, 11) for v in variants}) == 1
    changed = X.copy()
    changed[200, 5] += 1e-9
    assert pool_fingerprint(changed) != pool_fingerprint(X)
    assert row_fingerprint(changed, 200) != row_fingerprint(X, 200)
    assert row_fingerprint(changed, 199) == row_fingerprint(X, 199)
    assert pool_fingerprint(X[::-1]) != pool_fingerprint(X)
    assert pool_fingerprint(X[:-1]) != pool_fingerprint(X)


# --- the learner writes every answer at once ----------------------------------------
@pytest.mark.parametrize("oracle_batch_size", [None, 1, 4])
def test_every_answer_is_stored_before_the_next_question(tmp_path, oracle_batch_size):
    X, y = pool()
    path = tmp_path / "labels.db"
    returned = []

    def oracle(rows):
        # Whatever the oracle returned before is already committed.
        assert sorted(i for i, _, _ in stored(path)) == sorted(returned)
        if oracle_batch_size is not None:
            assert len(rows) <= oracle_batch_size
        labels = y[rows].copy()
        labels[rows % 7 == 0] = -1  # the annotator skips some rows
        returned.extend(rows.tolist())
        return labels

    fitted = learner(path, oracle, oracle_batch_size=oracle_batch_size).fit(
        X, np.full(len(y), -1)
    )
    records = stored(path)
    assert [i for i, _, _ in records] == returned  # in order, each once
    assert len(returned) == len(set(returned)) == 10 + 5 * 6
    assert all(label == (-1 if i % 7 == 0 else y[i]) for i, label, _ in records)
    rounds = pd.Series([r for _, _, r in records]).value_counts().sort_index()
    assert rounds.to_dict() == {0: 10, 1: 6, 2: 6, 3: 6, 4: 6, 5: 6}
    assert sorted(fitted.labeled_indices_) == sorted(i for i in returned if i % 7)


def test_oracle_failure_keeps_the_answers_already_given(tmp_path):
    X, y = pool()
    path = tmp_path / "labels.db"
    given = []

    def oracle(rows):
        if len(given) == 13:  # third answer of round 1
            raise RuntimeError("annotator left")
        given.extend(rows.tolist())
        return y[rows]

    with pytest.raises(RuntimeError, match="annotator left"):
        learner(path, oracle).fit(X, np.full(len(y), -1))
    assert [i for i, _, _ in stored(path)] == given

    # Calling fit again with the same store continues the same session.
    asked = []

    def oracle2(rows):
        asked.extend(rows.tolist())
        return y[rows]

    fitted = learner(path, oracle2).fit(X, np.full(len(y), -1))
    assert not set(asked) & set(given)
    assert len(stored(path)) == 40 and len(fitted.labeled_indices_) == 40
    assert fitted.history_["round"].tolist() == [0, 1, 2, 3, 4, 5]
    assert fitted.history_["n_labeled"].tolist() == [13, 16, 22, 28, 34, 40]


def test_keyboard_interrupt_leaves_the_store_consistent(tmp_path):
    X, y = pool()
    path = tmp_path / "labels.db"
    count = []

    def oracle(rows):
        if len(count) == 4:
            raise KeyboardInterrupt
        count.append(1)
        return y[rows]

    with pytest.raises(KeyboardInterrupt):
        learner(path, oracle).fit(X, np.full(len(y), -1))
    assert len(stored(path)) == 4
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_labels_outside_classes_are_rejected_before_storing(tmp_path):
    X, y = pool()
    path = tmp_path / "labels.db"
    with pytest.raises(ValueError, match=r"Labels \[7\] are not in classes"):
        learner(path, lambda rows: np.full(len(rows), 7), classes=[0, 1, 2]).fit(
            X, np.full(len(y), -1)
        )
    assert stored(path) == []


def test_simulation_with_a_store_is_an_error(tmp_path):
    X, y = pool()
    with pytest.raises(ValueError, match="mark the rows to ask for with -1"):
        learner(tmp_path / "s.db", None).fit(X, y)
    with pytest.raises(
        ValueError,
        match="'oracle_batch_size' parameter of ActiveLearner must be an int",
    ):
        learner(tmp_path / "s.db", lambda r: y[r], oracle_batch_size=0).fit(
            X, np.full(len(y), -1)
        )


def test_given_labels_combine_with_stored_ones(tmp_path):
    X, y = pool()
    path = tmp_path / "labels.db"
    y_given = np.full(len(y), -1)
    y_given[:20] = y[:20]
    oracle = lambda rows: y[rows]  # noqa: E731
    learner(path, oracle, n_rounds=2).fit(X, y_given)
    assert len(stored(path)) == 12 and min(i for i, _, _ in stored(path)) >= 20
    fitted = ActiveLearner.resume(X, y_given, path, oracle=oracle, n_rounds=3)
    assert len(fitted.labeled_indices_) == 20 + 18 == len(set(fitted.labeled_indices_))
    conflicting = y_given.copy()
    first = stored(path)[0][0]
    conflicting[first] = (y[first] + 1) % 3
    with pytest.raises(ValueError, match=f"Row {first} is labeled"):
        ActiveLearner.resume(X, conflicting, path, oracle=oracle)


# --- a different pool is refused ----------------------------------------------------
def test_store_opened_against_a_different_pool_is_refused(tmp_path):
    X, y = pool()
    path = tmp_path / "labels.db"
    learner(path, lambda rows: y[rows], n_rounds=1).fit(X, np.full(len(y), -1))
    labeled = [i for i, _, _ in stored(path)]
    unlabeled = next(i for i in range(len(y)) if i not in labeled)

    other_row = X.copy()
    other_row[labeled[3]] += 0.5
    other_unlabeled = X.copy()
    other_unlabeled[unlabeled, 0] = 99.0
    cases = [
        (X[:-1], r"created for a pool of shape \(300, 8\), but X has shape \(299, 8\)"),
        (X[:, :7], r"shape \(300, 8\), but X has shape \(300, 7\)"),
        (X[::-1], r"16 stored rows differ from the rows of X"),
        (other_row, rf"1 of the 16 stored rows differs .*\[{labeled[3]}\]"),
        (other_unlabeled, r"stored rows are unchanged, but other rows of the pool"),
    ]
    for X_other, message in cases:
        with pytest.raises(LabelStoreMismatchError, match=message):
            ActiveLearner.resume(X_other, None, path, oracle=lambda rows: y[rows])
        with pytest.raises(ValueError, match=message):  # from fit as well
            learner(path, lambda rows: y[rows]).fit(X_other, np.full(len(X_other), -1))
    assert len(stored(path)) == 16  # nothing was added by the refused sessions


def test_resume_rebuilds_parameters_and_needs_what_was_not_stored(tmp_path):
    X, y = pool()

    class Custom(LogisticRegression):
        pass

    path = tmp_path / "labels.db"
    ActiveLearner(
        Custom(max_iter=300),
        "entropy",
        batch_size=4,
        n_rounds=1,
        oracle=lambda rows: y[rows],
        label_store=path,
        random_state=3,
    ).fit(X, np.full(len(y), -1))
    with pytest.raises(
        ValueError, match=r"could not keep the parameters \['estimator'\]"
    ):
        ActiveLearner.resume(X, None, path, oracle=lambda rows: y[rows])
    fitted = ActiveLearner.resume(
        X,
        None,
        path,
        oracle=lambda rows: y[rows],
        estimator=Custom(max_iter=300),
        n_rounds=2,
    )
    params = fitted.get_params(deep=False)
    assert (params["strategy"], params["batch_size"], params["random_state"]) == (
        "entropy",
        4,
        3,
    )
    assert len(stored(path)) == 12

    path2 = tmp_path / "labels2.db"
    learner(path2, lambda rows: y[rows], n_rounds=1).fit(X, np.full(len(y), -1))
    fitted = ActiveLearner.resume(X, None, path2, oracle=lambda rows: y[rows])
    assert isinstance(fitted.estimator, LogisticRegression)
    assert fitted.estimator.max_iter == 300
    assert len(fitted.labeled_indices_) == 16  # nothing left to ask


# --- a labeling process killed with SIGKILL in the middle of a round ----------------------
SESSION_SCRIPT = """
import sys, time
import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from skal import ActiveLearner

store, log_path, hang_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
X, y = make_classification(
    n_samples=300, n_features=8, n_informative=5, n_classes=3, random_state=0
)
log = open(log_path, "a", buffering=1)
given = 0

def oracle(rows):
    global given
    if given == hang_after:
        log.write("waiting\\n")  # every answer before this one is committed
        time.sleep(600)
    time.sleep(0.005)  # a (fast) person
    given += 1
    log.write(f"{int(rows[0])} {int(y[rows[0]])}\\n")
    return y[rows]

ActiveLearner(
    LogisticRegression(max_iter=300), "margin", n_initial=10, batch_size=6,
    n_rounds=5, oracle=oracle, oracle_batch_size=1, label_store=store,
    random_state=0,
).fit(X, np.full(len(y), -1))
log.write("done\\n")
"""


def test_session_killed_mid_round_resumes_without_losing_labels(tmp_path):
    script = tmp_path / "session.py"
    script.write_text(textwrap.dedent(SESSION_SCRIPT))
    path, log = tmp_path / "labels.db", tmp_path / "given.log"
    hang_after = 10 + 6 + 3  # the 4th answer of round 2
    process = subprocess.Popen(
        [sys.executable, str(script), str(path), str(log), str(hang_after)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while "waiting" not in (log.read_text() if log.exists() else ""):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the session never reached the kill point"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    given = [tuple(map(int, line.split())) for line in log.read_text().split("\n")[:-2]]
    assert len(given) == hang_after
    before = stored(path)
    assert [(i, label) for i, label, _ in before] == given  # nothing lost
    assert [r for _, _, r in before].count(2) == 3  # killed in the middle of round 2

    X, y = pool()
    asked = []

    def oracle(rows):
        asked.extend(rows.tolist())
        return y[rows]

    resumed = ActiveLearner.resume(X, None, path, oracle=oracle)
    after = stored(path)
    assert after[: len(before)] == before
    indices = [i for i, _, _ in after]
    assert len(indices) == len(set(indices)) == 10 + 5 * 6  # none duplicated
    assert not set(asked) & {i for i, _ in given}  # never asked again
    assert pd.Series([r for _, _, r in after]).value_counts().sort_index().tolist() == [
        10,
        6,
        6,
        6,
        6,
        6,
    ]
    assert resumed.history_["round"].tolist() == [1, 2, 3, 4, 5]
    assert resumed.history_["n_labeled"].tolist() == [19, 22, 28, 34, 40]
    assert sorted(resumed.labeled_indices_) == sorted(indices)
    assert all(label == y[i] for i, label, _ in after)


# --- the terminal example, answered through a pipe -------------------------------------------
def run_example(store, answers):
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "label_in_terminal.py"),
            "--store",
            str(store),
            "--batch-size",
            "4",
            "--rounds",
            "2",
            "--n-initial",
            "4",
        ],
        input="\n".join(answers) + "\n",
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_terminal_example_with_piped_answers_is_resumable(tmp_path):
    store = tmp_path / "labels.db"
    # 4 initial answers, a skip, a nonsense answer re-asked, then stdin ends.
    first = run_example(store, ["3", "1", "4", "1", "s", "banana", "5", "q"])
    assert first.returncode == 0, first.stderr
    assert "##" in first.stdout  # the digit is drawn
    assert "not a label" in first.stdout
    assert "6 answers are saved" in first.stdout
    records = stored(store)
    assert [label for _, label, _ in records] == [3, 1, 4, 1, -1, 5]

    second = run_example(store, ["9", "2", "6", "0", "0", "0", "7"])
    assert second.returncode == 0, second.stderr
    assert "Continuing the session" in second.stdout
    assert "Session complete" in second.stdout
    records = stored(store)
    assert [label for _, label, _ in records] == [3, 1, 4, 1, -1, 5, 9, 2, 6, 0, 0, 0]
    indices = [i for i, _, _ in stored(store)]
    assert len(indices) == len(set(indices)) == 4 + 2 * 4


def test_recorders_holding_large_arrays_are_not_copied_into_the_store(tmp_path):
    # A RoundRecorder on a test set is data, not a setting: above the size limit
    # the session keeps no copy and resume asks for the callbacks.
    from skal.callbacks import RoundRecorder
    from skal.label_store import MAX_STORED_ARRAY_SIZE, stored_learner_params

    X, y = pool()
    rows = MAX_STORED_ARRAY_SIZE // X.shape[1] + 1
    small = RoundRecorder(X=X[:10])
    large = RoundRecorder(X=np.zeros((rows, X.shape[1])))
    for recorder, path in (
        (small, tmp_path / "small.db"),
        (large, tmp_path / "large.db"),
    ):
        ActiveLearner(
            LogisticRegression(max_iter=300),
            "entropy",
            batch_size=4,
            n_rounds=1,
            oracle=lambda rows: y[rows],
            label_store=path,
            callbacks=[recorder],
            random_state=0,
        ).fit(X, np.full(len(y), -1))
    params, not_stored = stored_learner_params(tmp_path / "small.db")
    assert not_stored == []
    np.testing.assert_array_equal(params["callbacks"][0].X, X[:10])
    params, not_stored = stored_learner_params(tmp_path / "large.db")
    assert not_stored == ["callbacks"] and "callbacks" not in params
    assert os.path.getsize(tmp_path / "large.db") < rows * X.shape[1]  # no copy
    with pytest.raises(ValueError, match=r"\['callbacks'\].*arrays of more than"):
        ActiveLearner.resume(X, None, tmp_path / "large.db", oracle=lambda r: y[r])
