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


def test_learning_loss_ranks_by_predicted_loss(trained_with_module):
    net, X, y = trained_with_module
    strategy = LearningLoss().fit(X[:150], y[:150], estimator=net)
    predicted = net.predict_loss(X[150:])
    np.testing.assert_allclose(strategy.score(X[150:]), predicted, rtol=1e-6)
    np.testing.assert_array_equal(
        strategy.query(X[150:], 7), np.argsort(-predicted, kind="stable")[:7]
    )


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
