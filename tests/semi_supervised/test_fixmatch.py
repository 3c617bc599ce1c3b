import numpy as np
import pytest
import torch

from skal.nets import CNNClassifier
from skal.semi_supervised import FixMatchClassifier, darp, fixmatch_loss
from skal.semi_supervised._fixmatch import _PseudoLabels
from tests.conftest import tiny_mlp


def cross_entropy_by_hand(logits, label):
    logits = np.asarray(logits, dtype=np.float64)
    return np.log(np.exp(logits).sum()) - logits[label]


def test_loss_terms_against_a_hand_computation():
    logits_labeled = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    y_labeled = torch.tensor([0, 2])
    logits_strong = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 3.0, 1.0], [-1.0, 0.5, 2.0], [0.2, 0.1, 0.0]],
        requires_grad=True,
    )
    pseudo_proba = torch.tensor(
        [
            [0.96, 0.02, 0.02],  # confident, class 0
            [0.50, 0.40, 0.10],  # not confident: masked out
            [0.01, 0.04, 0.95],  # exactly at the threshold: kept (>=)
            [0.03, 0.96, 0.01],  # confident, class 1
        ],
        requires_grad=True,
    )
    loss = fixmatch_loss(
        logits_labeled,
        y_labeled,
        logits_strong,
        pseudo_proba,
        threshold=0.95,
        lambda_u=2.0,
    )

    supervised = np.mean(
        [
            cross_entropy_by_hand([2.0, 0.5, -1.0], 0),
            cross_entropy_by_hand([0.0, 1.0, 0.0], 2),
        ]
    )
    unsupervised = (
        cross_entropy_by_hand([1.0, 0.0, 0.0], 0)
        + 0.0
        + cross_entropy_by_hand([-1.0, 0.5, 2.0], 2)
        + cross_entropy_by_hand([0.2, 0.1, 0.0], 1)
    ) / 4  # the mean runs over all unlabeled images, masked ones included
    assert loss.mask.tolist() == [1.0, 0.0, 1.0, 1.0]
    assert loss.supervised.item() == pytest.approx(supervised, rel=1e-6)
    assert loss.unsupervised.item() == pytest.approx(unsupervised, rel=1e-6)
    assert loss.total.item() == pytest.approx(supervised + 2.0 * unsupervised, rel=1e-6)

    loss.total.backward()
    assert pseudo_proba.grad is None  # pseudo-labels are targets, not trained
    assert torch.all(logits_strong.grad[1] == 0)  # the masked image adds nothing
    assert torch.all(logits_strong.grad[0] != 0)


def test_loss_without_unlabeled_images_is_supervised():
    logits = torch.tensor([[1.0, -1.0]])
    empty = torch.zeros(0, 2)
    loss = fixmatch_loss(logits, torch.tensor([1]), empty, empty)
    assert loss.unsupervised.item() == 0.0
    assert loss.total.item() == pytest.approx(cross_entropy_by_hand([1.0, -1.0], 1))


