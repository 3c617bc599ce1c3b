"""Stopping in labeling sessions: the stop in the label store, resume, teach."""

import sqlite3
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skal import ActiveLearner
from skal.callbacks import RoundRecorder
from skal.label_store import (
    LabelStore,
    SQLiteLabelStore,
    clear_stop,
    read_stop,
    stored_learner_params,
)
from skal.persistence import load, save
from skal.stopping import ClassificationChange, LabelBudget, StabilizingPredictions


def pool():
    return make_classification(
        n_samples=200, n_features=8, n_informative=5, n_classes=3, random_state=0
    )


def logreg():
    return LogisticRegression(max_iter=300)


class Counting:
    """An oracle that answers with the true labels and remembers what it was asked."""

    def __init__(self, y):
        self.y, self.asked = y, []

    def __call__(self, rows):
        self.asked.extend(int(r) for r in rows)
        return self.y[rows]


def test_a_stop_is_stored_and_resume_asks_no_more(tmp_path):
    X, y = pool()
    path = tmp_path / "labels.db"
    oracle = Counting(y)
    learner = ActiveLearner(
        logreg(),
        "margin",
        batch_size=5,
        n_rounds=10,
        oracle=oracle,
        label_store=path,
        random_state=0,
        stopping=LabelBudget(15),
    ).fit(X, np.full(len(y), -1))
    assert (learner.stop_reason_, learner.stop_round_) == ("label_budget", 2)
    assert len(oracle.asked) == 15
    stop = read_stop(path)
    assert {k: stop[k] for k in ("reason", "round", "n_labeled")} == {
        "reason": "label_budget",
        "round": 2,
        "n_labeled": 15,
    }
    # The criterion is part of the stored session.
    assert stored_learner_params(path)[0]["stopping"].get_params() == {"n_labels": 15}

    later = Counting(y)
    with pytest.warns(UserWarning, match="'label_budget' fired at round 2.*clear_stop"):
        resumed = ActiveLearner.resume(X, None, path, oracle=later)
    assert later.asked == []
    assert (resumed.stop_reason_, resumed.stop_round_) == ("label_budget", 2)
    np.testing.assert_array_equal(
        np.sort(resumed.labeled_indices_), np.sort(oracle.asked)
    )
    assert resumed.history_["round"].tolist() == [2]

    # After clear_stop, a resume with another budget continues the session.
    clear_stop(path)
    assert read_stop(path) is None
    resumed = ActiveLearner.resume(
        X, None, path, oracle=later, stopping=LabelBudget(25)
    )
    assert len(later.asked) == 10 and not set(later.asked) & set(oracle.asked)
    assert resumed.stop_reason_ == "label_budget" and read_stop(path)["round"] == 4


def test_a_stop_in_teach_is_written_to_the_store(tmp_path):
    X, y = pool()
    path = tmp_path / "labels.db"
    y_partial = np.full(len(y), -1)
    y_partial[:20] = y[:20]
    learner = ActiveLearner(
        logreg(), "margin", label_store=path, stopping=LabelBudget(30)
    ).fit(X, y_partial)
    picks = learner.query(X, 5)
    learner.teach(X[picks], y[picks])
    assert learner.stop_reason_ is None and read_stop(path) is None
    picks = learner.query(X, 5)
    learner.teach(X[picks], y[picks])
    assert (learner.stop_reason_, learner.stop_round_) == ("label_budget", 2)
    assert read_stop(path)["n_labeled"] == 30
    with pytest.warns(UserWarning, match="query proposes rows anyway"):
        learner.query(X, 3)
    assert learner.history_["label_budget"].tolist() == [20.0, 25.0, 30.0]


class MemoryStore:
    """A LabelStore with the required methods only (no metadata)."""

    def __init__(self):
        self.session, self.stored = None, []

    def read_session(self):
        return self.session

    def write_session(self, session):
        self.session = self.session or session

    def add(self, records):
        self.stored.extend(records)

    def records(self):
        return list(self.stored)

    def close(self):
        pass


def test_a_store_that_cannot_record_a_stop_is_refused_up_front():
    X, y = pool()
    store = MemoryStore()
    assert isinstance(store, LabelStore)  # still a valid store without stopping
    learner = ActiveLearner(
        logreg(), oracle=Counting(y), label_store=store, stopping=LabelBudget(5)
    )
    with pytest.raises(TypeError, match="read_metadata/write_metadata"):
        learner.fit(X, np.full(len(y), -1))
    assert store.stored == []


def test_stores_written_before_the_metadata_table_still_open(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the version-1 schema, as first released
        db.execute(
            "CREATE TABLE session (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "document TEXT NOT NULL)"
        )
    assert read_stop(path) is None
    store = SQLiteLabelStore(path)
    store.write_metadata("stop", {"reason": "x", "round": 1})
    store.write_metadata("other", [1, 2])
    assert store.read_metadata() == {
        "stop": {"reason": "x", "round": 1},
        "other": [1, 2],
    }
    store.write_metadata("other", None)
    assert store.read_metadata() == {"stop": {"reason": "x", "round": 1}}
    store.close()


