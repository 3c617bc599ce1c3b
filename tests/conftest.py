"""Shared fixtures: small data and tiny, fast networks."""

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.datasets import load_digits, make_classification
from sklearn.linear_model import LogisticRegression

from skal.nets import MLPClassifier

# Tiny networks run fastest on one thread, and pytest -n 2 already uses both cores.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def blobs():
    """400 x 10 dense float32, 4 classes."""
    X, y = make_classification(
        n_samples=400, n_features=10, n_informative=6, n_classes=4, random_state=0
    )
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="session")
def sparse_text():
    """A sparse TF-IDF-like matrix: 300 x 500 CSR, ~2% non-zeros, 3 classes."""
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, size=300)
    X = sparse.random(300, 500, density=0.02, format="csr", random_state=rng)
    # Make classes separable through a few class-specific features.
    X = X + sparse.csr_matrix((np.ones(300), (np.arange(300), y * 3)), shape=(300, 500))
    return sparse.csr_matrix(X, dtype=np.float64), y


def tiny_mlp(**params):
    """A small, fast, seeded MLP for tests."""
    defaults = dict(
        hidden_layer_sizes=(16, 8), max_epochs=5, batch_size=16, random_state=0
    )
    return MLPClassifier(**{**defaults, **params})


@pytest.fixture
def fitted_mlp(blobs):
    X, y = blobs
    return tiny_mlp().fit(X[:200], y[:200])


@pytest.fixture
def fitted_universal_mlp(blobs):
    """Like fitted_mlp, with dropout and a loss-prediction module: every strategy applies."""
    from skal.nets import LossPrediction

    X, y = blobs
    return tiny_mlp(dropout=0.2, loss_prediction=LossPrediction()).fit(X[:200], y[:200])


@pytest.fixture
def fitted_logreg(blobs):
    X, y = blobs
    return LogisticRegression(max_iter=500).fit(X[:200], y[:200])


@pytest.fixture
def forward_pass_calls(monkeypatch):
    """Rows of every network forward pass over a pool, in call order."""
    from skal import embeddings

    calls = []
    real = embeddings._net_forward_pass

    def counting(net, X, chunk_size):
        calls.append(len(X))
        return real(net, X, chunk_size)

    monkeypatch.setattr(embeddings, "_net_forward_pass", counting)
    return calls
