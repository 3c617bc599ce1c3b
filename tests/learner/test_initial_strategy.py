"""initial_strategy: the first labeled set from a model-free strategy."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skal import ActiveLearner
from skal.strategies import KCenterGreedy, ProbCover, RandomSampling, TypiClust


def logreg():
    return LogisticRegression(max_iter=300)


def test_random_default_draws_what_it_always_drew(blobs):
    X, y = blobs
    # Simulation: choice(N, n_initial, replace=False) from the learner's seed.
    for initial in (None, "random"):
        learner = ActiveLearner(
            logreg(), n_initial=7, n_rounds=1, random_state=11, initial_strategy=initial
        ).fit(X, y)
        expected = np.random.RandomState(11).choice(len(X), 7, replace=False)
        np.testing.assert_array_equal(learner.labeled_indices_[:7], expected)
        assert learner.initial_strategy_ is None
    # An oracle session from nothing: the first rows of permutation(N).
    asked = []

    def oracle(rows):
        asked.append(rows.copy())
        return y[rows]

    ActiveLearner(
        logreg(), batch_size=6, n_rounds=0, oracle=oracle, random_state=5
    ).fit(X, np.full(len(y), -1))
    np.testing.assert_array_equal(
        asked[0], np.random.RandomState(5).permutation(len(X))[:6]
    )


def test_the_whole_run_is_unchanged_by_initial_strategy_random(blobs):
    X, y = blobs
    params = dict(batch_size=5, n_rounds=3, random_state=2)
    default = ActiveLearner(logreg(), "margin", **params).fit(X, y)
    random = ActiveLearner(logreg(), "margin", initial_strategy="random", **params)
    np.testing.assert_array_equal(
        random.fit(X, y).labeled_indices_, default.labeled_indices_
    )


@pytest.mark.parametrize(
    "strategy",
    [
        TypiClust(space="input", random_state=3),
        ProbCover(space="input", random_state=3),
        KCenterGreedy(space="input", random_state=3),
    ],
)
def test_initial_picks_are_the_strategys_own(blobs, strategy):
    X, y = blobs
    learner = ActiveLearner(
        logreg(), n_initial=8, n_rounds=1, initial_strategy=strategy, random_state=0
    ).fit(X, y)
    own = type(strategy)(**strategy.get_params()).fit(None, None).query(X, 8)
    np.testing.assert_array_equal(learner.labeled_indices_[:8], own)
    assert learner.history_["n_labeled"].tolist() == [8, 18]
    assert learner.initial_strategy_ is not strategy  # a fitted clone
    assert not hasattr(strategy, "random_state_")


def test_names_mean_the_input_space_and_are_seeded_by_the_learner(blobs):
    X, y = blobs
    runs = [
        ActiveLearner(
            logreg(),
            n_initial=6,
            n_rounds=0,
            initial_strategy="typiclust",
            random_state=1,
        ).fit(X, y)
        for _ in range(2)
    ]
    fitted = runs[0].initial_strategy_
    assert isinstance(fitted, TypiClust) and fitted.space == "input"
    assert isinstance(fitted.random_state, int)  # drawn from the learner's seed
    own = TypiClust(space="input", random_state=fitted.random_state)
    np.testing.assert_array_equal(
        runs[0].labeled_indices_, own.fit(None, None).query(X, 6)
    )
    np.testing.assert_array_equal(runs[0].labeled_indices_, runs[1].labeled_indices_)


def test_strategies_that_need_a_model_are_refused(blobs):
    X, y = blobs
    for initial in ("entropy", KCenterGreedy(), "badge"):
        with pytest.raises(ValueError, match="needs a trained model"):
            ActiveLearner(logreg(), initial_strategy=initial).fit(X, y)
    with pytest.raises(ValueError, match="Unknown strategy"):
        ActiveLearner(logreg(), initial_strategy="typiklust").fit(X, y)


def test_oracle_session_from_nothing_asks_the_strategys_picks(blobs):
    X, y = blobs
    asked = []

    def oracle(rows):
        asked.append(rows.copy())
        return y[rows]

    strategy = ProbCover(space="input", random_state=0)
    learner = ActiveLearner(
        logreg(),
        batch_size=5,
        n_rounds=1,
        oracle=oracle,
        initial_strategy=strategy,
        random_state=0,
    ).fit(X, np.full(len(y), -1))
    np.testing.assert_array_equal(
        asked[0], ProbCover(space="input", random_state=0).fit(None, None).query(X, 5)
    )
    assert len(learner.labeled_indices_) == 10


def test_interrupted_initial_set_resumes_with_the_same_picks(blobs, tmp_path):
    X, y = blobs
    X, y = X[:150], y[:150]
    path = tmp_path / "labels.db"
    params = dict(
        n_initial=8,
        batch_size=4,
        n_rounds=1,
        oracle_batch_size=1,
        initial_strategy="kcenter",
        random_state=0,
    )
    uninterrupted = []
    ActiveLearner(
        logreg(), oracle=lambda r: uninterrupted.extend(r) or y[r], **params
    ).fit(X, np.full(len(y), -1))

    asked = []

    def failing(rows):
        if len(asked) == 3:
            raise KeyboardInterrupt
        asked.extend(rows)
        return y[rows]

    with pytest.raises(KeyboardInterrupt):
        ActiveLearner(logreg(), oracle=failing, label_store=path, **params).fit(
            X, np.full(len(y), -1)
        )
    ActiveLearner.resume(X, None, path, oracle=lambda r: asked.extend(r) or y[r])
    assert asked == uninterrupted


def test_query_proposes_the_initial_set_before_any_label(blobs):
    X, y = blobs
    learner = ActiveLearner(
        logreg(), "margin", initial_strategy=TypiClust(space="input", random_state=4)
    ).fit(X, np.full(len(y), -1))
    assert learner.estimator_ is None and len(learner.labeled_indices_) == 0
    assert len(learner.history_) == 0
    with pytest.raises(NotFittedError, match="no model yet.*teach"):
        learner.predict(X)
    picks = learner.query(X, 12)
    own = TypiClust(space="input", random_state=4).fit(None, None).query(X, 12)
    np.testing.assert_array_equal(picks, own)
    learner.teach(X[picks], y[picks])
    assert learner.history_["round"].tolist() == [0]
    np.testing.assert_array_equal(learner.labeled_indices_, picks)
    np.testing.assert_array_equal(learner.classes_, np.unique(y[picks]))
    reference = logreg().fit(X[picks], y[picks])
    np.testing.assert_allclose(learner.predict_proba(X), reference.predict_proba(X))
    # Then the learner's own strategy takes over, never proposing labeled rows.
    more = learner.query(X, 5)
    assert not np.isin(more, picks).any()
    np.testing.assert_array_equal(
        more, learner.strategy_.query(X, 5, np.setdiff1d(np.arange(len(X)), picks))
    )


def test_random_query_before_any_label_and_none_explains(blobs):
    X, y = blobs
    learner = ActiveLearner(logreg(), initial_strategy="random", random_state=0)
    picks = learner.fit(X, np.full(len(y), -1)).query(X, 10)
    assert isinstance(learner.initial_strategy_, RandomSampling)
    assert len(np.unique(picks)) == 10
    with pytest.raises(ValueError, match="nothing to train on.*initial_strategy"):
        ActiveLearner(logreg()).fit(X, np.full(len(y), -1))


def test_initial_strategy_params_are_settable(blobs):
    learner = ActiveLearner(initial_strategy="typiclust")
    learner.set_params(initial_strategy__n_neighbors=5)
    assert isinstance(learner.initial_strategy, TypiClust)
    assert learner.initial_strategy.get_params()["space"] == "input"
    assert learner.get_params()["initial_strategy__n_neighbors"] == 5
    with pytest.raises(ValueError, match="RandomSampling"):
        ActiveLearner(initial_strategy="random").set_params(
            initial_strategy__random_state=0
        )
