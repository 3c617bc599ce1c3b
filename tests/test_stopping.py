"""Stopping criteria: each against a hand-computed sequence, then in the learner."""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from skal import ActiveLearner
from skal.stopping import (
    ClassificationChange,
    LabelBudget,
    OverallUncertainty,
    StabilizingPredictions,
    ValidationPlateau,
    agreement_kappa,
)

from .conftest import tiny_mlp


class TableModel(ClassifierMixin, BaseEstimator):
    """A fitted "model" whose prediction for pool row i is table[i].

    The pool is ``X = arange(n)[:, None]``, so a row's value is its index.
    """

    def __init__(self, labels=None, proba=None):
        self.labels = None if labels is None else np.asarray(labels)
        self.proba = None if proba is None else np.asarray(proba, dtype=float)
        self.classes_ = np.arange(2 if self.proba is None else self.proba.shape[1])

    def fit(self, X, y):  # sklearn's check_is_fitted wants a fit method
        return self

    def predict(self, X):
        return self.labels[np.asarray(X)[:, 0].astype(int)]

    def predict_proba(self, X):
        return self.proba[np.asarray(X)[:, 0].astype(int)]


def pool(n):
    return np.arange(n, dtype=float)[:, None]


def run(criterion, rounds, X, eval_set=None):
    """Drive a criterion like the learner does; its statistic per round."""
    criterion.on_fit_begin(None, X=X, eval_set=eval_set)
    statistics, fired = [], []
    for round_, context in enumerate(rounds):
        context = {
            "labeled_indices": np.array([], dtype=np.int64),
            "queried_indices": np.array([], dtype=np.int64),
            "strategy": None,
            "X": X,
            "eval_score": np.nan,
            **context,
        }
        criterion.on_round_end(None, round_=round_, **context)
        statistics.append(criterion.history_[-1]["statistic"])
        fired.append(criterion.fired_)
    return statistics, fired


def kappa_by_hand(a, b):
    """Cohen's kappa from its definition: (p_o - p_e) / (1 - p_e)."""
    n = len(a)
    observed = sum(x == z for x, z in zip(a, b)) / n
    labels = set(a) | set(b)
    expected = sum((list(a).count(k) / n) * (list(b).count(k) / n) for k in labels)
    return (observed - expected) / (1 - expected)


def test_kappa_by_hand_and_identical_constant_predictions():
    a, b = [0, 0, 1, 1, 2, 2], [0, 0, 1, 2, 2, 2]
    # p_o = 5/6, p_e = (2*2 + 2*1 + 2*3) / 36 = 1/3, kappa = (1/2) / (2/3).
    assert kappa_by_hand(a, b) == pytest.approx(0.75)
    assert agreement_kappa(np.array(a), np.array(b)) == pytest.approx(0.75)
    # sklearn's kappa is 0/0 here; two identical vectors agree perfectly.
    assert agreement_kappa(np.ones(4), np.ones(4)) == 1.0


def test_stabilizing_predictions_on_a_hand_computed_sequence():
    X = pool(8)
    unlabeled = np.arange(2, 8)  # the stop set: rows unlabeled after round 0
    per_round = [
        [9, 9, 0, 0, 1, 1, 2, 2],
        [9, 9, 0, 0, 1, 2, 2, 2],  # kappa with round 0: 0.75 (above)
        [9, 9, 0, 0, 1, 2, 2, 2],  # identical: 1
        [9, 9, 0, 0, 1, 2, 2, 2],  # identical: 1
    ]
    rounds = [
        {"estimator": TableModel(labels), "unlabeled_indices": unlabeled[r:]}
        for r, labels in enumerate(per_round)
    ]
    criterion = StabilizingPredictions(stop_set_size=None, window=2, threshold=0.9)
    statistics, fired = run(criterion, rounds, X)
    kappas = [kappa_by_hand(per_round[r - 1][2:], per_round[r][2:]) for r in (1, 2, 3)]
    assert kappas == pytest.approx([0.75, 1.0, 1.0])
    assert criterion.kappas_ == pytest.approx(kappas)
    # Mean of the last two kappas: undefined, undefined, 0.875, 1.0.
    assert np.isnan(statistics[:2]).all()
    assert statistics[2:] == pytest.approx([0.875, 1.0])
    assert fired == [False, False, False, True]
    # The stop set stayed the rows unlabeled after round 0.
    np.testing.assert_array_equal(criterion.stop_set_indices_, unlabeled)


def test_stabilizing_predictions_draws_a_fixed_stop_set():
    X = pool(50)
    unlabeled = np.arange(10, 50)
    criterion = StabilizingPredictions(stop_set_size=7, random_state=3)
    labels = np.zeros(50, dtype=int)
    run(
        criterion,
        [{"estimator": TableModel(labels), "unlabeled_indices": unlabeled}],
        X,
    )
    expected = np.sort(np.random.RandomState(3).choice(unlabeled, 7, replace=False))
    np.testing.assert_array_equal(criterion.stop_set_indices_, expected)
    np.testing.assert_array_equal(criterion.stop_set_, X[expected])


