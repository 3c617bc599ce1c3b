"""Round callbacks: when they fire, with what, cloning, and the RoundRecorder."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from skal import ActiveLearner, embeddings
from skal.callbacks import Callback, RoundRecorder
from skal.stopping import LabelBudget

from .conftest import tiny_mlp


class Journal(Callback):
    """Writes down every hook call with what it was given."""

    def __init__(self, tag="journal"):
        self.tag = tag

    def on_fit_begin(self, learner, **kwargs):
        self.calls_ = [("fit_begin", None, kwargs)]

    def on_round_begin(self, learner, *, round_, labeled_indices, **kwargs):
        self.calls_.append(("round_begin", round_, {"labeled": labeled_indices}))

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
        # What the criteria (notified first) say this round.
        seen = [len(c.history_) for c in learner.stopping_]
        self.calls_.append(
            (
                "round_end",
                round_,
                dict(
                    kwargs,
                    labeled=labeled_indices,
                    queried=queried_indices,
                    estimator=estimator,
                    strategy=strategy,
                    criteria_rounds=seen,
                ),
            )
        )

    def on_fit_end(self, learner, **kwargs):
        self.calls_.append(("fit_end", None, kwargs))

    def events(self):
        return [(name, round_) for name, round_, _ in self.calls_]

    def ends(self):
        return [info for name, _, info in self.calls_ if name == "round_end"]

    def begins(self):
        return [info for name, _, info in self.calls_ if name == "round_begin"]


def logreg():
    return LogisticRegression(max_iter=300)


def test_hooks_fire_in_order_with_the_right_rows_in_a_simulation(blobs):
    X, y = blobs
    journal = Journal()
    learner = ActiveLearner(
        logreg(),
        "margin",
        n_initial=6,
        batch_size=4,
        n_rounds=2,
        random_state=0,
        callbacks=[journal],
        stopping=LabelBudget(1000),
    ).fit(X, y, eval_set=(X[:40], y[:40]))
    recorded = learner.callbacks_[0]
    assert recorded is not journal and not hasattr(journal, "calls_")
    assert recorded.events() == [
        ("fit_begin", None),
        ("round_begin", 0),
        ("round_end", 0),
        ("round_begin", 1),
        ("round_end", 1),
        ("round_begin", 2),
        ("round_end", 2),
        ("fit_end", None),
    ]
    assert recorded.calls_[0][2]["X"].shape == X.shape
    labeled = learner.labeled_indices_
    sizes = [0, 6, 10, 14]
    for r, (begin, end) in enumerate(zip(recorded.begins(), recorded.ends())):
        np.testing.assert_array_equal(begin["labeled"], labeled[: sizes[r]])
        np.testing.assert_array_equal(end["labeled"], labeled[: sizes[r + 1]])
        np.testing.assert_array_equal(end["queried"], labeled[sizes[r] : sizes[r + 1]])
        np.testing.assert_array_equal(end["queried"], learner.history_["queried"][r])
        unlabeled = np.setdiff1d(np.arange(len(X)), labeled[: sizes[r + 1]])
        np.testing.assert_array_equal(end["unlabeled_indices"], unlabeled)
        assert end["X"].shape == X.shape
        assert end["eval_score"] == learner.history_["eval_score"][r]
        assert end["criteria_rounds"] == [r + 1]  # criteria were notified first
    ends = recorded.ends()
    # Each round's own fresh model; the last is the learner's.
    assert len({id(e["estimator"]) for e in ends}) == 3
    assert ends[-1]["estimator"] is learner.estimator_
    # A random initial set has no strategy; later rows come from strategy_.
    assert ends[0]["strategy"] is None
    assert ends[1]["strategy"] is learner.strategy_
    # Each round's model was trained on exactly that round's labeled rows.
    rows = ends[1]["labeled"]
    reference = logreg().fit(X[rows], y[rows])
    np.testing.assert_allclose(
        ends[1]["estimator"].predict_proba(X), reference.predict_proba(X)
    )


def test_labeling_loop_hooks_teach_is_a_round_query_fires_nothing(blobs):
    X, y = blobs
    y_partial = np.full(len(y), -1)
    y_partial[:30] = y[:30]
    learner = ActiveLearner(logreg(), "margin", callbacks=[Journal()]).fit(X, y_partial)
    journal = learner.callbacks_[0]
    assert journal.events() == [
        ("fit_begin", None),
        ("round_begin", 0),
        ("round_end", 0),
        ("fit_end", None),
    ]
    np.testing.assert_array_equal(journal.ends()[0]["queried"], np.arange(30))
    strategy_before = learner.strategy_
    picks = learner.query(X, 5)
    assert len(journal.calls_) == 4  # query notifies nobody
    learner.teach(X[picks], y[picks])
    assert journal.events()[4:] == [("round_begin", 1), ("round_end", 1)]
    begin, end = journal.begins()[-1], journal.ends()[-1]
    np.testing.assert_array_equal(begin["labeled"], np.arange(30))
    np.testing.assert_array_equal(end["queried"], picks)
    np.testing.assert_array_equal(end["labeled"], np.r_[np.arange(30), picks])
    assert end["strategy"] is strategy_before
    assert end["estimator"] is learner.estimator_
    assert end["X"] is not None and end["X"].shape == X.shape
    np.testing.assert_array_equal(
        end["unlabeled_indices"],
        np.setdiff1d(np.arange(30, len(X)), picks),
    )
    # Rows that are new data (not proposed from the pool) are not "queried".
    learner.teach(X[:3] + 10.0, y[:3])
    assert len(journal.ends()[-1]["queried"]) == 0
    assert learner.history_["round"].tolist() == [0, 1, 2]


def test_oracle_session_hooks(blobs):
    X, y = blobs
    learner = ActiveLearner(
        logreg(),
        "entropy",
        batch_size=5,
        n_rounds=2,
        oracle=lambda rows: y[rows],
        random_state=0,
        callbacks=[Journal()],
    ).fit(X, np.full(len(y), -1))
    journal = learner.callbacks_[0]
    assert [e[0] for e in journal.events()].count("round_end") == 3
    ends = journal.ends()
    np.testing.assert_array_equal(ends[0]["queried"], learner.labeled_indices_[:5])
    np.testing.assert_array_equal(ends[2]["queried"], learner.labeled_indices_[10:])


def test_each_fit_starts_from_fresh_clones(blobs):
    X, y = blobs
    learner = ActiveLearner(logreg(), n_rounds=1, callbacks=[Journal()])
    first = learner.fit(X, y).callbacks_[0]
    second = learner.fit(X, y).callbacks_[0]
    assert first is not second
    assert len(second.calls_) == len(first.calls_) == 6


def test_callbacks_clone_get_params_and_grid_search(blobs):
    X, y = blobs
    learner = ActiveLearner(logreg(), n_rounds=1, callbacks=[Journal("a")])
    copy = clone(learner)
    assert copy.callbacks[0] is not learner.callbacks[0]
    assert copy.callbacks[0].get_params() == {"tag": "a"}
    assert learner.get_params()["callbacks"] == learner.callbacks
    search = GridSearchCV(
        learner, {"callbacks": [[Journal("a")], [Journal("b")]]}, cv=2
    ).fit(X[:100], y[:100])
    assert search.best_estimator_.callbacks_[0].tag in ("a", "b")
    assert search.best_estimator_.callbacks_[0].events()[-1] == ("fit_end", None)


def test_bad_callbacks_are_refused_with_the_fix(blobs):
    with pytest.raises(TypeError, match="Callback instances"):
        ActiveLearner(logreg(), callbacks=[print]).fit(*blobs)


# --- RoundRecorder -------------------------------------------------------------------
def test_round_recorder_keeps_rows_and_probabilities(blobs):
    X, y = blobs
    X_test = X[:50]
    learner = ActiveLearner(
        logreg(),
        "margin",
        batch_size=5,
        n_rounds=2,
        random_state=0,
        callbacks=[
            RoundRecorder(proba=True),
            RoundRecorder(X_test, proba=True, keep_estimators=True),
        ],
    ).fit(X, y)
    on_pool, on_test = learner.callbacks_
    labeled = learner.labeled_indices_
    records = on_pool.records_
    assert [r.round for r in records] == [0, 1, 2]
    for r, record in enumerate(records):
        rows = labeled[: 5 * (r + 1)]
        np.testing.assert_array_equal(record.labeled, rows)
        # queried = rows chosen with this round's model, labeled next round.
        np.testing.assert_array_equal(
            record.queried, labeled[5 * (r + 1) : 5 * (r + 2)]
        )
        # A brute-force twin: the round's model refitted on the round's rows.
        reference = logreg().fit(X[rows], y[rows])
        np.testing.assert_allclose(record.proba, reference.predict_proba(X))
        np.testing.assert_array_equal(record.classes, reference.classes_)
        assert record.estimator is None
        np.testing.assert_allclose(
            on_test.records_[r].proba, reference.predict_proba(X_test)
        )
    assert on_test.records_[-1].estimator is learner.estimator_
    assert on_pool.fingerprint_ != on_test.fingerprint_


def test_round_recorder_features_and_warm_start_copies(blobs):
    X, y = blobs
    X, y = X[:150], y[:150]
    learner = ActiveLearner(
        tiny_mlp(max_epochs=2),
        "entropy",
        batch_size=10,
        n_rounds=1,
        warm_start=True,
        random_state=0,
        callbacks=[RoundRecorder(features=True, keep_estimators=True)],
    ).fit(X, y)
    records = learner.callbacks_[0].records_
    models = [r.estimator for r in records]
    assert len({id(m) for m in models}) == 2  # copies: the net is trained on
    for record in records:
        expected = embeddings.forward_pass(record.estimator, X).features
        np.testing.assert_allclose(record.features, expected, rtol=1e-6)
        assert record.proba is None
    assert not np.allclose(records[0].features, records[1].features)


def test_round_recorder_in_teach_uses_the_queried_pool(blobs):
    X, y = blobs
    y_partial = np.full(len(y), -1)
    y_partial[:20] = y[:20]
    learner = ActiveLearner(
        logreg(), "margin", callbacks=[RoundRecorder(proba=True)]
    ).fit(X, y_partial)
    picks = learner.query(X, 5)
    learner.teach(X[picks], y[picks])
    recorder = learner.callbacks_[0]
    first, second = recorder.records_
    np.testing.assert_array_equal(first.queried, picks)
    np.testing.assert_allclose(second.proba, learner.predict_proba(X))
    # Without a query on the pool in this process, the arrays cannot be recorded.
    del learner._query_pool
    with pytest.warns(UserWarning, match="RoundRecorder records"):
        learner.teach(X[:2] + 5.0, y[:2])
    assert recorder.records_[-1].proba is None
