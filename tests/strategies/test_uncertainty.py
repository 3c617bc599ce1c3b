import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, RidgeClassifier

from skal.strategies import (
    Entropy,
    LeastConfidence,
    Margin,
    RandomSampling,
    available_strategies,
    get_strategy,
)

from ..conftest import tiny_mlp


def brute_force_uncertainty(name, proba):
    """The textbook formulas, one row at a time."""
    scores = []
    for p in proba:
        if name == "entropy":
            scores.append(-sum(pk * np.log(pk) for pk in p if pk > 0))
        elif name == "margin":
            first, second = sorted(p, reverse=True)[:2]
            scores.append(1 - (first - second))
        else:
            scores.append(1 - max(p))
    return np.array(scores)


@pytest.mark.parametrize("name", ["entropy", "margin", "least_confidence"])
@pytest.mark.parametrize("model", ["mlp", "logreg"])
def test_scores_match_textbook_formula(name, model, blobs):
    X, y = blobs
    estimator = tiny_mlp() if model == "mlp" else LogisticRegression(max_iter=500)
    estimator.fit(X[:100], y[:100])
    strategy = get_strategy(name).fit(X[:100], y[:100], estimator=estimator)
    pool = X[100:]
    expected = brute_force_uncertainty(
        name, estimator.predict_proba(pool).astype(float)
    )
    np.testing.assert_allclose(strategy.score(pool), expected, rtol=1e-5, atol=1e-6)
    picked = strategy.query(pool, 7)
    np.testing.assert_array_equal(picked, np.argsort(-expected, kind="stable")[:7])


def test_sparse_pool_gives_same_scores_as_dense(sparse_text):
    X, y = sparse_text
    net = tiny_mlp().fit(X[:150], y[:150])
    strategy = Entropy().fit(X[:150], y[:150], estimator=net)
    np.testing.assert_allclose(
        strategy.score(X[150:]), strategy.score(X[150:].toarray()), rtol=1e-5
    )


def test_random_sampling_is_uniform_and_reproducible(blobs):
    X, y = blobs
    first = RandomSampling(random_state=3).fit(X[:10], y[:10]).query(X, 50)
    again = RandomSampling(random_state=3).fit(X[:10], y[:10]).query(X, 50)
    np.testing.assert_array_equal(first, again)
    assert len(set(first)) == 50
    # Every point is equally likely: counts over many draws are flat.
    strategy = RandomSampling(random_state=0).fit(None, None)
    counts = np.bincount(
        np.concatenate([strategy.query(X[:20], 5) for _ in range(2000)])
    )
    assert counts.min() > 0.8 * 500 and counts.max() < 1.2 * 500


def test_random_sampling_needs_no_estimator(blobs):
    X, _ = blobs
    assert len(RandomSampling(random_state=0).fit(None, None).query(X, 3)) == 3


def test_margin_on_binary_and_single_column():
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    np.testing.assert_allclose(Margin.uncertainty(proba), [1.0, 0.2, 0.0])
    np.testing.assert_allclose(Margin.uncertainty(np.ones((2, 1))), [0.0, 0.0])
    np.testing.assert_allclose(LeastConfidence.uncertainty(proba), [0.5, 0.1, 0.0])


def test_estimator_without_predict_proba_is_rejected(blobs):
    X, y = blobs
    svc = RidgeClassifier().fit(X[:50], y[:50])
    with pytest.raises(TypeError, match="predict_proba"):
        Entropy().fit(X[:50], y[:50], estimator=svc)


def test_registry():
    assert {"random", "entropy", "margin", "least_confidence"} <= set(
        available_strategies()
    )
    assert isinstance(get_strategy("random", random_state=1), RandomSampling)
    assert get_strategy("random", random_state=1).random_state == 1
    with pytest.raises(ValueError, match="Unknown strategy 'nope'.*entropy"):
        get_strategy("nope")
