"""The factored gradient mathematics against literal autograd (brute force)."""

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from skal import gradients
from skal._arrays import dense

from .conftest import tiny_mlp


def autograd_last_layer(net, X, labels=None, loss="label"):
    """Per-sample gradients of the output layer, one sample at a time (the slow way)."""
    module = net.module_.eval()
    layer = module.output_layer
    rows = []
    for i in range(len(X)):
        module.zero_grad()
        logits = module(torch.as_tensor(X[i : i + 1]))
        if loss == "entropy":
            log_p = torch.log_softmax(logits, 1)
            value = -(log_p.exp() * log_p).sum()
        else:
            target = (
                logits.argmax(1)
                if loss == "pseudo_label"
                else torch.tensor([labels[i]])
            )
            value = torch.nn.functional.cross_entropy(logits, target)
        value.backward()
        rows.append(
            torch.cat([layer.weight.grad.flatten(), layer.bias.grad]).numpy().copy()
        )
    return np.array(rows, dtype=np.float64)


def autograd_entropy_gradient_norm(module, row, norm):
    """Norm of one sample's entropy gradient over every parameter (autograd)."""
    module.zero_grad()
    log_p = torch.log_softmax(module(row), 1)
    (-(log_p.exp() * log_p).sum()).backward()
    tensor_norms = [p.grad.norm().item() for p in module.parameters()]
    if norm == "global":
        return np.sqrt(np.sum(np.square(tensor_norms)))
    return np.sum(tensor_norms)


def materialize(factors):
    """The N x C(D+1) embedding matrix, in the layout [W (C x D) row-major, b]."""
    a = factors.a.astype(np.float64)
    h = dense(factors.h).astype(np.float64)
    weight = np.einsum("nc,nd->ncd", a, h[:, :-1]).reshape(len(a), -1)
    return np.hstack([weight, a])


def materialize_discrepancy_problem(net, X_labeled, y_labeled, pool):
    """Materialized labeled-set gradients (true labels) and pool gradients (pseudo)."""
    labeled = gradients.last_layer_factors(net, X_labeled, loss="label", y=y_labeled)
    return materialize(labeled[0]), materialize(
        gradients.last_layer_factors(net, pool)[0]
    )


@pytest.mark.parametrize("loss", ["pseudo_label", "label", "entropy"])
def test_last_layer_factors_equal_autograd(loss, blobs, fitted_mlp):
    X, y = blobs
    X = X[:25]
    factors, proba = gradients.last_layer_factors(fitted_mlp, X, loss=loss, y=y[:25])
    expected = autograd_last_layer(fitted_mlp, X, labels=y[:25], loss=loss)
    np.testing.assert_allclose(materialize(factors), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        factors.sq_norms(), (expected**2).sum(1), rtol=1e-4, atol=1e-8
    )


def test_factor_algebra_equals_materialized(blobs, fitted_mlp):
    X, y = blobs
    factors, _ = gradients.last_layer_factors(fitted_mlp, X[:30])
    G = materialize(factors)
    M = factors.mean_matrix()
    # mean_matrix is the mean embedding, laid out as C x (D+1).
    np.testing.assert_allclose(
        np.hstack([M[:, :-1].ravel(), M[:, -1]]), G.mean(0), rtol=1e-5, atol=1e-7
    )
    vec_M = G.mean(0)
    np.testing.assert_allclose(
        factors.inner_with_matrix(M), G @ vec_M, rtol=1e-4, atol=1e-7
    )
    np.testing.assert_allclose(
        factors.sq_distances_to(M), ((G - vec_M) ** 2).sum(1), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        factors.sq_distances_to_sample(4),
        ((G - G[4]) ** 2).sum(1),
        rtol=1e-4,
        atol=1e-6,
    )