def test_classification_change_on_the_shrinking_pool():
    X = pool(8)
    per_round = [
        [0, 0, 1, 1, 0, 0, 1, 1],
        [0, 0, 1, 1, 0, 1, 1, 0],  # rows 4..7 evaluated: 5 and 7 changed: 2/4
        [0, 0, 1, 1, 0, 1, 1, 0],  # rows 6..7: nothing changed
    ]
    unlabeled = [np.arange(2, 8), np.arange(4, 8), np.arange(6, 8)]
    rounds = [
        {"estimator": TableModel(labels), "unlabeled_indices": rows}
        for labels, rows in zip(per_round, unlabeled)
    ]
    statistics, fired = run(ClassificationChange(), rounds, X)
    assert np.isnan(statistics[0])
    assert statistics[1:] == [0.5, 0.0]
    assert fired == [False, False, True]
    # A tolerance: stop when at most half the predictions changed.
    _, fired = run(ClassificationChange(threshold=0.5), rounds, X)
    assert fired == [False, True, True]


def test_overall_uncertainty_mean_and_max():
    X = pool(4)
    proba = [[0.9, 0.1], [0.6, 0.4], [0.5, 0.5], [1.0, 0.0]]
    # Least confidence of rows 0..2: 0.1, 0.4, 0.5 (row 3 is labeled).
    context = {"estimator": TableModel(proba=proba), "unlabeled_indices": [0, 1, 2]}
    statistics, fired = run(OverallUncertainty(threshold=0.34), [context], X)
    assert statistics == pytest.approx([1.0 / 3.0])
    assert fired == [True]
    statistics, fired = run(
        OverallUncertainty(threshold=0.5, aggregate="max"), [context], X
    )
    assert statistics == pytest.approx([0.5])
    assert fired == [False]  # "under the threshold": 0.5 is not below 0.5


def test_overall_uncertainty_warns_when_label_smoothing_keeps_it_above(blobs):
    X, y = blobs
    kwargs = dict(batch_size=5, n_rounds=1, random_state=0)
    stopping = OverallUncertainty(threshold=0.05)
    # 4 classes: label smoothing 0.1 keeps 1 - max p near 0.1 * (1 - 1/4) = 0.075.
    with pytest.warns(UserWarning, match="label smoothing 0.1.*0.075"):
        ActiveLearner(tiny_mlp(), "margin", stopping=stopping, **kwargs).fit(
            X[:60], y[:60]
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="OverallUncertainty")
        ActiveLearner(
            tiny_mlp(criterion__label_smoothing=0.0),
            "margin",
            stopping=stopping,
            **kwargs,
        ).fit(X[:60], y[:60])
        ActiveLearner(
            tiny_mlp(), "margin", stopping=OverallUncertainty(threshold=0.1), **kwargs
        ).fit(X[:60], y[:60])


def test_label_budget_counts_labeled_rows():
    rounds = [{"labeled_indices": np.arange(n), "estimator": None} for n in (5, 9, 12)]
    statistics, fired = run(LabelBudget(9), rounds, pool(20))
    assert statistics == [5.0, 9.0, 12.0]
    assert fired == [False, True, True]


def test_validation_plateau_counts_rounds_without_improvement():
    scores = [0.5, 0.6, 0.6, 0.61, 0.605, 0.7]
    rounds = [{"eval_score": s, "estimator": None} for s in scores]
    criterion = ValidationPlateau(patience=3, min_delta=0.02)
    statistics, fired = run(criterion, rounds, pool(3), eval_set=(pool(3), [0, 1, 0]))
    # 0.6 beats 0.5 by more than 0.02; 0.6, 0.61, 0.605 do not beat 0.6 + 0.02.
    assert statistics == [0, 0, 1, 2, 3, 0]
    assert fired == [False, False, False, False, True, False]


def test_validation_plateau_without_eval_set_says_what_to_pass():
    with pytest.raises(ValueError, match="eval_set=\\(X_val, y_val\\)"):
        ValidationPlateau().on_fit_begin(None, X=pool(3), eval_set=None)


def test_parameters_are_validated():
    with pytest.raises(InvalidParameterError, match="window"):
        StabilizingPredictions(window=0).on_fit_begin(None, X=pool(3))
    with pytest.raises(InvalidParameterError, match="aggregate"):
        OverallUncertainty(aggregate="median").on_fit_begin(None, X=pool(3))


# --- in the learner ------------------------------------------------------------------
def logreg():
    return LogisticRegression(max_iter=300)


