"""The protocol every strategy shares: validation, errors, determinism."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skal import config_context
from skal.strategies import Entropy, available_strategies, get_strategy, top_n

from ..conftest import tiny_mlp


def fitted_strategy(name, X, y, estimator):
    params = (
        {"random_state": 0} if "random_state" in get_strategy(name).get_params() else {}
    )
    return get_strategy(name, **params).fit(X, y, estimator=estimator)


@pytest.mark.parametrize("name", available_strategies())
def test_query_returns_n_distinct_indices_for_every_input_type(
    name, blobs, fitted_universal_mlp
):
    X, y = blobs
    pool = X[200:260]
    strategy = fitted_strategy(name, X[:200], y[:200], fitted_universal_mlp)
    expected = strategy.query(pool, 10)
    for variant in (
        pool.astype(np.float64),
        pd.DataFrame(pool),
        sparse.csr_matrix(pool),
    ):
        picked = fitted_strategy(name, X[:200], y[:200], fitted_universal_mlp).query(
            variant, 10
        )
        np.testing.assert_array_equal(picked, expected)
    assert expected.dtype == np.int64
    assert len(set(expected.tolist())) == 10
    assert expected.min() >= 0 and expected.max() < len(pool)
    # The whole pool can be asked for.
    assert sorted(strategy.query(pool, len(pool))) == list(range(len(pool)))


@pytest.mark.parametrize("name", available_strategies())
def test_inputs_are_not_modified(name, blobs, fitted_universal_mlp):
    X, y = blobs
    X_labeled, y_labeled, pool = X[:200].copy(), y[:200].copy(), X[200:].copy()
    fitted_strategy(name, X_labeled, y_labeled, fitted_universal_mlp).query(pool, 5)
    np.testing.assert_array_equal(X_labeled, X[:200])
    np.testing.assert_array_equal(y_labeled, y[:200])
    np.testing.assert_array_equal(pool, X[200:])


@pytest.mark.parametrize(
    ("n", "error", "message"),
    [
        (0, ValueError, "at least 1"),
        (-3, ValueError, "at least 1"),
        (61, ValueError, "larger than the pool, which has only 60"),
        (2.5, TypeError, "integer"),
        (True, TypeError, "integer"),
    ],
)
def test_bad_n(n, error, message, blobs, fitted_universal_mlp):
    X, y = blobs
    strategy = Entropy().fit(X[:200], y[:200], estimator=fitted_universal_mlp)
    with pytest.raises(error, match=message):
        strategy.query(X[200:260], n)


def test_bad_pools(blobs, fitted_universal_mlp):
    X, y = blobs
    strategy = Entropy().fit(X[:200], y[:200], estimator=fitted_universal_mlp)
    with pytest.raises(ValueError, match="empty"):
        strategy.query(X[:0], 1)
    with_nan = X[200:220].copy()
    with_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        strategy.query(with_nan, 1)
    with_inf = X[200:220].copy()
    with_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        strategy.query(with_inf, 1)
    with pytest.raises(ValueError, match="has 9 features, but Entropy is expecting 10"):
        strategy.query(X[200:220, :9], 1)


def test_unfitted_estimator_and_strategy(blobs):
    X, y = blobs
    with pytest.raises(NotFittedError, match="not fitted"):
        Entropy().fit(X[:10], y[:10], estimator=LogisticRegression())
    with pytest.raises(ValueError, match="No estimator"):
        Entropy().fit(X[:10], y[:10])
    with pytest.raises(NotFittedError, match="call fit"):
        Entropy().query(X, 1)


def test_non_finite_model_output_is_an_error_not_a_ranking(blobs, fitted_universal_mlp):
    X, y = blobs
    broken = clone(fitted_universal_mlp).fit(X[:50], y[:50])
    with __import__("torch").no_grad():
        broken.module_.output_layer.weight.fill_(float("nan"))
    strategy = Entropy().fit(X[:50], y[:50], estimator=broken)
    with pytest.raises(FloatingPointError, match="NaN"):
        strategy.query(X[50:], 3)


def test_single_class_labeled_set_works(blobs):
    X, y = blobs
    net = tiny_mlp(classes=np.unique(y)).fit(X[:20], np.zeros(20, dtype=int))
    picked = Entropy().fit(X[:20], np.zeros(20, dtype=int), estimator=net).query(X, 4)
    assert len(set(picked)) == 4


def test_top_n_orders_by_score_then_index():
    scores = np.array([0.1, 0.5, 0.5, 0.9, 0.5, 0.0])
    np.testing.assert_array_equal(top_n(scores, 3), [3, 1, 2])
    np.testing.assert_array_equal(top_n(scores, 6), [3, 1, 2, 4, 0, 5])
    np.testing.assert_array_equal(top_n(np.zeros(10), 2), [0, 1])
    rng = np.random.RandomState(0)
    many = rng.randint(0, 5, size=1000).astype(float)
    np.testing.assert_array_equal(
        top_n(many, 100), np.argsort(-many, kind="stable")[:100]
    )


def test_strategies_clone_and_expose_params():
    for name in available_strategies():
        strategy = get_strategy(name)
        assert clone(strategy).get_params() == strategy.get_params()


def test_prepare_estimator_sets_up_what_a_strategy_is_defined_with():
    from skal.nets import LossPrediction
    from skal.strategies import prepare_estimator

    net = tiny_mlp()
    assert prepare_estimator(net, "entropy") is net
    assert prepare_estimator(net, "bald").dropout == 0.1
    assert isinstance(prepare_estimator(net, "lplgrad").loss_prediction, LossPrediction)
    assert (
        net.dropout == 0.0 and net.loss_prediction is None
    )  # the original is untouched
    assert prepare_estimator(tiny_mlp(dropout=0.3), "bald").dropout == 0.3
    logreg = LogisticRegression()
    assert prepare_estimator(logreg, "bald") is logreg  # no such parameter: unchanged


# --- candidates: who scores chunk by chunk (issue 14, item 3) ----------------------------
def recording_score_sizes(strategy):
    """Record the number of rows of every block ``_score`` is given."""
    sizes, score = [], strategy._score

    def recorded(X_pool):
        sizes.append(X_pool.shape[0])
        return score(X_pool)

    strategy._score = recorded
    return sizes


@pytest.mark.parametrize("name", ["grad", "qbc", "entropy", "random", "egl"])
def test_ranking_strategies_score_candidates_chunk_by_chunk(
    name, blobs, fitted_universal_mlp
):
    # grad and qbc take a random_state (used in fit only); the learner used to
    # guess from it that they could not be chunked and copied every candidate.
    X, y = blobs
    strategy = fitted_strategy(name, X[:100], y[:100], fitted_universal_mlp)
    candidates = np.arange(100, 400, 3)
    # Reference: one call on the copied candidate rows, then the top 9.
    reference = candidates[top_n(strategy.score(X[candidates]), 9)]
    if name == "random":  # uniform draws: refit to replay the same stream
        strategy = fitted_strategy(name, X[:100], y[:100], fitted_universal_mlp)
    sizes = recording_score_sizes(strategy)
    with config_context(chunk_size=7):
        picks = strategy.query(X, 9, candidates=candidates)
    assert max(sizes) <= 7 and sum(sizes) == len(candidates)
    np.testing.assert_array_equal(picks, reference)


@pytest.mark.parametrize("name", ["badge", "kcenter", "bald"])
def test_joint_and_mc_dropout_strategies_get_the_candidates_as_one_pool(
    name, blobs, fitted_universal_mlp
):
    X, y = blobs
    candidates = np.arange(100, 400, 3)
    strategy = fitted_strategy(name, X[:100], y[:100], fitted_universal_mlp)
    assert not strategy._ranks_in_chunks()
    with config_context(chunk_size=7):
        picks = strategy.query(X, 9, candidates=candidates)
    again = fitted_strategy(name, X[:100], y[:100], fitted_universal_mlp)
    with config_context(chunk_size=7):
        reference = candidates[again.query(X[candidates], 9)]
    np.testing.assert_array_equal(picks, reference)


def test_bad_candidates(blobs, fitted_logreg):
    X, y = blobs
    strategy = Entropy().fit(X[:100], y[:100], estimator=fitted_logreg)
    for candidates, message in [
        ([[1, 2]], "1-D array of row indices"),
        ([0.5, 1.5], "1-D array of row indices"),
        ([0, 400], "0 <= index < 400"),
        ([3, 1, 3], "must not repeat a row"),
    ]:
        with pytest.raises(ValueError, match=message):
            strategy.query(X, 1, candidates=candidates)
    with pytest.raises(ValueError, match="n=3"):
        strategy.query(X, 3, candidates=[5, 6])