def literal_logreg_gradients(model, X, labels):
    """Autograd through a torch copy of a fitted LogisticRegression."""
    W = torch.tensor(model.coef_, requires_grad=True)
    b = torch.tensor(model.intercept_, requires_grad=True)
    rows = []
    for i in range(X.shape[0]):
        x = torch.tensor(
            np.asarray(X[i].todense() if sparse.issparse(X) else X[i]),
            dtype=torch.float64,
        ).reshape(1, -1)
        z = x @ W.T + b
        if W.shape[0] == 1:  # binary: sigmoid of one logit
            value = torch.nn.functional.binary_cross_entropy_with_logits(
                z[:, 0], torch.tensor([float(labels[i])])
            )
        else:
            value = torch.nn.functional.cross_entropy(z, torch.tensor([labels[i]]))
        gW, gb = torch.autograd.grad(value, (W, b))
        rows.append(torch.cat([gW.flatten(), gb]).numpy())
    return np.array(rows)


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_logistic_regression_factors(n_classes, sparse_input, blobs):
    X, y = blobs
    X, y = X.astype(np.float64), y % n_classes
    X_in = sparse.csr_matrix(X) if sparse_input else X
    model = LogisticRegression(max_iter=500).fit(X_in, y)
    factors, _ = gradients.last_layer_factors(model, X_in[:20], loss="label", y=y[:20])
    assert sparse.issparse(factors.h) == sparse_input
    expected = literal_logreg_gradients(model, X_in[:20], y[:20])
    np.testing.assert_allclose(materialize(factors), expected, rtol=1e-6, atol=1e-9)


def test_entropy_factors_of_a_binary_sigmoid_model(blobs):
    X, y = blobs
    X = X.astype(np.float64)
    model = LogisticRegression().fit(X, y % 2)
    factors, _ = gradients.last_layer_factors(model, X[:10], loss="entropy")
    W = torch.tensor(model.coef_, requires_grad=True)
    b = torch.tensor(model.intercept_, requires_grad=True)
    for i in range(10):
        p = torch.sigmoid(torch.tensor(X[i], dtype=torch.float64) @ W[0] + b[0])
        entropy = -(p * p.log() + (1 - p) * (1 - p).log())
        gW, gb = torch.autograd.grad(entropy, (W, b))
        np.testing.assert_allclose(
            materialize(factors.take([i]))[0],
            torch.cat([gW.flatten(), gb]).numpy(),
            rtol=1e-6,
            atol=1e-10,
        )


def test_default_gradient_chunks_fit_the_memory_budget(blobs, fitted_mlp, monkeypatch):
    X, _ = blobs
    n_values = sum(p.numel() for p in fitted_mlp.module_.parameters())
    monkeypatch.setattr(gradients, "GRADIENT_CHUNK_BYTES", 4 * n_values * 7)
    chunks = [rows for rows, _ in gradients.per_sample_gradients(fitted_mlp, X[:20])]
    assert chunks == [slice(0, 7), slice(7, 14), slice(14, 20)]  # 7 float32 copies
    monkeypatch.setattr(gradients, "GRADIENT_CHUNK_BYTES", 1)
    assert len(list(gradients.per_sample_gradients(fitted_mlp, X[:3]))) == 3


