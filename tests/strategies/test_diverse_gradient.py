"""The diversity-aware gradient-discrepancy strategies against brute force."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from skal import ActiveLearner, gradients
from skal.strategies import GradCosine, GradKMeans, WeightedSequentialGradDiscrepancy

from ..test_gradients import materialize


@pytest.fixture
def materialized(blobs, fitted_mlp):
    X, y = blobs
    X_l, y_l, pool = X[:30], y[:30], X[200:300]
    labeled = materialize(
        gradients.last_layer_factors(fitted_mlp, X_l, loss="label", y=y_l)[0]
    )
    candidates = materialize(gradients.last_layer_factors(fitted_mlp, pool)[0])
    return X_l, y_l, pool, labeled, candidates


@pytest.mark.parametrize("power", [0.0, 2.0])
def test_grad_kmeans_equals_weighted_d2_sampling(power, materialized, fitted_mlp):
    X_l, y_l, pool, labeled, G = materialized
    scores = np.linalg.norm(G - labeled.mean(0), axis=1)
    tilt = (scores / scores.max()) ** power
    rng = np.random.RandomState(4)
    picks = [int(np.argmax(scores))]
    while len(picks) < 12:
        d2 = ((G[:, None] - G[picks][None]) ** 2).sum(-1).min(1)
        picks.append(int(rng.choice(len(G), p=d2 * tilt / (d2 * tilt).sum())))
    strategy = GradKMeans(score_power=power, random_state=4).fit(
        X_l, y_l, estimator=fitted_mlp
    )
    np.testing.assert_array_equal(strategy.query(pool, 12), picks)


@pytest.mark.parametrize("diversity", [0.0, 0.7])
def test_grad_cos_equals_literal_greedy(diversity, materialized, fitted_mlp):
    X_l, y_l, pool, labeled, G = materialized
    relevance = np.linalg.norm(G - labeled.mean(0), axis=1)
    relevance /= relevance.max()
    unit = G / np.linalg.norm(G, axis=1, keepdims=True)
    picks = []
    for _ in range(10):
        penalty = (unit @ unit[picks].T).max(1) if picks else np.zeros(len(G))
        objective = relevance - diversity * penalty
        objective[picks] = -np.inf
        picks.append(int(np.argmax(objective)))
    strategy = GradCosine(diversity=diversity).fit(X_l, y_l, estimator=fitted_mlp)
    np.testing.assert_array_equal(strategy.query(pool, 10), picks)


@pytest.mark.parametrize("weight", [1.0, 10.0])
def test_grad_seq_div_equals_weighted_reference(weight, materialized, fitted_mlp):
    X_l, y_l, pool, labeled, G = materialized
    total, count, picks = labeled.sum(0), len(labeled), []
    for _ in range(10):
        distances = np.linalg.norm(G - total / count, axis=1)
        distances[picks] = -np.inf
        picks.append(int(np.argmax(distances)))
        total, count = total + weight * G[picks[-1]], count + weight
    strategy = WeightedSequentialGradDiscrepancy(fold_weight=weight).fit(
        X_l, y_l, estimator=fitted_mlp
    )
    np.testing.assert_array_equal(strategy.query(pool, 10), picks)


def test_hyperparameters_are_grid_searchable(blobs):
    X, y = blobs
    search = GridSearchCV(
        ActiveLearner(
            LogisticRegression(),
            GradCosine(),
            batch_size=10,
            n_rounds=2,
            random_state=0,
        ),
        {"strategy__diversity": [0.0, 1.0]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["strategy__diversity"] in (0.0, 1.0)
    assert clone(GradKMeans(score_power=3)).get_params()["score_power"] == 3
