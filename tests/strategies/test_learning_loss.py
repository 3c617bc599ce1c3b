"""Learning Loss and LPLgrad against literal computations."""

import numpy as np
import pytest
import torch

from skal import ActiveLearner
from skal.nets import LossPrediction
from skal.strategies import LearningLoss, LPLgrad

from ..conftest import tiny_mlp


@pytest.fixture(scope="module")
def trained_with_module(request):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=300, n_features=10, n_informative=6, n_classes=4, random_state=0
    )
    X = X.astype(np.float32)
    net = tiny_mlp(max_epochs=10, loss_prediction=LossPrediction()).fit(
        X[:150], y[:150]
    )
    return net, X, y


def relu(x):
    return np.maximum(x, 0.0)


def literal_loss_module(loss_module, features):
    """Learning Loss's module written out: per feature, global average pooling then
    Linear + ReLU; the blocks concatenated; a final Linear to one number."""
    blocks = []
    for block, f in zip(loss_module.blocks, features):
        pooled = f.reshape(len(f), f.shape[1], -1).mean(axis=2)  # GAP (maps only)
        linear = block[0]
        W, b = (p.detach().double().numpy() for p in (linear.weight, linear.bias))
        blocks.append(relu(pooled @ W.T + b))
    W, b = (p.detach().double().numpy() for p in loss_module.output.parameters())
    return (np.concatenate(blocks, axis=1) @ W.T + b)[:, 0]


def literal_mlp_features(module, X):
    """The hidden ReLU outputs of skal's MLP, written out in float64."""
    features, h = [], X.astype(np.float64)
    for layer in module.hidden:
        if hasattr(layer, "weight"):
            W = layer.weight.detach().double().numpy()
            b = layer.bias.detach().double().numpy()
            # nn.Linear's weight is (out x in); SparseInputLinear stores it (in x out).
            h = relu(h @ (W.T if isinstance(layer, torch.nn.Linear) else W) + b)
            features.append(h)
    return features


def test_learning_loss_ranks_by_the_literal_loss_module(trained_with_module):
    net, X, y = trained_with_module
    assert net.loss_layers_ == ["hidden.1", "hidden.3"]  # the two hidden ReLUs
    expected = literal_loss_module(
        net.loss_module_, literal_mlp_features(net.module_, X[150:])
    )
    strategy = LearningLoss().fit(X[:150], y[:150], estimator=net)
    np.testing.assert_allclose(strategy.score(X[150:]), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        strategy.query(X[150:], 7), np.argsort(-expected, kind="stable")[:7]
    )


def test_learning_loss_pools_feature_maps_of_a_cnn():
    from torch import nn

    from skal.nets import CNNClassifier

    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (12, 28, 28, 1)).astype(np.uint8)
    y = np.arange(12) % 3
    net = CNNClassifier(
        nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2)),
        head=(16, 8),
        max_epochs=2,
        batch_size=4,
        random_state=0,
        loss_prediction=LossPrediction(
            layers=["backbone.1", "backbone.2", "head.1"], width=4
        ),
    ).fit(X, y)
    # The features the module reads (26 x 26 and 2 x 2 maps, a vector), by hooks.
    module, captured = net.module_.eval(), {}
    named = dict(module.named_modules())
    hooks = [
        named[name].register_forward_hook(
            lambda _m, _i, out, name=name: captured.update({name: out})
        )
        for name in net.loss_layers_
    ]
    with torch.no_grad():
        module(torch.as_tensor(X))
    for hook in hooks:
        hook.remove()
    features = [captured[name].double().numpy() for name in net.loss_layers_]
    assert [f.ndim for f in features] == [4, 4, 2]
    expected = literal_loss_module(net.loss_module_, features)
    scores = LearningLoss().fit(X, y, estimator=net).score(X)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_lplgrad_equals_per_sample_autograd_over_the_main_network(trained_with_module):
    net, X, y = trained_with_module
    scores = LPLgrad().fit(X[:150], y[:150], estimator=net).score(X[150:170])
    module = net.module_.eval()
    expected = []
    for row in X[150:170]:
        log_p = torch.log_softmax(module(torch.as_tensor(row[None])), 1)
        entropy = -(log_p.exp() * log_p).sum()
        grads = torch.autograd.grad(entropy, list(module.parameters()))
        expected.append(float(torch.sqrt(sum(g.pow(2).sum() for g in grads))))
    np.testing.assert_allclose(scores, expected, rtol=1e-4)


def test_clear_error_without_loss_module(blobs, fitted_mlp):
    X, y = blobs
    for strategy in (LearningLoss(), LPLgrad()):
        with pytest.raises(TypeError, match="loss-prediction module"):
            strategy.fit(X[:10], y[:10], estimator=fitted_mlp)


@pytest.mark.parametrize("name", ["learning_loss", "lplgrad"])
def test_in_active_learner_with_retraining(name, blobs):
    X, y = blobs
    learner = ActiveLearner(
        tiny_mlp(loss_prediction=LossPrediction()),
        name,
        batch_size=10,
        n_rounds=2,
        random_state=0,
    )
    learner.fit(X, y)
    assert learner.history_["n_labeled"].tolist() == [10, 20, 30]
    assert hasattr(learner.estimator_, "loss_module_")
