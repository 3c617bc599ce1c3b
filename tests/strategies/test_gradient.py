"""Gradient strategies against the papers' formulas taken literally (autograd)."""

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from skal import ActiveLearner, gradients
from skal.strategies import (
    EGL,
    EntropyGradNorm,
    ExpectedGradNorm,
    GradDiscrepancy,
    SequentialGradDiscrepancy,
)

from ..conftest import tiny_mlp
from ..test_gradients import materialize, materialize_discrepancy_problem


def mean_loss_gradient(module, X, targets, params):
    """grad of f(S) = mean cross-entropy over S, w.r.t. ``params`` (flattened)."""
    module.zero_grad()
    logits = module(torch.as_tensor(X))
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(targets))
    grads = torch.autograd.grad(loss, params)
    return torch.cat([g.flatten() for g in grads]).double().numpy()


def literal_grad_scores(net, X_labeled, y_labeled, X_pool, last_layer=True):
    """Eq. 11: || grad f(D_L + {(x, y_hat)}) - grad f({(x, y_hat)}) ||, per candidate."""
    module = net.module_.eval()
    params = (
        list(module.output_layer.parameters())
        if last_layer
        else list(module.parameters())
    )
    with torch.no_grad():
        pseudo = module(torch.as_tensor(X_pool)).argmax(1).numpy()
    scores = []
    for i in range(len(X_pool)):
        x, y_hat = X_pool[i : i + 1], pseudo[i : i + 1]
        union = mean_loss_gradient(
            module,
            np.vstack([X_labeled, x]),
            np.concatenate([y_labeled, y_hat]),
            params,
        )
        single = mean_loss_gradient(module, x, y_hat, params)
        scores.append(np.linalg.norm(union - single))
    return np.array(scores)


@pytest.mark.parametrize("last_layer", [True, False])
def test_grad_equals_set_to_point_formula(last_layer, blobs, fitted_mlp):
    X, y = blobs
    X_l, y_l, pool = X[:40], y[:40], X[200:230]
    strategy = GradDiscrepancy(last_layer=last_layer).fit(
        X_l, y_l, estimator=fitted_mlp
    )
    expected = literal_grad_scores(fitted_mlp, X_l, y_l, pool, last_layer)
    np.testing.assert_allclose(strategy.score(pool), expected, rtol=2e-4, atol=1e-6)
    np.testing.assert_array_equal(
        strategy.query(pool, 8), np.argsort(-expected, kind="stable")[:8]
    )


def test_grad_reference_mini_batch(blobs, fitted_mlp):
    X, y = blobs
    strategy = GradDiscrepancy(reference_batch_size=10, random_state=0).fit(
        X[:40], y[:40], estimator=fitted_mlp
    )
    rows = np.sort(np.random.RandomState(0).choice(40, 10, replace=False))
    full = gradients.last_layer_factors(
        fitted_mlp, X[:40][rows], loss="label", y=y[:40][rows]
    )[0]
    np.testing.assert_allclose(
        strategy.reference_gradient_, full.mean_matrix(), rtol=1e-6
    )
    assert strategy.n_labeled_ == 40


def test_grad_with_logistic_regression_on_sparse_tfidf(sparse_text):
    X, y = sparse_text
    model = LogisticRegression(max_iter=300).fit(X[:100], y[:100])
    strategy = GradDiscrepancy().fit(X[:100], y[:100], estimator=model)
    labeled = gradients.last_layer_factors(model, X[:100], loss="label", y=y[:100])[0]
    pool = gradients.last_layer_factors(model, X[100:])[0]
    reference = materialize(labeled).mean(0)
    expected = 100 / 101 * np.linalg.norm(materialize(pool) - reference, axis=1)
    np.testing.assert_allclose(strategy.score(X[100:]), expected, rtol=1e-8)
    np.testing.assert_allclose(strategy.score(X[100:].toarray()), expected, rtol=1e-8)


def test_grad_seq_equals_literal_sequential_selection(blobs, fitted_mlp):
    X, y = blobs
    X_l, y_l, pool = X[:30], y[:30], X[200:260]
    labeled, candidates = materialize_discrepancy_problem(fitted_mlp, X_l, y_l, pool)
    reference, picks = list(labeled), []
    for _ in range(10):
        distances = np.linalg.norm(candidates - np.mean(reference, axis=0), axis=1)
        distances[picks] = -np.inf
        picks.append(int(np.argmax(distances)))
        reference.append(candidates[picks[-1]])
    strategy = SequentialGradDiscrepancy().fit(X_l, y_l, estimator=fitted_mlp)
    np.testing.assert_array_equal(strategy.query(pool, 10), picks)
    # Its first pick is grad's first pick; the batch differs (less redundant).
    assert (
        picks[0]
        == GradDiscrepancy().fit(X_l, y_l, estimator=fitted_mlp).query(pool, 1)[0]
    )
    assert "last_layer" not in SequentialGradDiscrepancy().get_params()


