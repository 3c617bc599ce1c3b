"""SemiSupervisedScore: a round callback scoring a semi-supervised learner."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression

from skal import ActiveLearner
from skal.semi_supervised import SelfTrainingClassifier, SemiSupervisedScore


@pytest.fixture
def data():
    X, y = make_blobs(200, centers=3, cluster_std=3.0, random_state=0)
    labels = np.array(["ant", "bee", "cat"])[y]  # string labels: codes are mapped back
    return X[:150], labels[:150], X[150:], labels[150:]


def ssl():
    return SelfTrainingClassifier(LogisticRegression(), threshold=0.8, darp="uniform")


def test_records_the_accuracy_of_the_rounds_labeled_rows(data):
    X, y, X_test, y_test = data
    learner = ActiveLearner(
        LogisticRegression(),
        "margin",
        n_initial=6,
        batch_size=6,
        n_rounds=3,
        random_state=0,
        callbacks=[SemiSupervisedScore(ssl(), random_state=0)],
    ).fit(X, y, eval_set=(X_test, y_test))
    recorded = learner.history_["semi_supervised_score"].to_numpy()
    # Reference: rebuild each round's labeled rows from the history, code the labels
    # by hand, fit the same semi-supervised learner, score its decoded predictions.
    classes = ["ant", "bee", "cat"]
    labeled = []
    for r, queried in enumerate(learner.history_["queried"]):
        labeled.extend(queried)
        y_ssl = np.full(len(X), -1)
        for row in labeled:
            y_ssl[row] = classes.index(y[row])
        predicted = ssl().fit(X, y_ssl).predict(X_test)
        expected = np.mean([classes[p] == t for p, t in zip(predicted, y_test)])
        assert recorded[r] == pytest.approx(expected)
    assert len(labeled) == 6 + 3 * 6
    # The supervised score is still recorded beside it, and differs in general.
    assert learner.history_["eval_score"].notna().all()


def test_every_skips_rounds_but_keeps_the_last(data):
    X, y, X_test, y_test = data
    learner = ActiveLearner(
        LogisticRegression(),
        "random",
        n_initial=6,
        batch_size=6,
        n_rounds=3,
        random_state=0,
        callbacks=[SemiSupervisedScore(ssl(), every=2)],
    ).fit(X, y, eval_set=(X_test, y_test))
    recorded = learner.history_["semi_supervised_score"]
    assert recorded.isna().tolist() == [False, True, False, False]


def test_needs_an_eval_set(data):
    X, y, _, _ = data
    learner = ActiveLearner(
        LogisticRegression(), n_rounds=1, callbacks=[SemiSupervisedScore(ssl())]
    )
    with pytest.raises(ValueError, match="eval_set"):
        learner.fit(X, y)


def test_default_self_trains_the_learners_own_net(data):
    from skal.nets import MLPClassifier

    X, y, X_test, y_test = data
    net = MLPClassifier(hidden_layer_sizes=(8,), max_epochs=3, random_state=0)
    learner = ActiveLearner(
        net,
        "entropy",
        n_initial=6,
        batch_size=6,
        n_rounds=1,
        random_state=0,
        callbacks=[SemiSupervisedScore(random_state=0)],
    ).fit(X.astype(np.float32), y, eval_set=(X_test.astype(np.float32), y_test))
    scores = learner.history_["semi_supervised_score"]
    assert scores.between(0, 1).all() and len(scores) == 2


def test_unseeded_score_is_seeded_by_the_learner(data):
    X, y, X_test, y_test = data

    def run():
        return ActiveLearner(
            LogisticRegression(),
            "random",
            n_initial=6,
            batch_size=6,
            n_rounds=1,
            random_state=3,
            callbacks=[SemiSupervisedScore()],
        ).fit(X, y, eval_set=(X_test, y_test))

    first, second = run(), run()
    assert first.callbacks_[0].random_state is not None
    assert first.callbacks_[0].random_state == second.callbacks_[0].random_state
