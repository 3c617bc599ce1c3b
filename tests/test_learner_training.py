"""How ActiveLearner trains its models: warm-start rounds (issue 13, item 3), torch
threads (issue 15), and standard skorch nets (issue 17, item 4)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from skal import ActiveLearner

from .conftest import tiny_mlp

# Weights seen by WeightSpy callbacks, in training order. Module-level because
# ActiveLearner clones the estimator (and with it a callback's own lists).
SEEN = []


class WeightSpy(Callback):
    """Record the module's weights when each training starts and ends."""

    def on_train_begin(self, net, **kwargs):
        SEEN.append(("begin", _weights(net)))

    def on_train_end(self, net, **kwargs):
        SEEN.append(("end", _weights(net)))


def _weights(net):
    return {k: v.detach().clone() for k, v in net.module_.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def skorch_net(n_outputs=4, **params):
    module = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, n_outputs))
    defaults = dict(
        criterion=nn.CrossEntropyLoss,
        max_epochs=3,
        lr=0.1,
        batch_size=16,
        train_split=None,
        verbose=0,
    )
    return NeuralNetClassifier(module, **{**defaults, **params})


# --- warm start (issue 13, item 3) -------------------------------------------------------
@pytest.mark.parametrize(
    "make_net",
    [
        lambda: tiny_mlp(callbacks=[("spy", WeightSpy())]),
        lambda: skorch_net(callbacks=[("spy", WeightSpy())]),
    ],
    ids=["skal", "skorch"],
)
def test_warm_start_rounds_continue_from_the_previous_weights(blobs, make_net):
    X, y = blobs
    SEEN.clear()
    ActiveLearner(
        make_net(), "margin", batch_size=10, n_rounds=2, warm_start=True, random_state=0
    ).fit(X, y)
    assert [event for event, _ in SEEN] == ["begin", "end"] * 3
    round_1_end, round_2_begin = SEEN[3][1], SEEN[4][1]
    assert _same(round_2_begin, round_1_end)  # no re-initialization
    assert not _same(SEEN[1][1], SEEN[0][1])  # and training did change them
    # Without warm start, round 2 starts from a fresh initialization.
    SEEN.clear()
    ActiveLearner(make_net(), "margin", batch_size=10, n_rounds=2, random_state=0).fit(
        X, y
    )
    assert not _same(SEEN[4][1], SEEN[3][1])


def test_warm_start_continues_through_teach(blobs):
    X, y = blobs
    y_partial = np.where(np.arange(len(y)) < 40, y, -1)
    learner = ActiveLearner(
        tiny_mlp(callbacks=[("spy", WeightSpy())]), "margin", warm_start=True
    ).fit(X, y_partial)
    SEEN.clear()
    before = _weights(learner.estimator_)
    model = learner.estimator_
    picks = learner.query(X, 5)
    learner.teach(X[picks], y[picks])
    assert learner.estimator_ is model
    assert _same(SEEN[0][1], before)


def test_warm_start_sets_sklearn_warm_start_and_refuses_others(blobs):
    X, y = blobs
    learner = ActiveLearner(
        LogisticRegression(max_iter=300),
        "margin",
        batch_size=20,
        n_rounds=2,
        warm_start=True,
        random_state=0,
    ).fit(X, y)
    assert learner.estimator_.warm_start is True
    assert learner.estimator.warm_start is False  # the given estimator is untouched
    with pytest.raises(TypeError, match="KNeighborsClassifier has no warm_start"):
        ActiveLearner(KNeighborsClassifier(), warm_start=True).fit(X, y)


def test_warm_start_restarts_when_a_class_appears(blobs):
    X, y = blobs
    # Round 0 sees classes 0 and 1 only; the oracle then reveals 2 and 3.
    y_partial = np.full(len(y), -1)
    first = np.flatnonzero(y < 2)[:20]
    y_partial[first] = y[first]
    learner = ActiveLearner(
        LogisticRegression(max_iter=300),
        "random",
        batch_size=40,
        n_rounds=1,
        oracle=lambda rows: y[rows],
        warm_start=True,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="trains a fresh model"):
        learner.fit(X, y_partial)
    assert len(learner.estimator_.classes_) == 4


# --- torch threads (issue 15) -----------------------------------------------------------
class ThreadSpy(Callback):
    def on_train_begin(self, net, **kwargs):
        SEEN.append(("threads", torch.get_num_threads()))


def test_n_threads_applies_during_fit_and_is_restored(blobs):
    X, y = blobs
    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1
    SEEN.clear()
    learner = ActiveLearner(
        tiny_mlp(callbacks=[("spy", ThreadSpy())]),
        "margin",
        batch_size=10,
        n_rounds=1,
        n_threads=wanted,
        random_state=0,
    ).fit(X, y)
    assert SEEN == [("threads", wanted)] * 2
    assert torch.get_num_threads() == before
    learner.query(X, 3)
    assert torch.get_num_threads() == before
    with pytest.raises(
        ValueError, match="'n_threads' parameter of ActiveLearner must be an int"
    ):
        ActiveLearner(tiny_mlp(), n_threads=0).fit(X, y)


# --- standard skorch nets (issue 17, item 4) ---------------------------------------------
def test_skorch_default_train_split_is_explained(digits):
    # The user's steps: a skorch net with its defaults, 10 labels of 10 classes.
    X, y = digits
    module = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    net = NeuralNetClassifier(module, criterion=nn.CrossEntropyLoss, verbose=0)
    with pytest.raises(ValueError, match="Pass train_split=None to the net"):
        ActiveLearner(net, "margin", batch_size=10, n_rounds=1, random_state=0).fit(
            X, y
        )


def test_skorch_net_takes_float64_input(blobs):
    X, y = blobs
    learner = ActiveLearner(
        skorch_net(), "margin", batch_size=10, n_rounds=1, random_state=0
    ).fit(X.astype(np.float64), y)
    assert learner.predict_proba(X.astype(np.float64)).shape == (400, 4)
    assert len(learner.query(X.astype(np.float64), 5)) == 5


def test_skorch_net_in_labeling_mode_without_classes(blobs):
    # The module has 6 outputs (labels 0..5); the labeled rows show only 4 of them.
    X, y = blobs
    y_partial = np.where(np.arange(len(y)) < 40, y, -1)
    learner = ActiveLearner(skorch_net(n_outputs=6), "margin").fit(X, y_partial)
    np.testing.assert_array_equal(learner.classes_, np.arange(6))
    assert len(learner.query(X, 5)) == 5  # last-layer strategies see 6 outputs
    picks = learner.query(X, 5)
    learner.teach(X[picks], y[picks])
    assert learner.predict_proba(X).shape == (400, 6)


def test_skorch_net_refuses_labels_it_cannot_output(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="LabelEncoder"):
        ActiveLearner(skorch_net(), batch_size=10, n_rounds=1).fit(
            X, np.array(["a", "b", "c", "d"])[y]
        )
    with pytest.raises(ValueError, match="output j"):
        ActiveLearner(skorch_net(n_outputs=3), batch_size=10, n_rounds=1).fit(
            X, np.minimum(y, 2) + np.where(np.arange(len(y)) == 7, 5, 0)
        )