def test_a_learner_with_callbacks_and_criteria_saves_and_loads(tmp_path):
    X, y = pool()
    learner = ActiveLearner(
        logreg(),
        "margin",
        batch_size=5,
        n_rounds=3,
        random_state=0,
        initial_strategy="kcenter",
        callbacks=[RoundRecorder(proba=True, keep_estimators=True)],
        stopping=[StabilizingPredictions(stop_set_size=50), ClassificationChange()],
    ).fit(X, y)
    save(learner, tmp_path / "learner.skal")
    loaded = load(tmp_path / "learner.skal")
    assert list(loaded.history_.columns) == list(learner.history_.columns)
    np.testing.assert_array_equal(
        loaded.history_["classification_change"],
        learner.history_["classification_change"],
    )
    original, again = learner.stopping_[0], loaded.stopping_[0]
    assert again.kappas_ == original.kappas_
    np.testing.assert_array_equal(again.stop_set_indices_, original.stop_set_indices_)
    records = loaded.callbacks_[0].records_
    np.testing.assert_allclose(
        records[-1].proba, learner.callbacks_[0].records_[-1].proba
    )
    np.testing.assert_allclose(
        records[-1].estimator.predict_proba(X), learner.predict_proba(X)
    )
    assert loaded.initial_strategy_.space == "input"
    # The loaded learner continues the loop; its criteria keep counting.
    picks = loaded.query(X, 4)
    loaded.teach(X[picks], y[picks])
    assert len(loaded.stopping_[0].kappas_) == len(original.kappas_) + 1


def partially_labeled_learner():
    X, y = pool()
    y_partial = np.full(len(y), -1)
    y_partial[:20] = y[:20]
    # stop_set_size=None: the criterion evaluates the whole unlabeled pool.
    learner = ActiveLearner(
        logreg(), "margin", stopping=ClassificationChange(threshold=0.0)
    ).fit(X, y_partial)
    return learner, X, y


def test_teach_right_after_fit_evaluates_the_fitted_pool():
    learner, X, y = partially_labeled_learner()
    rows = np.arange(20, 25)  # labeled outside query: the fitted pool is known
    learner.teach(X[rows], y[rows])
    changed = learner.history_["classification_change"].iloc[-1]
    # The fraction of the 180 pool rows whose prediction changed: k / 180.
    assert np.isfinite(changed) and np.isclose(changed * 180, round(changed * 180))


def test_a_pickled_learner_drops_the_pool_and_teach_says_what_is_missing():
    import pickle

    learner, X, y = partially_labeled_learner()
    copy = pickle.loads(pickle.dumps(learner))
    assert not hasattr(copy, "_query_pool") and hasattr(learner, "_query_pool")
    with pytest.warns(UserWarning, match=r"call query\(X_pool, n\) before teach"):
        copy.teach(X[20:25], y[20:25])
    assert np.isnan(copy.history_["classification_change"].iloc[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):  # query gives the pool back: no warning
            picks = copy.query(X, 5)
            copy.teach(X[picks], y[picks])
    # A change needs two evaluated rounds: the second one has a statistic.
    assert np.isfinite(copy.history_["classification_change"].iloc[-1])


def test_teach_scores_the_fit_eval_set_and_a_plateau_can_stop_there():
    from skal.stopping import ValidationPlateau

    X, y = pool()
    X_pool, y_pool, X_eval, y_eval = X[:150], y[:150], X[150:], y[150:]
    y_partial = np.full(len(y_pool), -1)
    y_partial[:20] = y_pool[:20]
    # min_delta 1: no round can improve on round 0, so one teach is a plateau.
    learner = ActiveLearner(
        logreg(), "margin", stopping=ValidationPlateau(patience=1, min_delta=1.0)
    ).fit(X_pool, y_partial, eval_set=(X_eval, y_eval))
    assert learner.stop_reason_ is None
    picks = learner.query(X_pool, 5)
    learner.teach(X_pool[picks], y_pool[picks])
    by_hand = np.mean(learner.estimator_.predict(X_eval) == y_eval)
    assert learner.history_["eval_score"].iloc[-1] == pytest.approx(by_hand)
    assert learner.stop_reason_ == "validation_plateau"
    # A pickled learner does not carry the eval set: its teach scores NaN.
    import pickle

    copy = pickle.loads(pickle.dumps(learner))
    with pytest.warns(UserWarning, match="query proposes rows anyway"):
        picks = copy.query(X_pool, 5)  # stopped: proposes anyway
    copy.teach(X_pool[picks], y_pool[picks])
    assert np.isnan(copy.history_["eval_score"].iloc[-1])
