"""BALD, MC-dropout entropy and variation ratios against explicit dropout passes."""

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from torch import nn

from skal import ActiveLearner, config_context
from skal.nets import MLPClassifier
from skal.strategies import BALD, MCDropoutEntropy, VariationRatios, top_n
from skal.strategies.bayesian import dropout_layers, mc_dropout_statistics

from ..conftest import tiny_mlp

T = 7
SEED = 5


class ResidualBatchNormNet(nn.Module):
    """Batch norm before dropout, and a skip connection around the dropout block
    (so the prefix shortcut cannot reproduce the forward pass and is not used)."""

    def __init__(self, n_features, n_classes, hidden_layer_sizes=(), dropout=0.2):
        super().__init__()
        self.hidden = nn.Sequential(
            nn.Linear(n_features, 12),
            nn.BatchNorm1d(12),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(12, 12),
        )
        self.skip = nn.Linear(n_features, 12)
        self.output_layer = nn.Linear(12, n_classes)

    def forward(self, X):
        return self.output_layer(self.hidden(X) + self.skip(X))


def sequential_net(n_features, n_classes, hidden_layer_sizes=(), dropout=0.2):
    return nn.Sequential(
        nn.Linear(n_features, 12),
        nn.BatchNorm1d(12),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(12, n_classes),
    )


def fitted_net(kind, X, y):
    if kind == "mlp":
        net = tiny_mlp(dropout=0.3)
    else:
        module = ResidualBatchNormNet if kind == "residual" else sequential_net
        net = tiny_mlp(module=module, dropout=0.3)
    return net.fit(X, y)


def explicit_passes(net, X, n_samples, seed, chunk_size):
    """``(T, N, C)`` probabilities: chunk by chunk, ``T`` full forward passes each,
    dropout on and everything else in eval mode, torch seeded per chunk ``k``
    with ``SeedSequence([seed, k])``."""
    module = net.module_
    module.eval()
    for layer in dropout_layers(module):
        layer.train()
    proba = np.empty((n_samples, len(X), len(net.classes_)))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for start in range(0, len(X), chunk_size):
            chunk = start // chunk_size
            torch.manual_seed(
                int(np.random.SeedSequence([seed, chunk]).generate_state(1)[0])
            )
            batch = torch.as_tensor(X[start : start + chunk_size])
            for t in range(n_samples):
                logits = module(batch).double().numpy()
                proba[t, start : start + chunk_size] = softmax(logits, axis=1)
    module.eval()
    return proba


def textbook_scores(proba):
    """BALD, max-entropy and variation ratios from the per-pass probabilities."""

    def entropy(p):
        return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=-1)

    mean = proba.mean(axis=0)
    votes = np.stack(
        [np.bincount(row, minlength=proba.shape[2]) for row in proba.argmax(2).T]
    )
    return {
        "bald": entropy(mean) - entropy(proba).mean(axis=0),
        "mc_entropy": entropy(mean),
        "variation_ratios": 1 - votes.max(axis=1) / len(proba),
    }


STRATEGIES = {
    "bald": BALD,
    "mc_entropy": MCDropoutEntropy,
    "variation_ratios": VariationRatios,
}


@pytest.mark.parametrize(
    ("kind", "chunk_size"),
    [("mlp", 1024), ("mlp", 37), ("residual", 37), ("sequential", 64)],
)
def test_scores_and_picks_equal_explicit_dropout_passes(kind, chunk_size, blobs):
    X, y = blobs
    net = fitted_net(kind, X[:100], y[:100])
    pool = X[100:300]
    torch_seed = np.random.RandomState(SEED).randint(np.iinfo(np.int32).max)
    expected = textbook_scores(explicit_passes(net, pool, T, torch_seed, chunk_size))
    assert expected["bald"].max() > 1e-3  # the passes differ
    with config_context(chunk_size=chunk_size):
        for name, cls in STRATEGIES.items():
            strategy = cls(n_samples=T, random_state=SEED).fit(
                X[:100], y[:100], estimator=net
            )
            np.testing.assert_allclose(
                strategy.score(pool), expected[name], rtol=1e-9, atol=1e-12
            )
            fresh = cls(n_samples=T, random_state=SEED).fit(
                X[:100], y[:100], estimator=net
            )
            np.testing.assert_array_equal(
                fresh.query(pool, 15), top_n(expected[name], 15)
            )