def test_learner_stops_at_the_first_criterion_that_fires(blobs):
    X, y = blobs
    criteria = [LabelBudget(35), LabelBudget(25), StabilizingPredictions(100)]
    learner = ActiveLearner(
        logreg(), "margin", batch_size=5, n_rounds=10, random_state=0, stopping=criteria
    ).fit(X, y)
    # n_labeled 5, 10, ...: the second budget fires first, at 25 labels (round 4).
    assert learner.stop_reason_ == "label_budget_2"
    assert learner.stop_round_ == 4
    assert learner.history_["n_labeled"].tolist() == [5, 10, 15, 20, 25]
    assert len(learner.labeled_indices_) == 25
    assert list(learner.history_.columns[-3:]) == [
        "label_budget",
        "label_budget_2",
        "stabilizing_predictions",
    ]
    for column, criterion in zip(learner.history_.columns[-3:], learner.stopping_):
        np.testing.assert_array_equal(
            learner.history_[column], [h["statistic"] for h in criterion.history_]
        )
    # The user's criteria are not fitted (clones are).
    assert not hasattr(criteria[0], "history_")
    # Without a stop: stop_reason_ None, all rounds run.
    learner.set_params(stopping=LabelBudget(1000), n_rounds=2).fit(X, y)
    assert learner.stop_reason_ is None and len(learner.history_) == 3


def test_stop_set_is_seeded_by_the_learner(blobs):
    X, y = blobs
    params = dict(batch_size=5, n_rounds=2, random_state=4)
    runs = [
        ActiveLearner(
            logreg(), stopping=StabilizingPredictions(stop_set_size=20), **params
        ).fit(X, y)
        for _ in range(2)
    ]
    first, second = (r.stopping_[0] for r in runs)
    np.testing.assert_array_equal(first.stop_set_indices_, second.stop_set_indices_)
    assert first.random_state is not None
    # The stop set comes from rows unlabeled after round 0.
    assert not np.isin(first.stop_set_indices_, runs[0].labeled_indices_[:5]).any()
    # Stopping does not change the picks.
    plain = ActiveLearner(logreg(), **params).fit(X, y)
    np.testing.assert_array_equal(plain.labeled_indices_, runs[0].labeled_indices_)


def test_validation_plateau_needs_an_eval_set_in_the_learner(blobs):
    X, y = blobs
    learner = ActiveLearner(logreg(), n_rounds=1, stopping=ValidationPlateau())
    with pytest.raises(ValueError, match="eval_set"):
        learner.fit(X, y)
    learner.fit(X, y, eval_set=(X[:50], y[:50]))
    first, second = learner.history_["eval_score"]
    expected = [0.0, 0.0 if second > first else 1.0]
    assert learner.history_["validation_plateau"].tolist() == expected


def test_stopping_params_clone_get_set(blobs):
    learner = ActiveLearner(logreg(), stopping=StabilizingPredictions(window=2))
    params = learner.get_params(deep=True)
    assert params["stopping__window"] == 2
    assert params["stopping__threshold"] == 0.99
    copy = clone(learner)
    assert copy.stopping is not learner.stopping
    assert copy.stopping.get_params() == learner.stopping.get_params()
    copy.set_params(stopping__threshold=0.9)
    assert copy.stopping.threshold == 0.9 and learner.stopping.threshold == 0.99
    listed = ActiveLearner(stopping=[LabelBudget(10), ClassificationChange()])
    with pytest.raises(ValueError, match="single criterion.*whole lists"):
        listed.set_params(stopping__threshold=0.1)
    with pytest.raises(ValueError, match="need a stopping criterion"):
        ActiveLearner().set_params(stopping__threshold=0.1)
    with pytest.raises(TypeError, match="skal.stopping criterion"):
        ActiveLearner(logreg(), stopping=[LabelBudget(3), "kappa"]).fit(*blobs)


def test_grid_search_over_a_criterion_threshold(blobs):
    X, y = blobs
    learner = ActiveLearner(
        logreg(),
        "margin",
        batch_size=5,
        n_rounds=3,
        random_state=0,
        stopping=OverallUncertainty(),
    )
    search = GridSearchCV(learner, {"stopping__threshold": [0.0, 1.0]}, cv=2)
    search.fit(X[:200], y[:200])
    assert list(search.cv_results_["param_stopping__threshold"]) == [0.0, 1.0]
    # threshold 1.0 stops after round 0 (uncertainty is always below 1).
    stopped = clone(learner).set_params(stopping__threshold=1.0).fit(X, y)
    assert stopped.stop_reason_ == "overall_uncertainty"
    assert len(stopped.history_) == 1
    assert learner.stopping.threshold == 0.05  # the searched learner is untouched


def test_a_criterion_among_callbacks_records_without_stopping(blobs):
    X, y = blobs
    learner = ActiveLearner(
        logreg(),
        "margin",
        n_initial=5,
        batch_size=5,
        n_rounds=3,
        random_state=0,
        callbacks=[LabelBudget(10)],
    ).fit(X, y)
    # It fires at 10 labels (round 1) but the learner runs all 3 rounds.
    assert learner.history_["n_labeled"].tolist() == [5, 10, 15, 20]
    assert learner.history_["label_budget"].tolist() == [5.0, 10.0, 15.0, 20.0]
    fired = [h["fired"] for h in learner.callbacks_[0].history_]
    assert fired == [False, True, True, True]
    assert learner.stop_reason_ is None
