"""ProbCover against a brute-force reference (full distance matrix, plain loop)."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import make_blobs

from skal.strategies import ProbCover
from skal.strategies.probcover import purest_radius


def brute_force_probcover(labeled, pool, n, delta):
    points = np.vstack([labeled, pool])
    n_labeled = len(labeled)
    balls = cdist(points, points) <= delta
    uncovered = ~balls[:n_labeled].any(axis=0)
    available = np.arange(len(points)) >= n_labeled
    picks = []
    for _ in range(n):
        degree = (balls[:, uncovered]).sum(axis=1)
        degree[~available] = -1
        best = int(np.argmax(degree))
        assert degree[best] > 0  # the test data never runs out of coverage
        picks.append(best - n_labeled)
        available[best] = False
        uncovered &= ~balls[best]
    return picks


@pytest.mark.parametrize("n_labeled", [0, 5, 40])
def test_probcover_equals_brute_force(n_labeled):
    X, _ = make_blobs(300, n_features=4, centers=6, cluster_std=2.0, random_state=2)
    strategy = ProbCover(delta=1.2, space="input", random_state=0)
    labeled = X[:n_labeled]
    strategy.fit(
        labeled if n_labeled else None, np.zeros(n_labeled) if n_labeled else None
    )
    picks = strategy.query(X[n_labeled:], 15)
    expected = brute_force_probcover(labeled.reshape(-1, 4), X[n_labeled:], 15, 1.2)
    np.testing.assert_array_equal(picks, expected)


def test_probcover_draws_at_random_once_all_is_covered():
    X, _ = make_blobs(60, n_features=2, centers=2, random_state=0)
    picks = (
        ProbCover(delta=100.0, space="input", random_state=0)
        .fit(None, None)
        .query(X, 5)
    )
    assert len(set(picks)) == 5  # one ball covers all; the rest are random draws


def purity(points, clusters, radius):
    balls = cdist(points, points) <= radius
    same = clusters[:, None] == clusters[None, :]
    return np.mean(~(balls & ~same).any(axis=1))


def test_purest_radius_is_the_largest_pure_enough_radius():
    X, y = make_blobs(250, n_features=3, centers=4, cluster_std=1.5, random_state=4)
    radius = purest_radius(X, y, 0.9, np.random.RandomState(0))
    assert purity(X, y, radius) >= 0.9
    # Purity only drops where a ball reaches a point of another cluster: the
    # next such distance above the radius is not pure enough.
    between = cdist(X, X)[y[:, None] != y[None, :]]
    next_radius = np.min(between[between > radius])
    assert purity(X, y, next_radius) < 0.9


def test_auto_delta_uses_the_estimator_classes(blobs, fitted_logreg):
    X, y = blobs
    strategy = ProbCover(space="input", random_state=0).fit(
        X[:20], y[:20], estimator=fitted_logreg
    )
    picks = strategy.query(X[20:120], 6)
    assert len(set(picks)) == 6 and strategy.delta_ > 0
