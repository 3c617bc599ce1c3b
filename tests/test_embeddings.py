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
