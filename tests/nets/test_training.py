"""The lean training loop against skorch's own loop, and defaults that learn."""

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import (
    BatchScoring,
    Callback,
    EpochScoring,
    GradientNormClipping,
    LRScheduler,
)
from torch import nn

from skal.nets import CNNClassifier, LossPrediction, MLPClassifier
from skal.nets._batches import csr_to_tensor
from skal.nets._lean import per_batch_callbacks
from skal.nets._sparse import GatheredBatch, LazyMomentumSGD, SparseInputLinear


def tfidf_like(n_rows, n_features=10000, n_classes=4, seed=0):
    """L2-normalized sparse rows: ~40 background words + ~6 class-specific words.

    Many columns and small entries, like TF-IDF documents: the regime where the
    first layer of an MLP trained with plain SGD at lr 0.01 does not learn.
    """
    rng = np.random.RandomState(seed)
    y = rng.randint(0, n_classes, n_rows)
    rows, cols = [], []
    for i, label in enumerate(y):
        background = rng.randint(n_classes * 100, n_features, 40)
        topical = label * 100 + rng.randint(0, 100, 6)
        cols += [*background, *topical]
        rows += [i] * 46
    X = sparse.csr_matrix(
        (rng.rand(len(rows)) + 0.5, (rows, cols)), shape=(n_rows, n_features)
    )
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sparse.csr_matrix(sparse.diags(1 / norms) @ X, dtype=np.float32), y


def small_mlp(**params):
    defaults = dict(hidden_layer_sizes=(16, 8), max_epochs=3, batch_size=4)
    return MLPClassifier(**{**defaults, "random_state": 0, **params})


def tiny_cnn(**params):
    defaults = dict(head=(8,), width=0.5, max_epochs=2, batch_size=4)
    return CNNClassifier("lenet", **{**defaults, "random_state": 0, **params})


def images(n=24, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, (n, 28, 28), dtype=np.uint8), rng.randint(0, 3, n)


def assert_same_training(lean, reference, X, rtol=1e-5, atol=1e-6):
    """Same weights (hence predictions) and the same history as skorch's loop."""
    for (name, a), (_, b) in zip(
        lean.module_.named_parameters(), reference.module_.named_parameters()
    ):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=name)
    np.testing.assert_allclose(
        lean.predict_proba(X), reference.predict_proba(X), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        lean.history[:, "train_loss"],
        reference.history[:, "train_loss"],
        rtol=1e-5,
    )
    assert (
        lean.history[:, "train_batch_count"]
        == reference.history[:, "train_batch_count"]
    )
    assert all(d > 0 for d in lean.history[:, "dur"])


def count_lean_epochs(net, monkeypatch):
    calls = []
    original = type(net)._run_lean_epoch

    def counting(self, iterator):
        calls.append(1)
        return original(self, iterator)

    monkeypatch.setattr(type(net), "_run_lean_epoch", counting)
    return calls


@pytest.mark.parametrize(
    "params",
    [{}, {"dropout": 0.3}, {"batch_size": 7}, {"iterator_train__drop_last": True}],
    ids=["plain", "dropout", "ragged", "drop_last"],
)
def test_lean_loop_equals_skorch_loop_on_dense_input(blobs, params, monkeypatch):
    X, y = blobs
    net = small_mlp(**params)
    lean_epochs = count_lean_epochs(net, monkeypatch)
    lean = net.fit(X[:90], y[:90])
    assert len(lean_epochs) == 3
    reference = small_mlp(lean_training=False, **params).fit(X[:90], y[:90])
    assert len(lean_epochs) == 3  # the reference ran skorch's loop
    assert_same_training(lean, reference, X)


@pytest.mark.parametrize("params", [{}, {"dropout": 0.3}], ids=["plain", "dropout"])
def test_lean_loop_equals_skorch_loop_on_sparse_input(params, monkeypatch):
    X, y = tfidf_like(90, n_features=1000)
    net = small_mlp(**params)
    lean_epochs = count_lean_epochs(net, monkeypatch)
    lean = net.fit(X, y)
    assert len(lean_epochs) == 3
    assert isinstance(lean.optimizer_, LazyMomentumSGD)
    reference = small_mlp(lean_training=False, **params).fit(X, y)
    assert_same_training(lean, reference, X)
    # And both equal plain torch SGD on the densified rows (the brute-force twin).
    dense = small_mlp(lean_training=False, **params).fit(X.toarray(), y)
    assert type(dense.optimizer_) is torch.optim.SGD
    assert_same_training(lean, dense, X, rtol=1e-4)