def test_egl_equals_expected_autograd_norm(blobs, fitted_mlp):
    X, y = blobs
    pool = X[:20]
    proba = fitted_mlp.predict_proba(pool).astype(np.float64)
    expected = np.zeros(len(pool))
    for label in range(4):
        from ..test_gradients import autograd_last_layer

        norms = np.linalg.norm(
            autograd_last_layer(fitted_mlp, pool, labels=np.full(20, label)), axis=1
        )
        expected += proba[:, label] * norms
    strategy = EGL().fit(X[:10], y[:10], estimator=fitted_mlp)
    np.testing.assert_allclose(strategy.score(pool), expected, rtol=1e-4)


def literal_egl_all_parameters(net, X):
    """sum_c p_c ||grad_theta CE(x, c)||, one sample and one class at a time."""
    module = net.module_.eval()
    params = list(module.parameters())
    scores = []
    for row in X:
        logits = module(torch.as_tensor(row[None]))
        proba = torch.softmax(logits, 1)[0].detach().double().numpy()
        score = 0.0
        for c in range(logits.shape[1]):
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor([c]))
            grads = torch.autograd.grad(loss, params, retain_graph=True)
            norm = np.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))
            score += proba[c] * norm
        scores.append(score)
    return np.array(scores)


def test_egl_over_all_parameters_equals_per_sample_autograd(blobs, fitted_mlp):
    X, y = blobs
    pool = X[:20]
    expected = literal_egl_all_parameters(fitted_mlp, pool)
    strategy = EGL(last_layer=False).fit(X[:10], y[:10], estimator=fitted_mlp)
    np.testing.assert_allclose(strategy.score(pool), expected, rtol=1e-4)
    np.testing.assert_array_equal(
        strategy.query(pool, 5), np.argsort(-expected, kind="stable")[:5]
    )


def literal_gradnorm(net, X, loss, norm, last_layer=False):
    module = net.module_.eval()
    params = (
        list(module.output_layer.parameters())
        if last_layer
        else list(module.parameters())
    )
    scores = []
    for i in range(len(X)):
        logits = module(torch.as_tensor(X[i : i + 1]))[0]
        p = torch.softmax(logits, -1)
        if loss == "expected":  # Eq. 6: sum_i P(y_i|x) CE(x, y_i), P in the graph
            value = sum(
                p[k]
                * torch.nn.functional.cross_entropy(logits[None], torch.tensor([k]))
                for k in range(len(p))
            )
        else:  # Eq. 7
            value = -(p * torch.log(p)).sum()
        tensor_norms = [g.norm().item() for g in torch.autograd.grad(value, params)]
        scores.append(
            np.sqrt(np.sum(np.square(tensor_norms)))
            if norm == "global"
            else np.sum(tensor_norms)
        )
    return np.array(scores)


@pytest.mark.parametrize("norm", ["global", "per_tensor_sum"])
@pytest.mark.parametrize("last_layer", [False, True])
def test_gradnorm_strategies_equal_papers_equations(
    norm, last_layer, blobs, fitted_mlp
):
    X, y = blobs
    pool = X[:15]
    entropy_scores = (
        EntropyGradNorm(last_layer=last_layer, norm=norm)
        .fit(X[:5], y[:5], estimator=fitted_mlp)
        .score(pool)
    )
    expected_scores = (
        ExpectedGradNorm(last_layer=last_layer, norm=norm)
        .fit(X[:5], y[:5], estimator=fitted_mlp)
        .score(pool)
    )
    np.testing.assert_allclose(
        entropy_scores,
        literal_gradnorm(fitted_mlp, pool, "entropy", norm, last_layer),
        rtol=1e-4,
    )
    np.testing.assert_allclose(
        expected_scores,
        literal_gradnorm(fitted_mlp, pool, "expected", norm, last_layer),
        rtol=1e-4,
    )
    # Eq. 6 with P in the graph is the entropy: the two rankings coincide.
    np.testing.assert_allclose(expected_scores, entropy_scores, rtol=1e-4)


def test_gradnorm_last_layer_closed_form_matches_torch_path(blobs, fitted_mlp):
    X, y = blobs
    for norm in ("global", "per_tensor_sum"):
        strategy = EntropyGradNorm(last_layer=True, norm=norm).fit(
            X[:5], y[:5], estimator=fitted_mlp
        )
        np.testing.assert_allclose(
            strategy._last_layer_closed_form(X[:30]), strategy.score(X[:30]), rtol=1e-4
        )


