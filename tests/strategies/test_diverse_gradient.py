"""grad_kmeans (diversity-aware gradient discrepancy) against brute force."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from skal import ActiveLearner
from skal.strategies import GradKMeans

from ..test_gradients import materialize_discrepancy_problem
from ..test_kmeanspp import d2_draw


@pytest.fixture
def materialized(blobs, fitted_mlp):
    X, y = blobs
    X_l, y_l, pool = X[:30], y[:30], X[200:300]
    labeled, candidates = materialize_discrepancy_problem(fitted_mlp, X_l, y_l, pool)
    return X_l, y_l, pool, labeled, candidates


@pytest.mark.parametrize(
    "power, factor", [(0.0, None), (2.0, None), (2.0, 3.0), (1.0, 1.0)]
)
def test_grad_kmeans_equals_weighted_d2_sampling(
    power, factor, materialized, fitted_mlp
):
    X_l, y_l, pool, labeled, G = materialized
    scores = np.linalg.norm(G - labeled.mean(0), axis=1)
    # Candidates: the ceil(factor * n) highest scores, by a full sort.
    m = len(G) if factor is None else int(np.ceil(factor * 12))
    candidates = np.sort(np.argsort(-scores, kind="stable")[:m])
    G, scores = G[candidates], scores[candidates]
    tilt = (scores / scores.max()) ** power
    rng = np.random.RandomState(4)
    picks = [int(np.argmax(scores))]
    while len(picks) < 12:
        d2 = ((G[:, None] - G[picks][None]) ** 2).sum(-1).min(1)
        picks.append(d2_draw(rng, d2 * tilt))
    strategy = GradKMeans(
        score_power=power, candidate_factor=factor, random_state=4
    ).fit(X_l, y_l, estimator=fitted_mlp)
    np.testing.assert_array_equal(strategy.query(pool, 12), candidates[picks])


def test_grad_kmeans_rejects_a_candidate_factor_below_one(blobs, fitted_mlp):
    X, y = blobs
    with pytest.raises(
        ValueError, match="'candidate_factor' parameter of GradKMeans must be"
    ):
        GradKMeans(candidate_factor=0.5).fit(X[:20], y[:20], estimator=fitted_mlp)


def test_hyperparameters_are_grid_searchable(blobs):
    X, y = blobs
    search = GridSearchCV(
        ActiveLearner(
            LogisticRegression(),
            GradKMeans(random_state=0),
            batch_size=10,
            n_rounds=2,
            random_state=0,
        ),
        {"strategy__score_power": [0.0, 4.0], "strategy__candidate_factor": [2, None]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["strategy__score_power"] in (0.0, 4.0)
    assert len(search.cv_results_["params"]) == 4
    assert clone(GradKMeans(score_power=3)).get_params()["score_power"] == 3
