"""TypiClust against a brute-force reference (full distance matrix, plain loop)."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA

from skal.strategies import TypiClust


def brute_force_typiclust(labeled, pool, n, seed, n_neighbors=20, min_size=5):
    points = np.vstack([labeled, pool])
    n_labeled = len(labeled)
    n_clusters = min(n_labeled + n, 500, len(points))
    kmeans_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max)
    # The reference code: full k-means up to 50 clusters, mini-batch above.
    kmeans = KMeans if n_clusters <= 50 else MiniBatchKMeans
    clusters = kmeans(n_clusters, n_init=1, random_state=kmeans_seed).fit_predict(
        points
    )
    taken = set(range(n_labeled))
    covered = {c: int(np.sum(clusters[:n_labeled] == c)) for c in range(n_clusters)}
    sizes = {c: int(np.sum(clusters == c)) for c in range(n_clusters)}
    picks = []
    while len(picks) < n:
        eligible = [c for c in range(n_clusters) if sizes[c] > min_size]
        cluster = min(eligible, key=lambda c: (covered[c], -sizes[c], c))
        members = np.flatnonzero(clusters == cluster)
        sq = cdist(points[members], points[members], "sqeuclidean")
        k = max(1, min(n_neighbors, len(members) // 2))
        nearest = np.sort(sq, axis=1)[:, 1 : k + 1]  # skip the point itself
        typicality = 1 / (nearest.mean(axis=1) + 1e-5)
        typicality[[m in taken for m in members]] = -np.inf
        best = int(members[np.argmax(typicality)])
        taken.add(best)
        covered[cluster] += 1
        picks.append(best - n_labeled)
    return picks


@pytest.mark.parametrize("n_labeled, n", [(0, 8), (12, 10), (30, 25)])
def test_typiclust_equals_brute_force(n_labeled, n):
    X, _ = make_blobs(400, n_features=6, centers=5, random_state=1)
    strategy = TypiClust(space="input", n_neighbors=7, random_state=3)
    labeled = X[:n_labeled]
    strategy.fit(
        labeled if n_labeled else None, np.zeros(n_labeled) if n_labeled else None
    )
    picks = strategy.query(X[n_labeled:], n)
    expected = brute_force_typiclust(labeled.reshape(-1, 6), X[n_labeled:], n, 3, 7)
    np.testing.assert_array_equal(picks, expected)
    assert len(set(picks)) == n


def test_typiclust_picks_dense_regions_first_and_needs_no_model():
    # A tight blob and a diffuse one: the first pick is the densest point of the
    # largest cluster, close to its center.
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 0.1, (150, 2)), rng.normal(5, 2.0, (60, 2))])
    picks = TypiClust(space="input", random_state=0).fit(None, None).query(X, 2)
    assert np.linalg.norm(X[picks[0]]) < 0.1
    assert TypiClust(space="input").needs_estimator is False
    assert TypiClust().needs_estimator is True


def test_typiclust_with_a_given_embedding_and_sparse_input(blobs):
    from scipy import sparse

    X, _ = blobs
    embedding = PCA(3).fit(X)
    picks = TypiClust(space=embedding, random_state=0).fit(None, None).query(X, 5)
    expected = brute_force_typiclust(np.empty((0, 3)), embedding.transform(X), 5, 0)
    np.testing.assert_array_equal(picks, expected)
    dense = TypiClust(space="input", random_state=0).fit(None, None).query(X, 5)
    sparse_picks = (
        TypiClust(space="input", random_state=0)
        .fit(None, None)
        .query(sparse.csr_matrix(X), 5)
    )
    np.testing.assert_array_equal(dense, sparse_picks)


def test_typiclust_takes_small_clusters_once_large_ones_are_used_up():
    # Two big clusters, everything else in tiny ones: asking for every pool row
    # must fall back to the small clusters (hypothesis found the empty fallback).
    X = np.vstack(
        [np.zeros((8, 2)), np.ones((8, 2)) * 5, np.arange(12).reshape(6, 2) * 20.0]
    )
    picks = TypiClust(space="input", random_state=0).fit(None, None).query(X, len(X))
    assert sorted(picks) == list(range(len(X)))