def test_detached_posterior_gradient_vanishes(blobs, fitted_mlp):
    """Why Eq. 6 is taken with P in the graph: with P constant the gradient is 0."""
    X, _ = blobs
    logits = fitted_mlp.module_(torch.as_tensor(X[:1]))[0]
    p = torch.softmax(logits, -1).detach()
    value = sum(
        p[k] * torch.nn.functional.cross_entropy(logits[None], torch.tensor([k]))
        for k in range(len(p))
    )
    grads = torch.autograd.grad(value, list(fitted_mlp.module_.parameters()))
    assert max(g.abs().max().item() for g in grads) < 1e-6


def test_gradient_strategies_in_active_learner_with_sparse_mlp(sparse_text):
    X, y = sparse_text
    for name in (
        "grad",
        "grad_seq",
        "egl",
        "entropy_gradnorm",
        "expected_gradnorm",
        "badge",
        "kcenter",
    ):
        learner = ActiveLearner(
            tiny_mlp(), name, batch_size=10, n_rounds=2, random_state=0
        ).fit(X, y)
        assert learner.history_["n_labeled"].tolist() == [10, 20, 30], name
        assert len(set(learner.labeled_indices_)) == 30


def test_errors(blobs, fitted_mlp):
    X, y = blobs
    logreg = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="needs the labeled set"):
        GradDiscrepancy().fit(None, None, estimator=fitted_mlp)
    with pytest.raises(TypeError, match="needs a torch network"):
        GradDiscrepancy(last_layer=False).fit(X[:5], y[:5], estimator=logreg)
    with pytest.raises(TypeError, match="needs a torch network"):
        EGL(last_layer=False).fit(X[:5], y[:5], estimator=logreg)
    with pytest.raises(ValueError, match="'norm' parameter of EntropyGradNorm must be"):
        EntropyGradNorm(norm="l1").fit(X[:5], y[:5], estimator=fitted_mlp)
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=2).fit(X, y)
    with pytest.raises(TypeError, match="no penultimate features"):
        GradDiscrepancy().fit(X[:5], y[:5], estimator=forest)
    assert sparse  # imported for the sparse tests above


def synthetic_pool_factors(n_rows, n_classes, n_features, signed, seed):
    """Pseudo-label factors ``a = p - e_y`` with ReLU-like (or signed) features."""
    rng = np.random.RandomState(seed)
    logits = 3 * rng.randn(n_rows, n_classes)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    a = p.copy()
    a[np.arange(n_rows), p.argmax(1)] -= 1
    h = rng.randn(n_rows, n_features) + rng.randn(n_classes, n_features)[p.argmax(1)]
    h = h if signed else np.maximum(h, 0)
    h = np.hstack([h, np.ones((n_rows, 1))]).astype(np.float32)
    return gradients.GradientFactors(a.astype(np.float32), h)


@pytest.mark.parametrize("signed", [False, True])
def test_grad_seq_pruned_picks_equal_the_materialized_sequential_loop(signed):
    from skal.strategies.gradient import _LazyDiscrepancy

    factors = synthetic_pool_factors(600, 5, 12, signed, seed=int(signed))
    labeled = synthetic_pool_factors(40, 5, 12, signed, seed=7)
    G, G_labeled = materialize(factors), materialize(labeled)
    reference, picks = list(G_labeled), []
    for _ in range(40):
        distances = np.linalg.norm(G - np.mean(reference, axis=0), axis=1)
        distances[picks] = -np.inf
        picks.append(int(np.argmax(distances)))
        reference.append(G[picks[-1]])
    state = _LazyDiscrepancy(factors, labeled.mean_matrix(), len(G_labeled), 40)
    assert [state.pick() for _ in range(40)] == picks
    # Every bound holds: key - width <= m (||g_x||^2 - 2 <g_x, mean>) <= key.
    m, rest = len(reference), np.setdiff1d(np.arange(600), picks)
    exact = m * (G**2).sum(1) - 2 * G @ np.sum(reference, axis=0)
    slack = 1e-5 * m * (G**2).sum(1).max()
    assert np.all(exact[rest] <= state.key[rest] + slack)
    assert np.all(exact[rest] >= state.key[rest] - state.width[rest] - slack)
    assert np.any(state.width[rest] > 0)  # some bounds are still deferred
    # The bounds did their work: most of the 600 x 39 products were never formed.
    assert state.n_updated < 0.25 * 600 * 39
