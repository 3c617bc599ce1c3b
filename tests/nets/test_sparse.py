"""SparseInputLinear and LazyMomentumSGD against their dense, brute-force twins."""

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.base import clone
from skorch.callbacks import Callback, EpochScoring, LRScheduler
from skorch.dataset import ValidSplit
from torch import nn

from skal import embeddings
from skal.nets import MLPClassifier
from skal.nets._batches import BatchSlicer, csr_to_tensor
from skal.nets._sparse import LazyMomentumSGD, SparseInputLinear

N_FEATURES, N_OUT = 30, 5
NEVER, ONCE = 29, 28  # features never present, and present in one batch only


def random_csr(n_rows, n_features, density, seed):
    rng = np.random.RandomState(seed)
    return sparse.random(
        n_rows, n_features, density=density, format="csr", random_state=rng
    ).astype(np.float32)


def twin_layers(seed=0):
    """A SparseInputLinear and the nn.Linear drawn from the same seed."""
    torch.manual_seed(seed)
    layer = SparseInputLinear(N_FEATURES, N_OUT)
    torch.manual_seed(seed)
    return layer, nn.Linear(N_FEATURES, N_OUT)


def loss_of(out):
    # Nonlinear, so each step's gradient depends on the current weights.
    return ((torch.tanh(out) - 0.5) ** 2).sum()


def test_sparse_input_linear_matches_nn_linear():
    layer, linear = twin_layers()
    assert (layer.in_features, layer.out_features) == (N_FEATURES, N_OUT)
    # Same initial values as nn.Linear, stored transposed.
    assert torch.equal(layer.weight, linear.weight.t())
    assert torch.equal(layer.bias, linear.bias)
    X = random_csr(12, N_FEATURES, 0.2, seed=1).tolil()
    X[3] = 0  # an empty row gives the bias alone
    X = X.tocsr()
    dense = torch.from_numpy(X.toarray())
    expected = linear(dense)
    loss_of(expected).backward()
    for x in (csr_to_tensor(X), dense):
        layer.zero_grad()
        out = layer(x)
        torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
        loss_of(out).backward()
        assert layer.weight.grad.is_sparse == (x.layout == torch.sparse_csr)
        torch.testing.assert_close(
            layer.weight.grad.to_dense(), linear.weight.grad.t(), rtol=1e-5, atol=1e-6
        )
        torch.testing.assert_close(layer.bias.grad, linear.bias.grad)


def test_lazy_momentum_sgd_equals_torch_sgd_over_many_steps():
    layer, linear = twin_layers()
    lazy = LazyMomentumSGD(layer.parameters(), lr=0.1, momentum=0.9)
    dense = torch.optim.SGD(linear.parameters(), lr=0.1, momentum=0.9)
    initial = layer.weight.detach().clone()
    for step in range(80):
        X = random_csr(4, N_FEATURES, 0.15, seed=step).tolil()
        X[:, NEVER] = 0
        X[:, ONCE] = 0.7 if step == 5 else 0
        X = X.tocsr()
        X.eliminate_zeros()  # ONCE stays out of the batches but one
        if step == 40:  # a scheduler changing lr and momentum between steps
            for group in lazy.param_groups + dense.param_groups:
                group.update(lr=0.05, momentum=0.8)
        x = csr_to_tensor(X)
        lazy.catch_up(layer.weight, x.col_indices())
        lazy.zero_grad()
        loss_of(layer(x)).backward()
        lazy.step()
        dense.zero_grad()
        loss_of(linear(torch.from_numpy(X.toarray()))).backward()
        dense.step()
        if step in (20, 79):  # a flush mid-way must not change the trajectory
            lazy.flush()
            # Rounding differs (mu**k vs k products, gradient summation order):
            # ~1e-7 per step on O(1) values; atol covers entries near zero.
            torch.testing.assert_close(
                layer.weight, linear.weight.t(), rtol=1e-5, atol=1e-6
            )
            torch.testing.assert_close(layer.bias, linear.bias, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(
                lazy.state[layer.weight]["momentum_buffer"],
                dense.state[linear.weight]["momentum_buffer"].t(),
                rtol=1e-5,
                atol=1e-6,
            )
    assert torch.equal(layer.weight[NEVER], initial[NEVER])
    assert not torch.equal(layer.weight[ONCE], initial[ONCE])


def test_lazy_momentum_sgd_dense_gradients_are_torch_sgd_exactly():
    layer, linear = twin_layers()
    lazy = LazyMomentumSGD(layer.parameters(), lr=0.1, momentum=0.9)
    dense = torch.optim.SGD(linear.parameters(), lr=0.1, momentum=0.9)
    for step in range(10):
        x = torch.from_numpy(random_csr(4, N_FEATURES, 0.3, seed=step).toarray())
        for optimizer, module in ((lazy, layer), (dense, linear)):
            optimizer.zero_grad()
            loss_of(module(x)).backward()
            optimizer.step()
    torch.testing.assert_close(layer.weight, linear.weight.t(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(weight_decay=1e-4), "weight decay"),
        (dict(nesterov=True), "Nesterov"),
        (dict(dampening=0.1), "dampening"),
        (dict(momentum=1.0), "momentum"),
        (dict(lr=-1.0), "learning rate"),
    ],
)
def test_lazy_momentum_sgd_rejects_unsupported_settings(options, match):
    params = SparseInputLinear(3, 2).parameters()
    with pytest.raises(ValueError, match=match):
        LazyMomentumSGD(params, **{"lr": 0.1, "momentum": 0.9, **options})
    layer = SparseInputLinear(3, 2)
    groups = [{"params": [layer.weight], **options}, {"params": [layer.bias]}]
    with pytest.raises(ValueError, match=match):
        LazyMomentumSGD(groups, **{"lr": 0.1, "momentum": 0.9})


