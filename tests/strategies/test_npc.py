"""NPC against brute-force eigvalsh of the paper's Gram matrix."""

import numpy as np
import pytest
import torch

from skal import ActiveLearner, gradients
from skal.strategies import NPC
from skal.strategies.npc import npc_criterion

from ..conftest import tiny_mlp


def output_gradient_gram(net, X):
    """Paper 004's last-layer Gram matrix, built from autograd, class blocks traced."""
    module = net.module_.eval()
    layer = module.output_layer
    rows = []  # one row per (sample, output k): d z_k / d [W, b]
    for i in range(len(X)):
        logits = module(torch.as_tensor(X[i : i + 1]))[0]
        for k in range(len(logits)):
            gW, gb = torch.autograd.grad(
                logits[k], (layer.weight, layer.bias), retain_graph=True
            )
            rows.append(torch.cat([gW.flatten(), gb]).double().numpy())
    G = np.array(rows)
    C = len(net.classes_)
    full = G @ G.T  # (n C) x (n C)
    return full.reshape(len(X), C, len(X), C).trace(axis1=1, axis2=3)  # n x n


def features(net, X):
    return gradients._dense(gradients.last_layer_factors(net, X)[0].h).astype(float)


def test_criterion_equals_paper_when_the_gram_is_nonsingular(blobs):
    X, y = blobs
    net = tiny_mlp(hidden_layer_sizes=(32, 24)).fit(X, y)  # D + 1 = 25
    labeled, batch = X[:3], X[100:104]  # 7 rows: full row rank
    expected = np.linalg.eigvalsh(
        output_gradient_gram(net, np.vstack([labeled, batch]))
    )[0]
    assert expected > 1e-6
    value = npc_criterion(
        features(net, labeled), features(net, batch), len(net.classes_)
    )
    np.testing.assert_allclose(value, expected, rtol=1e-4)


def test_criterion_is_the_smallest_nonzero_eigenvalue_past_d_plus_one(blobs):
    X, y = blobs
    net = tiny_mlp(hidden_layer_sizes=(8,)).fit(X, y)  # D + 1 = 9
    labeled, batch = X[:10], X[100:105]  # 15 rows > 9: the paper's Gram is singular
    paper = np.linalg.eigvalsh(output_gradient_gram(net, np.vstack([labeled, batch])))
    assert abs(paper[0]) < 1e-5 * paper[-1]
    value = npc_criterion(
        features(net, labeled), features(net, batch), len(net.classes_)
    )
    # The 9 non-zero eigenvalues of C H H^T are those of C H^T H.
    np.testing.assert_allclose(value, paper[-9], rtol=1e-4)


@pytest.mark.parametrize("n_labeled", [4, 40])
def test_search_evaluates_every_candidate_exactly(n_labeled, blobs):
    X, y = blobs
    net = tiny_mlp(hidden_layer_sizes=(32, 24)).fit(X, y)  # D + 1 = 25
    strategy = NPC(n_candidates=25, random_state=0).fit(
        X[:n_labeled], y[:n_labeled], estimator=net
    )
    pool = X[200:]
    picks = strategy.query(pool, 5)
    rng = np.random.RandomState(0)
    batches = [rng.choice(len(pool), 5, replace=False) for _ in range(25)]
    h_l, h_pool = features(net, X[:n_labeled]), features(net, pool)
    rank = np.linalg.matrix_rank(np.vstack([h_l, h_pool]))
    values = [npc_criterion(h_l, h_pool[b], 4, rank=rank) for b in batches]
    assert max(values) > 1e-6 * np.abs(h_pool).max() ** 2  # a meaningful spread
    np.testing.assert_array_equal(picks, batches[int(np.argmax(values))])
    np.testing.assert_allclose(strategy.best_value_, max(values), rtol=1e-6)


@pytest.mark.parametrize("n_labeled", [3, 40])
def test_proposition_1_no_duplicates_while_distinct_batches_exist(n_labeled, blobs):
    X, y = blobs
    net = tiny_mlp(hidden_layer_sizes=(16, 12)).fit(X, y)
    unique = X[300:306]
    pool = np.vstack(
        [unique, unique, unique, X[:2]]
    )  # each row three times + 2 labeled rows
    strategy = NPC(n_candidates=200, random_state=1).fit(
        X[:n_labeled], y[:n_labeled], estimator=net
    )
    picks = strategy.query(pool, 4)
    chosen = {tuple(pool[i]) for i in picks}
    assert len(chosen) == 4
    assert not chosen & {tuple(row) for row in X[:n_labeled]}


def test_default_number_of_candidates_and_learner(blobs):
    X, y = blobs
    learner = ActiveLearner(
        tiny_mlp(), NPC(max_candidates=30), batch_size=5, n_rounds=2, random_state=0
    )
    learner.fit(X, y)
    assert learner.history_["n_labeled"].tolist() == [5, 10, 15]
    assert np.isfinite(learner.strategy_.best_value_)