def test_per_sample_gradients_equal_autograd_loop(blobs, fitted_mlp):
    X, y = blobs
    module = fitted_mlp.module_
    labels = y[:9]
    chunks = list(
        gradients.per_sample_gradients(
            fitted_mlp, X[:9], loss="label", y=labels, chunk_size=4
        )
    )
    assert [c[0] for c in chunks] == [slice(0, 4), slice(4, 8), slice(8, 9)]
    for i in range(9):
        module.zero_grad()
        torch.nn.functional.cross_entropy(
            module(torch.as_tensor(X[i : i + 1])), torch.tensor([labels[i]])
        ).backward()
        rows, grads = chunks[i // 4]
        for name, param in module.named_parameters():
            np.testing.assert_allclose(
                grads[name][i % 4].numpy(), param.grad.numpy(), rtol=1e-4, atol=1e-7
            )


@pytest.mark.parametrize("norm", ["global", "per_tensor_sum"])
def test_per_sample_gradient_norms(norm, blobs, fitted_mlp):
    X, _ = blobs
    module = fitted_mlp.module_
    norms = gradients.per_sample_gradient_norms(
        fitted_mlp, X[:6], loss="entropy", norm=norm
    )
    for i in range(6):
        expected = autograd_entropy_gradient_norm(
            module, torch.as_tensor(X[i : i + 1]), norm
        )
        np.testing.assert_allclose(norms[i], expected, rtol=1e-4)


@pytest.mark.parametrize("norm", ["global", "per_tensor_sum"])
def test_per_sample_gradient_norms_of_sparse_rows(norm, sparse_text):
    """CSR rows go to the sparse first layer as they are (no densified chunk)."""
    X, y = sparse_text
    net = tiny_mlp().fit(X[:100], y[:100])
    module = net.module_
    assert module.accepts_sparse_input
    layouts = []
    hook = module.register_forward_pre_hook(
        lambda m, args: layouts.append(args[0].layout)
    )
    norms = gradients.per_sample_gradient_norms(
        net, X[100:106], loss="entropy", norm=norm, method="factored"
    )
    hook.remove()
    assert layouts == [torch.sparse_csr]
    for i in range(100, 106):  # brute force: one dense row at a time
        row = torch.as_tensor(X[i].toarray(), dtype=torch.float32)
        expected = autograd_entropy_gradient_norm(module, row, norm)
        np.testing.assert_allclose(norms[i - 100], expected, rtol=1e-4)


def test_bad_arguments(blobs, fitted_mlp):
    X, _ = blobs
    with pytest.raises(ValueError, match="loss must be one of"):
        gradients.logit_gradients(np.ones((2, 2)) / 2, np.zeros((2, 2)), "hinge")
    with pytest.raises(ValueError, match="needs the class indices"):
        gradients.logit_gradients(np.ones((2, 2)) / 2, np.zeros((2, 2)), "label")
    with pytest.raises(ValueError, match="Unknown parameter names"):
        next(gradients.per_sample_gradients(fitted_mlp, X[:2], parameters=["nope"]))
    with pytest.raises(ValueError, match="not among the model's classes"):
        gradients.last_layer_factors(fitted_mlp, X[:2], loss="label", y=[0, 9])
    with pytest.raises(ValueError, match="norm must be"):
        gradients.per_sample_gradient_norms(fitted_mlp, X[:2], norm="max")


@pytest.mark.parametrize(
    "loss", ["entropy", "pseudo_label", "label", "expected_cross_entropy"]
)
@pytest.mark.parametrize("norm", ["global", "per_tensor_sum"])
def test_factored_gradient_norms_equal_vmap(loss, norm, blobs, fitted_mlp):
    X, y = blobs
    kwargs = dict(loss=loss, norm=norm, y=y[:40] if loss == "label" else None)
    factored = gradients.per_sample_gradient_norms(
        fitted_mlp, X[:40], method="factored", chunk_size=16, **kwargs
    )
    vmapped = gradients.per_sample_gradient_norms(
        fitted_mlp, X[:40], method="vmap", **kwargs
    )
    np.testing.assert_allclose(factored, vmapped, rtol=1e-4)
    last = ["output_layer.weight", "output_layer.bias"]
    np.testing.assert_allclose(
        gradients.per_sample_gradient_norms(
            fitted_mlp, X[:40], parameters=last, method="factored", **kwargs
        ),
        gradients.per_sample_gradient_norms(
            fitted_mlp, X[:40], parameters=last, method="vmap", **kwargs
        ),
        rtol=1e-4,
    )


def test_factored_method_needs_linear_layers(blobs):
    X, y = blobs
    from skorch import NeuralNetClassifier
    from torch import nn

    class WithNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(10)
            self.output_layer = nn.Linear(10, 4)

        def forward(self, X):
            return self.output_layer(self.norm(X))

    net = NeuralNetClassifier(
        WithNorm, max_epochs=1, train_split=None, criterion=nn.CrossEntropyLoss
    ).fit(X, y)
    with pytest.raises(ValueError, match="factored"):
        gradients.per_sample_gradient_norms(net, X[:5], method="factored")
    auto = gradients.per_sample_gradient_norms(net, X[:5])  # falls back to vmap
    assert auto.shape == (5,) and np.all(auto > 0)