@pytest.mark.parametrize("augment", [None, True], ids=["plain", "augmented"])
def test_lean_loop_equals_skorch_loop_on_a_cnn(augment, monkeypatch):
    X, y = images()
    net = tiny_cnn(augment=augment)
    lean_epochs = count_lean_epochs(net, monkeypatch)
    lean = net.fit(X, y)
    assert len(lean_epochs) == 2
    reference = tiny_cnn(augment=augment, lean_training=False).fit(X, y)
    assert_same_training(lean, reference, X)


def test_lean_loop_trains_the_loss_prediction_module_like_skorch(blobs):
    X, y = blobs
    params = dict(loss_prediction=LossPrediction(weight=2.0, detach_epoch=2))
    lean = small_mlp(**params).fit(X[:60], y[:60])
    reference = small_mlp(lean_training=False, **params).fit(X[:60], y[:60])
    assert_same_training(lean, reference, X)
    np.testing.assert_allclose(
        lean.predict_loss(X), reference.predict_loss(X), rtol=1e-4, atol=1e-6
    )


class CountBatches(Callback):
    def initialize(self):
        self.seen = 0
        return self

    def on_batch_end(self, net, training=None, **kwargs):
        self.seen += training


@pytest.mark.parametrize(
    "callback, per_batch",
    [
        (CountBatches(), True),
        (GradientNormClipping(1.0), True),
        (BatchScoring("accuracy", on_train=True), True),
        (LRScheduler("StepLR", step_size=1, step_every="batch"), True),
        (EpochScoring("accuracy", on_train=False), False),
        (LRScheduler("StepLR", step_size=1), False),
    ],
)
def test_callbacks_acting_on_batches_get_skorch_loop(
    blobs, callback, per_batch, monkeypatch
):
    X, y = blobs
    net = small_mlp(callbacks=[("probe", callback)])
    lean_epochs = count_lean_epochs(net, monkeypatch)
    net.fit(X[:40], y[:40])
    assert per_batch_callbacks(net) == (["probe"] if per_batch else [])
    assert len(lean_epochs) == (0 if per_batch else 3)
    if isinstance(callback, CountBatches):
        assert dict(net.callbacks_)["probe"].seen == 3 * 10  # every batch was seen


def test_lean_training_keeps_sklearn_and_skorch_workflows(blobs, monkeypatch):
    X, y = blobs
    net = small_mlp(lean_training=True)
    assert clone(net).get_params()["lean_training"] is True
    lean_epochs = count_lean_epochs(net, monkeypatch)
    # partial_fit continues the same training; warm start too.
    net.fit(X[:60], y[:60]).partial_fit(X[:60], y[:60])
    reference = small_mlp(lean_training=False).fit(X[:60], y[:60])
    reference.partial_fit(X[:60], y[:60])
    assert len(lean_epochs) == 6 and len(net.history) == 6
    assert_same_training(net, reference, X)
    search = GridSearchCV(small_mlp(max_epochs=2), {"lr": [0.01, 0.05]}, cv=2)
    assert search.fit(X[:80], y[:80]).best_params_["lr"] in (0.01, 0.05)
    assert getattr(net, "_lean_data_", None) is None  # device copy released