def test_prefix_runs_once_per_chunk_on_skal_mlp(blobs):
    X, y = blobs
    net = fitted_net("mlp", X[:100], y[:100])
    calls = {"first": 0, "output": 0}
    hooks = [
        net.module_.hidden[0].register_forward_hook(
            lambda *_: calls.__setitem__("first", calls["first"] + 1)
        ),
        net.module_.output_layer.register_forward_hook(
            lambda *_: calls.__setitem__("output", calls["output"] + 1)
        ),
    ]
    try:
        with config_context(chunk_size=100):
            mc_dropout_statistics(net, X[100:300], n_samples=T, random_state=0)
    finally:
        for hook in hooks:
            hook.remove()
    # Two chunks: one full pass and T - 1 tail passes each, plus on the first
    # chunk a check (one full pass and one tail pass, dropout off).
    assert calls == {"first": 2 + 1, "output": 2 * T + 2}


def test_seeding_is_reproducible_and_leaves_torch_rng_alone(blobs):
    X, y = blobs
    net = fitted_net("mlp", X[:100], y[:100])
    pool = X[100:200]
    state = torch.random.get_rng_state()
    first = mc_dropout_statistics(net, pool, n_samples=1, random_state=0).mean_proba
    again = mc_dropout_statistics(net, pool, n_samples=1, random_state=0).mean_proba
    other = mc_dropout_statistics(net, pool, n_samples=1, random_state=1).mean_proba
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3  # different masks
    # A fitted strategy draws a new seed for every query.
    strategy = BALD(n_samples=3, random_state=0).fit(X[:100], y[:100], estimator=net)
    assert not np.array_equal(strategy.score(pool), strategy.score(pool))


def test_batch_norm_stays_in_eval_mode_and_modes_are_restored(blobs):
    X, y = blobs
    net = fitted_net("residual", X[:100], y[:100])
    module = net.module_
    module.train()
    module.hidden[3].eval()  # an odd mix of modes, to be restored as it was
    modes = [m.training for m in module.modules()]
    norm = module.hidden[1]
    buffers = {k: v.clone() for k, v in norm.state_dict().items()}
    BALD(n_samples=T, random_state=0).fit(X[:100], y[:100], estimator=net).query(
        X[100:], 5
    )
    for key, value in norm.state_dict().items():
        assert torch.equal(value, buffers[key]), key
    assert [m.training for m in module.modules()] == modes


@pytest.mark.parametrize("cls", list(STRATEGIES.values()))
def test_clear_error_without_dropout(cls, blobs):
    X, y = blobs
    for estimator, message in [
        (
            tiny_mlp().fit(X[:50], y[:50]),
            r"has none with p > 0.*MLPClassifier\(dropout=0.2\)",
        ),
        (
            LogisticRegression(max_iter=300).fit(X[:50], y[:50]),
            r"LogisticRegression is not a skorch net.*MLPClassifier\(dropout=0.2\)",
        ),
    ]:
        strategy = cls().fit(X[:50], y[:50], estimator=estimator)
        with pytest.raises(TypeError, match=message):
            strategy.query(X[50:], 3)
    with pytest.raises(ValueError, match="'n_samples' parameter of .* must be an int"):
        cls(n_samples=0).fit(X[:50], y[:50], estimator=tiny_mlp().fit(X[:50], y[:50]))


def test_sparse_pool_equals_dense(sparse_text):
    X, y = sparse_text
    net = MLPClassifier(
        hidden_layer_sizes=(16,), dropout=0.2, max_epochs=3, random_state=0
    ).fit(X[:100], y[:100])
    scores = [
        BALD(n_samples=T, random_state=0)
        .fit(X[:100], y[:100], estimator=net)
        .score(pool)
        for pool in (X[100:], X[100:].toarray())
    ]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_runs_inside_active_learner(name, blobs):
    X, y = blobs
    learner = ActiveLearner(
        tiny_mlp(dropout=0.2), name, batch_size=5, n_rounds=2, random_state=0
    ).fit(X[:200], y[:200])
    assert learner.history_["n_labeled"].tolist() == [5, 10, 15]
    assert len(set(learner.labeled_indices_.tolist())) == 15
    again = ActiveLearner(
        tiny_mlp(dropout=0.2), name, batch_size=5, n_rounds=2, random_state=0
    ).fit(X[:200], y[:200])
    np.testing.assert_array_equal(learner.labeled_indices_, again.labeled_indices_)
