import numpy as np
import pytest
import torch
from scipy import sparse
from scipy.special import softmax
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNetClassifier
from torch import nn

from skal import config_context, embeddings

from .conftest import tiny_mlp


def test_forward_pass_equals_direct_module_calls(blobs, fitted_mlp):
    X, _ = blobs
    out = embeddings.forward_pass(fitted_mlp, X, chunk_size=37)
    module = fitted_mlp.module_.eval()
    with torch.no_grad():
        h = module.features(torch.from_numpy(X)).numpy()
        logits = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out.features, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.logits, logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        out.proba, fitted_mlp.predict_proba(X), rtol=1e-4, atol=1e-6
    )
    assert out.proba.dtype == np.float64
    assert module.training is False


def test_chunking_does_not_change_results_and_restores_train_mode(blobs, fitted_mlp):
    X, _ = blobs
    fitted_mlp.module_.train()
    whole = embeddings.forward_pass(fitted_mlp, X, chunk_size=10_000)
    assert fitted_mlp.module_.training
    with config_context(chunk_size=7):
        chunked = embeddings.forward_pass(fitted_mlp, X)
    np.testing.assert_allclose(chunked.features, whole.features, rtol=1e-6)
    np.testing.assert_allclose(chunked.proba, whole.proba, rtol=1e-6)


def test_sparse_pool_is_densified_chunk_by_chunk(sparse_text, monkeypatch):
    X, y = sparse_text
    net = tiny_mlp().fit(X, y)
    dense = embeddings.forward_pass(net, X.toarray())
    sizes = []
    original = sparse.csr_matrix.toarray
    monkeypatch.setattr(
        sparse.csr_matrix,
        "toarray",
        lambda self, *a, **k: sizes.append(self.shape[0]) or original(self, *a, **k),
    )
    out = embeddings.forward_pass(net, X, chunk_size=64)
    assert max(sizes, default=0) <= 64  # skal's MLP takes sparse chunks as they are
    np.testing.assert_allclose(out.features, dense.features, rtol=1e-5, atol=1e-6)


class PlainNet(nn.Module):
    """A skorch module with no skal conventions: output layer found by search."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 6), nn.Tanh())
        self.head = nn.Linear(6, 4)

    def forward(self, X):
        return torch.softmax(self.head(self.body(X)), dim=-1)


def test_any_skorch_net_ending_in_linear(blobs):
    X, y = blobs
    net = NeuralNetClassifier(PlainNet, max_epochs=2, train_split=None).fit(X, y)
    out = embeddings.forward_pass(net, X)
    with torch.no_grad():
        h = net.module_.body(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out.features, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.proba, net.predict_proba(X), rtol=1e-4, atol=1e-6)
    assert embeddings.output_layer(net.module_) is net.module_.head


def test_output_layer_search():
    seq = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    assert embeddings.output_layer(seq) is seq[2]
    with pytest.raises(TypeError, match="no final nn.Linear"):
        embeddings.output_layer(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="has 2 outputs but the classifier has 3"):
        embeddings.output_layer(seq, n_classes=3)


def test_linear_model_features_are_the_input(blobs, sparse_text):
    X, y = blobs
    model = LogisticRegression(max_iter=500).fit(X, y)
    out = embeddings.forward_pass(model, X)
    np.testing.assert_array_equal(out.features, X)
    np.testing.assert_allclose(out.proba, softmax(out.logits, axis=1), rtol=1e-6)
    Xs, ys = sparse_text
    out = embeddings.forward_pass(LogisticRegression().fit(Xs, ys), Xs)
    assert sparse.issparse(out.features)


def test_models_without_features_or_proba(blobs):
    X, y = blobs
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    np.testing.assert_allclose(
        embeddings.predict_proba(forest, X, chunk_size=50), forest.predict_proba(X)
    )
    with pytest.raises(TypeError, match="no penultimate features"):
        embeddings.forward_pass(forest, X)


def test_shared_forward_passes_compute_once_per_estimator_and_pool(
    blobs, fitted_mlp, forward_pass_calls
):
    X, _ = blobs
    pool, other = X[200:260], X[260:300]
    calls = forward_pass_calls
    with embeddings.shared_forward_passes():
        first = embeddings.forward_pass(fitted_mlp, pool)
        again = embeddings.forward_pass(fitted_mlp, pool)
        proba = embeddings.predict_proba(fitted_mlp, pool)
        embeddings.forward_pass(fitted_mlp, other)
        assert again is first and proba is first.proba
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool_thread:  # other threads do not share it
            elsewhere = pool_thread.submit(embeddings.forward_pass, fitted_mlp, pool)
            assert elsewhere.result() is not first
        with pytest.raises(ValueError, match="read-only"):
            first.features[0, 0] = 1.0  # shared results cannot be corrupted
    assert calls == [60, 40, 60]  # the block: pool, other; the other thread: pool
    embeddings.forward_pass(fitted_mlp, pool)  # outside the block: computed again
    assert calls == [60, 40, 60, 60]
    np.testing.assert_array_equal(
        embeddings.forward_pass(fitted_mlp, pool).proba, first.proba
    )


# --- issue 17, item 3: probabilities come from the net, not from its last Linear ----
class TemperatureNet(nn.Module):
    """Scores divided by a temperature after the last nn.Linear."""

    def __init__(self, temperature=3.0):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 8), nn.ReLU())
        self.output_layer = nn.Linear(8, 4)
        self.temperature = temperature

    def forward(self, X):
        return self.output_layer(self.body(X)) / self.temperature


class CosineNet(nn.Module):
    """A cosine-similarity head: no final nn.Linear at all."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 8), nn.ReLU())
        self.prototypes = nn.Parameter(torch.randn(4, 8))

    def forward(self, X):
        h = nn.functional.normalize(self.body(X), dim=1)
        return 10 * h @ nn.functional.normalize(self.prototypes, dim=1).T


