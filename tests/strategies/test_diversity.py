"""BADGE and K-center against brute-force references."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.linear_model import LogisticRegression

from skal.strategies import BADGE, KCenterGreedy
from skal.strategies.diversity import farthest_first

from ..test_gradients import autograd_last_layer
from ..test_kmeanspp import d2_draw


@pytest.mark.parametrize("include_bias", [False, True])
def test_badge_equals_kmeans_plus_plus_on_autograd_embeddings(
    include_bias, blobs, fitted_mlp
):
    X, y = blobs
    pool = X[200:300]
    # Per-sample autograd gradients under the pseudo-label, laid out [W, b].
    G = autograd_last_layer(fitted_mlp, pool, loss="pseudo_label")
    if not include_bias:  # the reference implementation's embedding: W only
        G = G[:, : -len(fitted_mlp.classes_)]
    picks = (
        BADGE(include_bias=include_bias, random_state=7)
        .fit(X[:50], y[:50], estimator=fitted_mlp)
        .query(pool, 15)
    )
    rng = np.random.RandomState(7)
    centers = [int(np.argmax((G**2).sum(1)))]
    while len(centers) < 15:
        d2 = cdist(G, G[centers], "sqeuclidean").min(1)
        centers.append(d2_draw(rng, d2))
    np.testing.assert_array_equal(picks, centers)


def test_badge_default_embedding_leaves_out_the_bias(blobs, fitted_mlp):
    # Different embeddings give different later draws under the same seed.
    X, y = blobs
    pool = X[200:400]
    picks = {
        bias: BADGE(include_bias=bias, random_state=3)
        .fit(X[:50], y[:50], estimator=fitted_mlp)
        .query(pool, 30)
        for bias in (False, True)
    }
    assert BADGE().include_bias is False
    assert list(picks[False]) != list(picks[True])


def test_badge_with_sparse_logistic_regression(sparse_text):
    X, y = sparse_text
    model = LogisticRegression(max_iter=300).fit(X[:100], y[:100])
    dense_picks = (
        BADGE(random_state=0)
        .fit(X[:100], y[:100], estimator=model)
        .query(X[100:].toarray(), 12)
    )
    sparse_picks = (
        BADGE(random_state=0).fit(X[:100], y[:100], estimator=model).query(X[100:], 12)
    )
    np.testing.assert_array_equal(dense_picks, sparse_picks)
    assert len(set(sparse_picks)) == 12


def brute_force_kcenter(points, labeled, n):
    nearest = (
        cdist(points, labeled).min(1) if len(labeled) else np.full(len(points), np.inf)
    )
    picks = []
    for _ in range(n):
        pick = int(np.argmax(nearest))
        picks.append(pick)
        nearest = np.minimum(nearest, cdist(points, points[pick : pick + 1]).ravel())
        nearest[picks] = -1
    return picks


@pytest.mark.parametrize("space", ["features", "input"])
def test_kcenter_equals_brute_force_greedy(space, blobs, fitted_mlp):
    X, y = blobs
    pool, labeled = X[200:350], X[:40]
    strategy = KCenterGreedy(space=space).fit(labeled, y[:40], estimator=fitted_mlp)
    if space == "features":
        points, reference = (
            fitted_mlp.module_.features(__import__("torch").as_tensor(a))
            .detach()
            .numpy()
            for a in (pool, labeled)
        )
    else:
        points, reference = pool, labeled
    np.testing.assert_array_equal(
        strategy.query(pool, 20),
        brute_force_kcenter(points.astype(float), reference.astype(float), 20),
    )


def test_kcenter_without_labeled_set_and_with_duplicates(blobs, fitted_mlp):
    X, _ = blobs
    pool = np.vstack([X[:5]] * 4)  # every row four times
    strategy = KCenterGreedy(space="input", random_state=0).fit(
        None, None, estimator=fitted_mlp
    )
    picks = strategy.query(pool, 8)
    assert len(set(picks)) == 8
    assert len({tuple(pool[i]) for i in picks[:5]}) == 5  # distinct rows first


def test_kcenter_bad_space(blobs, fitted_mlp):
    X, y = blobs
    with pytest.raises(ValueError, match="'space' parameter of KCenterGreedy must be"):
        KCenterGreedy(space="pixels").fit(X[:5], y[:5], estimator=fitted_mlp)


def _clustered(n_rows, n_dims, seed, rank=None):
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=4.0, size=(12, n_dims))
    points = centers[rng.randint(12, size=n_rows)] + rng.normal(size=(n_rows, n_dims))
    if rank is not None:  # points in a rank-`rank` subspace: residual norms ~ 0
        basis = np.linalg.qr(rng.normal(size=(n_dims, rank)))[0]
        points = points @ basis @ basis.T
    return points


@pytest.mark.parametrize(
    "n_dims, rank, dtype",
    [
        (80, None, np.float64),
        (80, None, np.float32),
        (80, 20, np.float64),
        (8, None, np.float64),
    ],
)
def test_farthest_first_prunes_yet_equals_the_plain_loop(n_dims, rank, dtype):
    # More dimensions than bound directions (80 > 32), points in a subspace
    # (residual norms ~ 0), fewer dimensions than directions, and float32 points.
    points = _clustered(2500, n_dims, seed=1, rank=rank).astype(dtype)
    labeled = points[:30].astype(np.float64)
    pool = points[30:]
    nearest = cdist(pool.astype(np.float64), labeled, "sqeuclidean").min(1)
    picks = farthest_first(pool, nearest, 60, np.random.RandomState(0))
    np.testing.assert_array_equal(
        picks, brute_force_kcenter(pool.astype(np.float64), labeled, 60)
    )


def test_farthest_first_on_sparse_points_and_duplicates():
    dense = np.vstack([_clustered(300, 50, seed=2)] * 2)  # every row twice
    dense[np.abs(dense) < 2.0] = 0.0
    from scipy import sparse

    picks = farthest_first(
        sparse.csr_matrix(dense), np.full(600, np.inf), 40, np.random.RandomState(3)
    )
    first = int(np.random.RandomState(3).randint(600))
    assert picks[0] == first
    # The plain loop from the same first pick (no labeled set).
    nearest = cdist(dense, dense[first : first + 1], "sqeuclidean").ravel()
    nearest[first] = -1
    expected = [first]
    for _ in range(39):
        pick = int(np.argmax(nearest))
        expected.append(pick)
        nearest = np.minimum(
            nearest, cdist(dense, dense[pick : pick + 1], "sqeuclidean").ravel()
        )
        nearest[expected] = -1
    np.testing.assert_array_equal(picks, expected)
    assert len(set(picks)) == 40