def test_gathered_rows_step_equals_torch_sgd():
    """LazyMomentumSGD.gather_rows + step against torch.optim.SGD on nn.Linear."""
    torch.manual_seed(0)
    layer = SparseInputLinear(30, 5)
    torch.manual_seed(0)
    linear = nn.Linear(30, 5)
    lazy = LazyMomentumSGD(layer.parameters(), lr=0.1, momentum=0.9)
    dense = torch.optim.SGD(linear.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.RandomState(0)
    for step in range(60):
        X = sparse.random(4, 30, density=0.15, format="csr", random_state=rng)
        X = X.astype(np.float32)
        if step == 30:  # lr and momentum change between steps
            for group in lazy.param_groups + dense.param_groups:
                group.update(lr=0.05, momentum=0.8)
        batch = csr_to_tensor(X)
        rows, local = torch.unique(batch.col_indices(), return_inverse=True)
        lazy.zero_grad()
        weight_rows = lazy.gather_rows(layer.weight, rows)
        offsets = batch.crow_indices()[:-1]
        out = layer(GatheredBatch(offsets, local, batch.values(), weight_rows))
        ((torch.tanh(out) - 0.5) ** 2).sum().backward()
        lazy.step()
        dense.zero_grad()
        expected = linear(torch.from_numpy(X.toarray()))
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
        ((torch.tanh(expected) - 0.5) ** 2).sum().backward()
        dense.step()
    lazy.flush()
    torch.testing.assert_close(layer.weight, linear.weight.t(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.bias, linear.bias, rtol=1e-5, atol=1e-6)


# --- defaults that learn ------------------------------------------------------------
def test_defaults_learn_on_sparse_tfidf_like_rows():
    """L2-normalized rows with many columns: plain SGD leaves the first layer still.

    One SGD step moves a first-layer pre-activation by lr ||x||^2 delta, and
    ||x||^2 = 1 here: paper 001's optimizer as printed stays near chance after 30
    epochs, the default (first-layer rate scaled to the size of the entries) learns.
    """
    X, y = tfidf_like(400)
    X_train, y_train, X_test, y_test = X[:120], y[:120], X[160:], y[160:]
    net = MLPClassifier(random_state=0).fit(X_train, y_train)
    assert net.score(X_test, y_test) > 0.8
    assert net.history[-1, "train_loss"] < 0.5 * net.history[0, "train_loss"]
    paper = MLPClassifier(first_layer_lr_scale=1.0, random_state=0)
    assert paper.fit(X_train, y_train).score(X_test, y_test) < 0.5


def test_defaults_learn_on_digits(digits):
    X, y = digits
    net = MLPClassifier(random_state=0).fit(X[:300], y[:300])
    assert net.score(X[1000:], y[1000:]) > 0.85


class PlainCrossEntropy(nn.Module):
    """A criterion without a label_smoothing argument."""

    def forward(self, logits, y):
        return nn.functional.cross_entropy(logits, y)


def test_default_loss_is_label_smoothed_cross_entropy(blobs):
    """The reported loss is -(1 - e) log p_y - (e / C) sum_c log p_c, e = 0.1."""
    X, y = blobs[0][:40], blobs[1][:40]
    # lr 0, one batch: the loss is that of the initial weights, which stay.
    net = small_mlp(lr=0.0, max_epochs=1, batch_size=40).fit(X, y)
    with torch.no_grad():
        log_p = torch.log_softmax(net.module_(torch.from_numpy(X)), 1).double()
    n_classes = log_p.shape[1]
    expected = -(0.9 * log_p[np.arange(40), y] + 0.1 / n_classes * log_p.sum(1))
    assert net.history[-1, "train_loss"] == pytest.approx(float(expected.mean()))
    paper = small_mlp(lr=0.0, max_epochs=1, batch_size=40)
    paper.set_params(criterion__label_smoothing=0.0).fit(X, y)
    plain = -log_p[np.arange(40), y].mean()
    assert paper.history[-1, "train_loss"] == pytest.approx(float(plain))
    # A criterion without the argument is built without it.
    custom = small_mlp(criterion=PlainCrossEntropy).fit(X, y)
    assert isinstance(custom.criterion_, PlainCrossEntropy)


def test_first_layer_lr_scale(sparse_text):
    X, y = sparse_text
    net = small_mlp().fit(X, y)
    values = X.data[X.data != 0]
    expected = 1 / np.mean(values.astype(np.float64) ** 2)
    groups = net.optimizer_.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.01 * expected])
    assert groups[1]["params"][0] is net.module_.hidden[0].weight
    # Dense input with the same entries gets the same scale; 1.0 means one group.
    dense = small_mlp().fit(X.toarray(), y)
    assert dense.optimizer_.param_groups[1]["lr"] == pytest.approx(0.01 * expected)
    assert (
        len(small_mlp(first_layer_lr_scale=1.0).fit(X, y).optimizer_.param_groups) == 1
    )
    with pytest.raises(ValueError, match="first_layer_lr_scale must be 'auto'"):
        small_mlp(first_layer_lr_scale=0).fit(X, y)