def skorch_fit(module, X, y, **params):
    torch.manual_seed(0)
    defaults = dict(
        criterion=nn.CrossEntropyLoss,
        max_epochs=3,
        lr=0.1,
        train_split=None,
        verbose=0,
    )
    return NeuralNetClassifier(module, **{**defaults, **params}).fit(X, y)


def entropy_of(proba):
    return -(proba * np.log(proba)).sum(axis=1)


@pytest.mark.parametrize("module", [TemperatureNet, CosineNet])
def test_probability_strategies_use_the_nets_own_predict_proba(blobs, module):
    from skal.strategies import Entropy, Margin

    X, y = blobs
    net = skorch_fit(module, X[:200], y[:200])
    reference = net.predict_proba(X)  # what the user's net says
    proba = embeddings.predict_proba(net, X, chunk_size=64)
    np.testing.assert_allclose(proba, reference, rtol=1e-5, atol=1e-7)
    entropy = Entropy().fit(X[:200], y[:200], estimator=net).score(X)
    np.testing.assert_allclose(entropy, entropy_of(reference), rtol=1e-4, atol=1e-6)
    top2 = np.sort(reference, axis=1)[:, -2:]
    margin = Margin().fit(X[:200], y[:200], estimator=net).score(X)
    np.testing.assert_allclose(margin, 1 - (top2[:, 1] - top2[:, 0]), atol=1e-5)


def test_last_layer_strategies_refuse_a_net_that_changes_its_logits(blobs):
    from skal.strategies import BADGE

    X, y = blobs
    net = skorch_fit(TemperatureNet, X[:200], y[:200])
    with pytest.raises(TypeError, match="applies something after that layer"):
        embeddings.forward_pass(net, X)
    with pytest.raises(TypeError, match="only probabilities"):
        BADGE(random_state=0).fit(X[:200], y[:200], estimator=net).query(X, 5)
    # A temperature of 1 changes nothing: accepted, probabilities are the net's.
    same = skorch_fit(TemperatureNet(temperature=1.0), X[:200], y[:200])
    out = embeddings.forward_pass(same, X)
    np.testing.assert_allclose(out.proba, same.predict_proba(X), atol=1e-7)


def test_active_learner_with_a_custom_head(blobs):
    # The user's steps: ActiveLearner around a skorch net with a temperature.
    from skal import ActiveLearner

    X, y = blobs
    for module in (TemperatureNet, CosineNet):
        net = NeuralNetClassifier(
            module,
            criterion=nn.CrossEntropyLoss,
            max_epochs=2,
            train_split=None,
            verbose=0,
        )
        learner = ActiveLearner(net, "entropy", batch_size=10, n_rounds=2)
        assert learner.fit(X, y).history_["n_labeled"].tolist() == [10, 20, 30]
    with pytest.raises(TypeError, match="no final nn.Linear"):
        ActiveLearner(net, "badge", batch_size=10, n_rounds=1).fit(X, y)


def test_custom_predict_proba_is_called_and_checked(blobs):
    X, y = blobs

    class Sharpened(NeuralNetClassifier):
        def predict_proba(self, X):
            proba = super().predict_proba(X) ** 2
            return proba / proba.sum(axis=1, keepdims=True)

    torch.manual_seed(0)
    net = Sharpened(
        TemperatureNet(temperature=1.0),
        criterion=nn.CrossEntropyLoss,
        max_epochs=2,
        train_split=None,
        verbose=0,
    ).fit(X[:200], y[:200])
    np.testing.assert_allclose(
        embeddings.predict_proba(net, X, chunk_size=50), net.predict_proba(X)
    )
    with pytest.raises(TypeError, match="predict_proba differs"):
        embeddings.forward_pass(net, X)


def test_log_probabilities_are_refused(blobs):
    X, y = blobs
    module = nn.Sequential(nn.Linear(10, 4), nn.LogSoftmax(dim=1))
    net = skorch_fit(module, X[:200], y[:200], criterion=nn.NLLLoss)
    with pytest.raises(ValueError, match="predict_nonlinearity=torch.exp"):
        embeddings.predict_proba(net, X)
    net.set_params(predict_nonlinearity=torch.exp)
    np.testing.assert_allclose(
        embeddings.predict_proba(net, X), net.predict_proba(X), rtol=1e-6
    )
