"""The loss-prediction module: ranking loss, joint training, that it learns."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.base import clone

from skal.nets import LossPrediction, LossPredictionModule
from skal.nets._loss_prediction import ranking_loss

from ..conftest import tiny_mlp


def test_ranking_loss_equals_literal_pairs():
    predicted = torch.tensor([0.3, 2.0, -1.0, 0.5, 1.5])
    target = torch.tensor([1.0, 0.2, 0.7, 3.0, 0.1])
    expected = []
    for i in range(2):  # pairs (0, 4) and (1, 3); the middle sample is left out
        j = 4 - i
        sign = 1.0 if target[i] - target[j] > 0 else -1.0
        expected.append(max(0.0, 1.0 - sign * float(predicted[i] - predicted[j])))
    assert float(ranking_loss(predicted, target)) == pytest.approx(np.mean(expected))
    assert float(ranking_loss(predicted[:1], target[:1])) == 0.0


def test_module_pools_feature_maps_and_takes_vectors():
    module = LossPredictionModule([3, 5], width=4)
    out = module([torch.randn(6, 3, 8, 8), torch.randn(6, 5)])
    assert out.shape == (6,)


@pytest.fixture(scope="module")
def trained(digits_module):
    X, y = digits_module
    net = tiny_mlp(
        hidden_layer_sizes=(64, 32), max_epochs=30, loss_prediction=LossPrediction()
    )
    return net.fit(X[:300], y[:300]), X, y


@pytest.fixture(scope="module")
def digits_module():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def test_the_module_learns_to_rank_losses(trained):
    net, X, y = trained
    predicted = net.predict_loss(X[1000:])
    proba = net.predict_proba(X[1000:])
    true = -np.log(proba[np.arange(len(proba)), y[1000:]] + 1e-12)
    correlation = spearmanr(predicted, true).statistic
    assert correlation > 0.4, correlation


def test_loss_module_is_trained_jointly_and_separately_stored(trained):
    net, _, _ = trained
    main = {id(p) for p in net.module_.parameters()}
    auxiliary = list(net.loss_module_.parameters())
    assert not main & {id(p) for p in auxiliary}
    optimized = {
        id(p) for group in net.optimizer_.param_groups for p in group["params"]
    }
    assert {id(p) for p in auxiliary} <= optimized
    assert net.loss_layers_ == ["hidden.1", "hidden.3"]


def test_detach_epoch_stops_gradient_into_the_main_network(digits_module):
    X, y = digits_module

    def trained(**settings):
        net = tiny_mlp(
            hidden_layer_sizes=(16,),
            max_epochs=3,
            loss_prediction=LossPrediction(**settings),
        )
        return net.fit(X[:100], y[:100]).predict_proba(X[:50])

    # Detached from epoch 0, the module's loss never reaches the main network:
    # it trains exactly as with the module's loss switched off.
    np.testing.assert_allclose(
        trained(weight=1000.0, detach_epoch=0),
        trained(weight=0.0),
        rtol=1e-5,
        atol=1e-6,
    )
    assert not np.allclose(trained(weight=1000.0), trained(weight=0.0), atol=1e-3)


def test_params_route_to_the_settings_and_errors(digits_module):
    X, y = digits_module
    net = tiny_mlp(loss_prediction=LossPrediction(margin=2.0))
    cloned = clone(net).set_params(loss_prediction__margin=0.5)
    assert cloned.loss_prediction.margin == 0.5 and net.loss_prediction.margin == 2.0
    with pytest.raises(ValueError, match="Unknown layers"):
        tiny_mlp(loss_prediction=LossPrediction(layers=["nope"])).fit(X[:20], y[:20])
    with pytest.raises(TypeError, match="without a loss-prediction module"):
        tiny_mlp().fit(X[:20], y[:20]).predict_loss(X[:5])
    with pytest.raises(ValueError, match="loss_prediction is None"):
        tiny_mlp().set_params(loss_prediction__margin=1.0)


@pytest.mark.parametrize(
    "detach_epoch, max_epochs, expected",
    [
        (0.6, 200, 120),
        (0.6, 30, 18),
        (0.5, 5, 3),
        (1.0, 4, 4),
        (7, 30, 7),
        (None, 30, None),
    ],
)
def test_first_detached_epoch_follows_learning_loss_schedule(
    detach_epoch, max_epochs, expected
):
    settings = LossPrediction(detach_epoch=detach_epoch)
    assert settings.first_detached_epoch(max_epochs) == expected


@pytest.mark.parametrize("bad", [0.0, 1.5, -1, "half", True])
def test_first_detached_epoch_rejects_bad_values(bad):
    with pytest.raises((TypeError, ValueError), match="detach_epoch"):
        LossPrediction(detach_epoch=bad).first_detached_epoch(10)


def test_default_detaches_at_sixty_percent_of_the_epochs(digits_module):
    X, y = digits_module

    def trained(**settings):
        net = tiny_mlp(
            hidden_layer_sizes=(16,),
            max_epochs=3,
            loss_prediction=LossPrediction(weight=5.0, **settings),
        )
        return net.fit(X[:100], y[:100]).predict_proba(X[:50])

    # 0.6 * 3 epochs: the features are detached from epoch 2 (0-based) on.
    default = trained()
    np.testing.assert_allclose(default, trained(detach_epoch=2), rtol=1e-5, atol=1e-6)
    assert not np.allclose(default, trained(detach_epoch=None), atol=1e-4)


def test_detach_schedule_restarts_with_each_warm_started_fit(digits_module):
    X, y = digits_module

    def continued(detach_epoch):
        net = tiny_mlp(
            hidden_layer_sizes=(16,),
            max_epochs=2,
            warm_start=True,
            loss_prediction=LossPrediction(weight=5.0, detach_epoch=detach_epoch),
        )
        net.fit(X[:100], y[:100])
        return net.fit(X[:100], y[:100]).predict_proba(X[:50])

    # Epoch 1 of the second fit is its own epoch 1, not epoch 3 of the net's life:
    # detach_epoch=1 and detach_epoch=3 differ (3 would never detach in either fit).
    assert not np.allclose(continued(1), continued(3), atol=1e-4)
    np.testing.assert_allclose(continued(3), continued(None), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("copy", ["pickle", "deepcopy"])
def test_a_copied_net_predicts_losses_from_its_own_activations(trained, copy):
    # skorch pickles module_ (with the feature hooks) apart from the net's other
    # attributes: the copy's hooks must still fill the copy's feature store.
    import copy as copying
    import pickle

    net, X, _ = trained
    copied = (
        pickle.loads(pickle.dumps(net)) if copy == "pickle" else copying.deepcopy(net)
    )
    expected = net.predict_loss(X[500:530])
    copied.predict_loss(X[:7])  # a different chunk first: no stale features
    np.testing.assert_allclose(copied.predict_loss(X[500:530]), expected, rtol=1e-6)
    np.testing.assert_allclose(
        copied.predict_loss(X[:7]), net.predict_loss(X[:7]), rtol=1e-6
    )