def digit_like_images(n=48, size=28, channels=None, seed=0):
    """Two learnable classes: a bright bar in the top or the bottom half."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    X = rng.randint(0, 60, (n, size, size), dtype=np.uint8)
    for image, label in zip(X, y):
        rows = slice(4, 10) if label == 0 else slice(size - 10, size - 4)
        image[rows, 6:-6] = 230
    if channels:
        X = np.repeat(X[..., None], channels, axis=3)
    return X, y


def tiny_lenet(**params):
    defaults = dict(head=(16,), width=0.5, batch_size=4, lr=0.03, random_state=0)
    return CNNClassifier("lenet", **{**defaults, **params})


def partially_labeled(y, n_labeled=8):
    y_partial = np.full(len(y), -1)
    y_partial[:n_labeled] = y[:n_labeled]
    return y_partial


def test_end_to_end_fit_predicts_and_leaves_torch_rng_alone():
    X, y = digit_like_images()
    state = torch.get_rng_state()
    model = FixMatchClassifier(
        tiny_lenet(), mu=2, max_epochs=2, threshold=0.6, random_state=0
    ).fit(X, partially_labeled(y))
    assert torch.equal(torch.get_rng_state(), state)
    proba = model.predict_proba(X)
    assert proba.shape == (48, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert set(model.predict(X)) <= {0, 1} and list(model.classes_) == [0, 1]
    assert 0 <= model.score(X, y) <= 1
    assert model.n_features_in_ == 28 * 28
    assert [record["epoch"] for record in model.history_] == [1, 2]
    assert all(np.isfinite(record["loss"]) for record in model.history_)
    # 40 unlabeled rows in batches of mu * B = 8: 5 steps per epoch, cosine decay.
    assert 0 < model.history_[-1]["lr"] < 0.03


def test_fit_is_deterministic_under_a_seed():
    X, y = digit_like_images(32)
    fits = [
        FixMatchClassifier(tiny_lenet(), mu=2, max_epochs=1, random_state=3).fit(
            X, partially_labeled(y)
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))


class Recorder:
    """An augmentation that records the batches it sees and returns them unchanged."""

    def __init__(self):
        self.shapes, self.ranges = [], []

    def __call__(self, images, generator=None):
        self.shapes.append(tuple(images.shape))
        self.ranges.append((float(images.min()), float(images.max())))
        return images


def test_each_step_takes_b_labeled_and_mu_b_unlabeled_images():
    X, y = digit_like_images(40, size=16, channels=3)
    weak, strong = Recorder(), Recorder()
    FixMatchClassifier(
        tiny_lenet(batch_size=2),
        mu=3,
        max_epochs=1,
        weak_augment=weak,
        strong_augment=strong,
        random_state=0,
    ).fit(X, partially_labeled(y, 4))
    # 36 unlabeled rows, 6 per step: 6 steps; weak sees labeled then unlabeled.
    assert strong.shapes == [(6, 3, 16, 16)] * 6
    assert weak.shapes == [(2, 3, 16, 16), (6, 3, 16, 16)] * 6
    assert all(0 <= low and high <= 1 for low, high in weak.ranges + strong.ranges)


def test_without_unlabeled_rows_an_epoch_is_a_pass_over_the_labels():
    X, y = digit_like_images(12, size=16)
    weak, strong = Recorder(), Recorder()
    model = FixMatchClassifier(
        tiny_lenet(batch_size=4),
        max_epochs=2,
        weak_augment=weak,
        strong_augment=strong,
        random_state=0,
    ).fit(X, y)
    assert weak.shapes == [(4, 1, 16, 16)] * 6 and strong.shapes == []
    assert [record["unsupervised"] for record in model.history_] == [0.0, 0.0]


def test_darp_starts_after_the_warmup():
    X, y = digit_like_images(32)
    model = FixMatchClassifier(
        tiny_lenet(classes=[0, 1]),
        mu=2,
        max_epochs=3,
        darp="uniform",
        darp_warmup=0.5,
        random_state=0,
    ).fit(X, partially_labeled(y))
    assert [record["darp"] for record in model.history_] == [False, False, True]


def test_pseudo_labels_are_refined_with_the_duals_of_the_last_solve():
    rng = np.random.RandomState(0)
    proba = torch.softmax(torch.from_numpy(rng.randn(30, 3) + [2, 0, 0]).float(), 1)
    pseudo = _PseudoLabels("uniform", 30, 3)
    first, second = np.arange(15), np.arange(15, 30)
    # Before the first solve: recorded, not refined.
    assert torch.equal(pseudo.refine(proba[:15], first), proba[:15])
    assert torch.equal(pseudo.refine(proba[15:], second), proba[15:])
    pseudo.solve()
    expected = darp(proba.numpy(), "uniform", tol=1e-4)
    refined = torch.cat(
        [pseudo.refine(proba[:15], first), pseudo.refine(proba[15:], second)]
    )
    np.testing.assert_allclose(refined.numpy(), expected, atol=1e-5)
    assert np.abs(expected.sum(axis=0) - 10).max() < 0.01  # the target counts
    # Fresh predictions for some rows are refined with the same class duals.
    fresh = torch.softmax(torch.randn(15, 3), 1)
    assert not torch.allclose(pseudo.refine(fresh, first), fresh)


def test_device_and_estimator_settings_are_used():
    X, y = digit_like_images(24)
    model = FixMatchClassifier(
        tiny_lenet(classes=[0, 1, 2]), device="cpu", max_epochs=1, mu=1
    ).fit(X, partially_labeled(y))
    assert model.estimator_.device == "cpu"
    assert list(model.classes_) == [0, 1, 2]  # the estimator's fixed label set
    assert model.predict_proba(X[:2]).shape == (2, 3)


@pytest.mark.parametrize(
    "params, X_change, error, match",
    [
        (dict(estimator=tiny_mlp()), None, TypeError, "CNNClassifier"),
        (dict(mu=0), None, ValueError, "mu"),
        (dict(threshold=0.0), None, ValueError, "threshold"),
        (dict(darp=[1.0, 1.0, 1.0]), None, ValueError, "one proportion per class"),
        (dict(), "nchw", ValueError, "N x H x W x C"),
        (dict(), "normalized", ValueError, "0..255"),
    ],
)
def test_bad_input_is_named(params, X_change, error, match):
    X, y = digit_like_images(16)
    if X_change == "nchw":
        X = X[:, None].astype(np.float32)
    elif X_change == "normalized":
        X = X.astype(np.float32) / 127.5 - 1
    model = FixMatchClassifier(**{"estimator": tiny_lenet(), "max_epochs": 1, **params})
    with pytest.raises(error, match=match):
        model.fit(X, partially_labeled(y))