def test_flush_reads_only_rows_that_ever_moved():
    torch.manual_seed(0)
    layer = SparseInputLinear(200, 3)
    torch.manual_seed(0)
    linear = nn.Linear(200, 3)
    initial = layer.weight.detach().clone()
    lazy = LazyMomentumSGD(layer.parameters(), lr=0.1, momentum=0.9)
    dense = torch.optim.SGD(linear.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.RandomState(1)
    for step in range(20):
        X = sparse.random(3, 200, density=0.02, format="csr", random_state=rng)
        X = sparse.csr_matrix(X[:, :40].toarray(), shape=(3, 200), dtype=np.float32)
        if step == 10:  # a flush mid-way, then the state survives a reload
            lazy.flush()
            reloaded = LazyMomentumSGD(layer.parameters(), lr=0.1, momentum=0.9)
            reloaded.load_state_dict(lazy.state_dict())
            lazy = reloaded
        batch = csr_to_tensor(X)
        rows, local = torch.unique(batch.col_indices(), return_inverse=True)
        lazy.zero_grad()
        weight_rows = lazy.gather_rows(layer.weight, rows)
        out = layer(
            GatheredBatch(batch.crow_indices()[:-1], local, batch.values(), weight_rows)
        )
        out.pow(2).sum().backward()
        lazy.step()
        dense.zero_grad()
        linear(torch.from_numpy(X.toarray())).pow(2).sum().backward()
        dense.step()
    lazy.flush()
    state = lazy.state[layer.weight]
    assert not state["touched"][40:].any()
    assert (state["row_step"][40:] == 0).all()  # never read by flush
    assert torch.equal(layer.weight[40:], initial[40:])
    torch.testing.assert_close(layer.weight, linear.weight.t(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("valid", [False, True], ids=["on_train", "valid_split"])
def test_skorch_epoch_scoring_scores_string_labels(digits, valid):
    # skorch's scoring callbacks hand predict the Dataset the net trains on, whose
    # targets are skal's class indices: predict must answer in indices there.
    from skorch.callbacks import EpochScoring
    from skorch.dataset import ValidSplit

    X, y = digits
    labels = np.array(list("abcdefghij"))[y[:300]]
    params = {"train_split": ValidSplit(5, stratified=True)} if valid else {}
    net = MLPClassifier(
        hidden_layer_sizes=(32,),
        max_epochs=8,
        random_state=0,
        callbacks=[EpochScoring("accuracy", on_train=not valid, name="acc")],
        **params,
    ).fit(X[:300], labels)
    scores = net.history[:, "acc"]
    assert 0.0 <= min(scores) and max(scores) <= 1.0
    # Labels compared in one encoding: the last epochs score like net.score does.
    assert scores[-1] > 0.8, scores
    assert net.predict(X[:5]).dtype.kind == "U"  # arrays still get the labels


@pytest.mark.parametrize(
    "make_callback",
    [
        lambda: EpochScoring("accuracy", on_train=True, use_caching=False, name="acc"),
        lambda: BatchScoring("accuracy", on_train=True, name="acc"),
    ],
    ids=["epoch_scoring_uncached", "batch_scoring"],
)
def test_label_predicting_scorers_score_any_labels_like_indices(digits, make_callback):
    # These scorers compare net.predict(raw X or a batch tensor), the user's
    # labels, with targets from the training data. A net fitted on letters (or on
    # labels 10, 20, ...) must record exactly the scores of one fitted on 0..9.
    X, y = digits
    X, y = X[:200], y[:200]
    histories = []
    for labels in (y, np.array(list("abcdefghij"))[y], 10 * y + 10):
        net = MLPClassifier(
            hidden_layer_sizes=(16,),
            max_epochs=3,
            batch_size=16,
            lr=0.1,
            random_state=0,
            callbacks=[make_callback()],
        ).fit(X, labels)
        histories.append(net.history[:, "acc"])
    assert histories[0][-1] > 0.3  # the reference learns (a wrong one scores ~0)
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-12)
    np.testing.assert_allclose(histories[2], histories[0], rtol=1e-12)
