"""BADGE and K-center against brute-force references."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.linear_model import LogisticRegression

from skal.strategies import BADGE, KCenterGreedy

from ..test_gradients import autograd_last_layer


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
        centers.append(int(rng.choice(len(G), p=d2 / d2.sum())))
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