def sparse_data(n_rows=60, seed=0):
    X = random_csr(n_rows, N_FEATURES, 0.15, seed=seed).tolil()
    X[:, NEVER] = 0
    X = X.tocsr()
    y = np.random.RandomState(seed).randint(0, 3, n_rows)
    return X, y


def small_mlp(**params):
    defaults = dict(
        hidden_layer_sizes=(16, 8), max_epochs=4, batch_size=4, random_state=0
    )
    return MLPClassifier(**{**defaults, **params})


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"dropout": 0.3, "lr": 0.05},
        # lr changes at every step: each step first catches every row up.
        {"callbacks": [LRScheduler("ExponentialLR", gamma=0.99, step_every="batch")]},
    ],
    ids=["default", "dropout", "lr_schedule"],
)
def test_fit_on_csr_equals_fit_on_dense(params, monkeypatch):
    X, y = sparse_data()
    dense = small_mlp(**params).fit(X.toarray(), y)
    assert type(dense.optimizer_) is torch.optim.SGD
    densified = []
    original = sparse.csr_matrix.toarray
    monkeypatch.setattr(
        sparse.csr_matrix,
        "toarray",
        lambda self, *a, **k: densified.append(self.shape) or original(self, *a, **k),
    )
    lazy = small_mlp(**params).fit(X, y)
    proba = lazy.predict_proba(X)
    assert densified == []  # training and prediction never densify
    assert isinstance(lazy.optimizer_, LazyMomentumSGD)
    np.testing.assert_allclose(proba, dense.predict_proba(X), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(lazy.predict(X), dense.predict(X))
    # Flushed at the end of fit: the weights are the dense run's weights.
    torch.testing.assert_close(
        lazy.module_.hidden[0].weight,
        dense.module_.hidden[0].weight,
        rtol=1e-4,
        atol=1e-6,
    )


class FirstLayerAtEpochEnd(Callback):
    """Reads the first-layer weight after every epoch, as checkpoints do."""

    def initialize(self):
        self.weights_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.weights_.append(net.module_.hidden[0].weight.detach().clone())


def count_flushes(monkeypatch):
    calls = []
    original = LazyMomentumSGD.flush
    monkeypatch.setattr(
        LazyMomentumSGD, "flush", lambda self: calls.append(1) or original(self)
    )
    return calls


def test_default_callbacks_leave_rows_lazy_until_the_end_of_fit(monkeypatch):
    # skorch's default callbacks read only the history: one flush, at train end.
    X, y = sparse_data()
    flushes = count_flushes(monkeypatch)
    small_mlp(max_epochs=3).fit(X, y)
    assert len(flushes) == 1


@pytest.mark.parametrize(
    "make_params",
    [
        lambda: {"callbacks": [("weights", FirstLayerAtEpochEnd())]},
        lambda: {
            "callbacks": [
                EpochScoring(
                    "neg_log_loss", on_train=True, use_caching=False, name="nll"
                )
            ]
        },
        lambda: {"train_split": ValidSplit(4, stratified=True)},
    ],
    ids=["reads_weights", "scores_training_data", "validation"],
)
def test_weights_read_between_epochs_are_current(make_params):
    # Everything reading the weights between epochs sees what dense SGD trained.
    # (Fresh callbacks per net: skorch does not copy callback instances.)
    X, y = sparse_data(n_rows=200)
    lazy = small_mlp(**make_params()).fit(X, y)
    dense = small_mlp(**make_params()).fit(X.toarray(), y)
    assert isinstance(lazy.optimizer_, LazyMomentumSGD)
    keys = [k for k in ("train_loss", "valid_loss", "nll") if k in dense.history[-1]]
    assert len(keys) == (1 if "weights" in dict(lazy.callbacks_) else 2)
    for key in keys:
        np.testing.assert_allclose(
            lazy.history[:, key], dense.history[:, key], rtol=1e-6
        )
    if "weights" in dict(lazy.callbacks_):
        lazy_weights = dict(lazy.callbacks_)["weights"].weights_
        dense_weights = dict(dense.callbacks_)["weights"].weights_
        assert len(lazy_weights) == len(dense_weights) == 4
        for a, b in zip(lazy_weights, dense_weights):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_unsupported_optimizers_fall_back_to_dense_updates():
    X, y = sparse_data()
    reference = small_mlp(lazy_sparse_updates=False).fit(X.toarray(), y)
    off = clone(small_mlp(lazy_sparse_updates=False)).fit(X, y)
    assert type(off.optimizer_) is torch.optim.SGD
    np.testing.assert_allclose(
        off.predict_proba(X), reference.predict_proba(X), rtol=1e-4, atol=1e-6
    )
    for params in (
        {"optimizer__weight_decay": 1e-3},
        {"optimizer__nesterov": True},
        {"optimizer": torch.optim.RMSprop},  # takes momentum too, not sparse grads
    ):
        net = small_mlp(**params).fit(X, y)
        assert not isinstance(net.optimizer_, LazyMomentumSGD)
        assert net.predict_proba(X).shape == (len(y), 3)
    # Without hidden layers the only layer is the dense nn.Linear output layer.
    linear = small_mlp(hidden_layer_sizes=()).fit(X, y)
    assert not linear.module_.accepts_sparse_input
    assert type(linear.optimizer_) is torch.optim.SGD


def test_partial_fit_on_dense_after_sparse_stays_exact():
    X, y = sparse_data()
    lazy = small_mlp(max_epochs=2).fit(X, y).partial_fit(X.toarray(), y)
    dense = small_mlp(max_epochs=2).fit(X.toarray(), y).partial_fit(X.toarray(), y)
    np.testing.assert_allclose(
        lazy.predict_proba(X), dense.predict_proba(X), rtol=1e-4, atol=1e-6
    )


def test_batches_and_forward_pass_stay_sparse(monkeypatch):
    X, y = sparse_data()

    class Data:
        pass

    Data.X, Data.y = X, y
    batches = list(BatchSlicer(Data(), batch_size=16, keep_sparse=True))
    assert all(b[0].layout == torch.sparse_csr for b in batches)
    np.testing.assert_array_equal(
        torch.cat([b[0].to_dense() for b in batches]).numpy(), X.toarray()
    )
    net = small_mlp().fit(X, y)
    dense = embeddings.forward_pass(net, X.toarray())
    monkeypatch.setattr(sparse.csr_matrix, "toarray", None)  # any call would fail
    out = embeddings.forward_pass(net, X, chunk_size=16)
    np.testing.assert_allclose(out.features, dense.features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.proba, dense.proba, rtol=1e-5, atol=1e-6)


def test_a_pickled_sparse_net_trains_on_like_the_original():
    # The first layer's weight and velocity share one table while training; a
    # pickled or deep-copied net must train on from the same weights and
    # velocities, without touching the original's memory.
    import copy
    import pickle

    X, y = sparse_data()
    net = small_mlp(max_epochs=2).fit(X, y)
    pickled = pickle.loads(pickle.dumps(net))
    deep = copy.deepcopy(net)
    before = net.module_.hidden[0].weight.detach().clone()
    for other in (pickled, deep):
        other.partial_fit(X, y)
    torch.testing.assert_close(net.module_.hidden[0].weight, before, rtol=0, atol=0)
    net.partial_fit(X, y)
    for other in (pickled, deep):
        np.testing.assert_allclose(
            other.predict_proba(X), net.predict_proba(X), rtol=1e-5, atol=1e-7
        )
