import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import check_param_validation

from skal import ActiveLearner
from skal.strategies import Margin, RandomSampling

from .conftest import tiny_mlp


def logreg():
    return LogisticRegression(max_iter=300)


def test_simulation_reveals_only_the_budget(blobs):
    X, y = blobs
    learner = ActiveLearner(
        logreg(), "margin", n_initial=12, batch_size=5, n_rounds=4, random_state=0
    ).fit(X, y, eval_set=(X[:50], y[:50]))
    history = learner.history_
    assert list(history.columns) == [
        "round",
        "n_labeled",
        "queried",
        "acquisition_seconds",
        "training_seconds",
        "eval_score",
    ]
    assert history["n_labeled"].tolist() == [12, 17, 22, 27, 32]
    assert history["round"].tolist() == [0, 1, 2, 3, 4]
    assert len(learner.labeled_indices_) == len(set(learner.labeled_indices_)) == 32
    np.testing.assert_array_equal(
        np.concatenate(history["queried"].tolist()), learner.labeled_indices_
    )
    assert history["eval_score"].between(0, 1).all()
    assert (history["acquisition_seconds"].iloc[1:] > 0).all()
    # The final model was trained on exactly the revealed rows.
    reference = logreg().fit(X[learner.labeled_indices_], y[learner.labeled_indices_])
    np.testing.assert_allclose(learner.predict_proba(X), reference.predict_proba(X))


def test_labels_of_unqueried_rows_are_never_used(blobs):
    X, y = blobs
    learner = ActiveLearner(
        logreg(), "entropy", batch_size=10, n_rounds=3, random_state=1
    )
    learner.fit(X, y)
    shuffled = y.copy()
    hidden = np.setdiff1d(np.arange(len(y)), learner.labeled_indices_)
    shuffled[hidden] = np.random.RandomState(0).permutation(shuffled[hidden])
    again = clone(learner).fit(X, shuffled)
    np.testing.assert_array_equal(again.labeled_indices_, learner.labeled_indices_)


def test_same_initial_set_across_strategies_and_determinism(blobs):
    X, y = blobs
    runs = {
        name: ActiveLearner(
            tiny_mlp(random_state=None), name, batch_size=8, n_rounds=2, random_state=5
        ).fit(X, y, eval_set=(X, y))
        for name in ("random", "entropy", "margin")
    }
    initial = [tuple(r.history_["queried"][0]) for r in runs.values()]
    assert len(set(initial)) == 1
    # Same round-0 model too: model seeds do not depend on the strategy.
    assert len({r.history_["eval_score"][0] for r in runs.values()}) == 1
    again = ActiveLearner(
        tiny_mlp(random_state=None), "entropy", batch_size=8, n_rounds=2, random_state=5
    ).fit(X, y)
    np.testing.assert_array_equal(
        again.labeled_indices_, runs["entropy"].labeled_indices_
    )
    np.testing.assert_allclose(again.predict_proba(X), runs["entropy"].predict_proba(X))


def test_random_strategy_draws_differently_each_round(blobs):
    X, y = blobs
    learner = ActiveLearner(
        logreg(), RandomSampling(), batch_size=5, n_rounds=3, random_state=0
    )
    queried = learner.fit(X, y).history_["queried"].tolist()
    assert len({tuple(sorted(q)) for q in queried}) == 4


def test_labeling_with_an_oracle_and_declined_rows(blobs):
    X, y = blobs
    y_partial = np.full(len(y), -1)
    y_partial[:20] = y[:20]
    asked = []

    def oracle(indices):
        asked.append(np.array(indices))
        labels = y[indices].copy()
        labels[0] = -1  # the annotator skips one row per batch
        return labels

    learner = ActiveLearner(
        logreg(), "margin", batch_size=6, n_rounds=3, oracle=oracle, random_state=0
    )
    learner.fit(X, y_partial)
    asked = np.concatenate(asked)
    assert len(asked) == len(set(asked)) == 18
    assert np.all(asked >= 20)  # already labeled rows are never asked for
    assert learner.history_["n_labeled"].tolist() == [20, 25, 30, 35]
    assert len(learner.labeled_indices_) == 35
    assert not np.isin(asked[::6], learner.labeled_indices_).any()


def test_oracle_starts_from_nothing(blobs):
    X, y = blobs
    learner = ActiveLearner(
        logreg(),
        "entropy",
        n_initial=15,
        batch_size=5,
        n_rounds=1,
        oracle=lambda idx: y[idx],
        random_state=0,
    ).fit(X, np.full(len(y), -1))
    assert learner.history_["n_labeled"].tolist() == [15, 20]


def test_no_oracle_trains_on_labeled_rows_then_query_and_teach(blobs):
    X, y = blobs
    y_partial = np.full(len(y), -1)
    y_partial[:40] = y[:40]
    learner = ActiveLearner(logreg(), "margin", batch_size=5, random_state=0).fit(
        X, y_partial
    )
    assert learner.history_["n_labeled"].tolist() == [40]
    picks = learner.query(X[40:], 7)
    expected = (
        Margin()
        .fit(X[:40], y[:40], estimator=logreg().fit(X[:40], y[:40]))
        .query(X[40:], 7)
    )
    np.testing.assert_array_equal(picks, expected)
    learner.teach(X[40:][picks], y[40:][picks])
    assert learner.history_["n_labeled"].tolist() == [40, 47]
    reference = logreg().fit(
        np.vstack([X[:40], X[40:][picks]]), np.concatenate([y[:40], y[40:][picks]])
    )
    np.testing.assert_allclose(learner.predict_proba(X), reference.predict_proba(X))


def test_subsample_limits_candidates(blobs, monkeypatch):
    X, y = blobs
    sizes = []
    original = Margin.query

    def spy(self, X_pool, n, candidates=None):
        sizes.append(len(candidates))
        picks = original(self, X_pool, n, candidates=candidates)
        assert np.isin(picks, candidates).all()
        return picks

    monkeypatch.setattr(Margin, "query", spy)
    ActiveLearner(
        logreg(), Margin(), batch_size=5, n_rounds=2, subsample=30, random_state=0
    ).fit(X, y)
    assert sizes == [30, 30]


def test_predict_proba_covers_classes_the_model_has_not_seen(blobs):
    X, y = blobs
    y_partial = np.full(len(y), -1)
    keep = np.flatnonzero(y < 2)[:30]
    y_partial[keep] = y[keep]
    learner = ActiveLearner(logreg(), "entropy", classes=[0, 1, 2, 3]).fit(X, y_partial)
    proba = learner.predict_proba(X)
    assert proba.shape == (400, 4)
    np.testing.assert_array_equal(proba[:, 2:], 0)
    # skal's nets receive the full label set and have all outputs from round 0.
    net_learner = ActiveLearner(tiny_mlp(), "entropy", classes=[0, 1, 2, 3]).fit(
        X, y_partial
    )
    assert net_learner.estimator_.module_.output_layer.out_features == 4


def test_single_class_initial_set(blobs):
    X, y = blobs
    y_one = np.where(np.arange(len(y)) < 10, 0, -1)
    learner = ActiveLearner(tiny_mlp(), "entropy", classes=[0, 1, 2, 3]).fit(X, y_one)
    assert len(learner.query(X[10:], 5)) == 5
    with pytest.raises(ValueError, match="single class 0"):
        ActiveLearner(logreg(), "entropy").fit(X, y_one)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            dict(n_initial=300, batch_size=50, n_rounds=3),
            "n_initial \\+ n_rounds \\* batch_size = 450 exceeds the 400",
        ),
        (dict(batch_size=0), "'batch_size' parameter of ActiveLearner must be an int"),
        (dict(n_rounds=-1), "'n_rounds' parameter of ActiveLearner must be an int"),
        (dict(subsample=0), "'subsample' parameter of ActiveLearner must be an int"),
        (dict(strategy="nope"), "Unknown strategy 'nope'"),
    ],
)
def test_bad_parameters(params, message, blobs):
    X, y = blobs
    with pytest.raises(ValueError, match=message):
        ActiveLearner(logreg(), **params).fit(X, y)


def test_every_parameter_is_declared_and_an_invalid_value_is_refused():
    # scikit-learn's own check, as for the strategies: the constraints cover
    # exactly the constructor's parameters, and fit refuses a value of a wrong
    # type, and one out of range, for each of them.
    check_param_validation("ActiveLearner", ActiveLearner())


def test_bad_data(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="no oracle"):
        ActiveLearner(logreg()).fit(X, np.full(len(y), -1))
    with pytest.raises(ValueError, match="400 samples but y has 10"):
        ActiveLearner(logreg()).fit(X, y[:10])
    with_nan = X.copy()
    with_nan[5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ActiveLearner(logreg()).fit(with_nan, y)
    with pytest.raises(TypeError, match="'strategy' parameter of ActiveLearner must"):
        ActiveLearner(logreg(), strategy=42).fit(X, y)
    with pytest.raises(TypeError, match="'oracle' parameter of ActiveLearner must"):
        ActiveLearner(logreg(), oracle="me").fit(X, y)
    with pytest.raises(ValueError, match="returned 1 labels for 5"):
        ActiveLearner(logreg(), batch_size=5, n_rounds=1, oracle=lambda i: [0]).fit(
            X, np.where(np.arange(400) < 20, y, -1)
        )
    with pytest.raises(NotFittedError):
        ActiveLearner(logreg()).query(X, 3)
    learner = ActiveLearner(logreg(), batch_size=5, n_rounds=1).fit(X, y)
    with pytest.raises(ValueError, match="has 4 features"):
        learner.predict(X[:, :4])
    with pytest.raises(ValueError, match="larger than the pool"):
        learner.query(X[:3], 4)
    with pytest.raises(ValueError, match="-1"):
        learner.teach(X[:2], [-1, 0])


def test_inputs_are_not_modified(blobs):
    X, y = blobs
    X_copy, y_copy = X.copy(), y.copy()
    frame = pd.DataFrame(X)
    ActiveLearner(tiny_mlp(), "margin", batch_size=5, n_rounds=2, random_state=0).fit(
        frame, y
    )
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(frame.to_numpy(), X_copy)


def test_verbose_progress_bar(blobs, capsys):
    X, y = blobs
    ActiveLearner(logreg(), batch_size=5, n_rounds=2, verbose=1, random_state=0).fit(
        X, y
    )
    assert "rounds" in capsys.readouterr().err
