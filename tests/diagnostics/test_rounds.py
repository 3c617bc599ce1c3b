"""Tests for the per-round figures (paper 002, Figures 6-8)."""

from dataclasses import replace

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.exceptions import NotFittedError

from skal import ActiveLearner
from skal.callbacks import RoundRecorder
from skal.diagnostics import (
    RoundRecord,
    plot_class_balance,
    plot_confidence_histograms,
    plot_feature_embeddings,
    plot_per_class_accuracy,
)
from tests.conftest import tiny_mlp


@pytest.fixture
def run(blobs):
    """Three rounds: 20, 40, 60 labeled rows out of 120; 20 queried per round."""
    X, y = blobs
    X, y = X[:120], y[:120]
    order = np.random.RandomState(0).permutation(120)
    rounds = []
    for r in range(3):
        labeled = order[: 20 * (r + 1)]
        net = tiny_mlp(hidden_layer_sizes=(8,), classes=np.unique(y))
        net.fit(X[labeled], y[labeled])
        queried = order[20 * (r + 1) : 20 * (r + 2)]
        rounds.append(RoundRecord(r, net, labeled, queried))
    return rounds, X, y


def visible(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_feature_embeddings_mark_every_status(run, tmp_path):
    rounds, X, y = run
    fig = plot_feature_embeddings(rounds[:2], X, y, max_points=50, perplexity=10)
    assert isinstance(fig, Figure)
    axes = visible(fig)
    assert [ax.get_title() for ax in axes] == [
        "round 0 (20 labeled), 20 queried",
        "round 1 (40 labeled), 20 queried",
    ]
    # unlabeled, labeled, queried collections; every queried row is drawn.
    sizes = [len(c.get_offsets()) for c in axes[0].collections]
    assert sizes[2] == 20 and sum(sizes) >= 50
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["unlabeled", "labeled", "newly queried"]
    assert labels[3:] == ["0", "1", "2", "3"]
    fig.savefig(tmp_path / "tsne.png")
    # Without classes: no class legend.
    fig = plot_feature_embeddings(rounds[:1], X, max_points=40, perplexity=5)
    assert len(fig.legends[0].get_texts()) == 3


def test_confidence_histograms_split_labeled_and_unlabeled(run):
    rounds, X, _ = run
    fig = plot_confidence_histograms(rounds, X, bins=8)
    axes = visible(fig)
    assert len(axes) == 3
    proba = rounds[1].estimator.predict_proba(X)
    confidence = proba.max(axis=1)
    labeled = np.zeros(len(X), bool)
    labeled[rounds[1].labeled] = True
    texts = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert texts == [
        f"unlabeled (n=80, mean {confidence[~labeled].mean():.2f})",
        f"labeled (n=40, mean {confidence[labeled].mean():.2f})",
    ]
    assert axes[1].get_xlim()[0] <= 0.25 + 1e-9  # bins start at 1 / n_classes
    counts = plot_confidence_histograms(rounds[:1], X, normalize=False)
    assert visible(counts)[0].get_ylabel() == "count"


def test_per_class_accuracy_is_the_recall_of_each_class(run, tmp_path):
    rounds, X, y = run
    X_test, y_test = X[60:], y[60:]
    fig = plot_per_class_accuracy(rounds, X_test, y_test, class_names="abcd")
    ax = fig.axes[0]
    table = ax.get_images()[0].get_array()
    for j, record in enumerate(rounds):
        predicted = record.estimator.predict(X_test)
        for i, c in enumerate(range(4)):
            in_class = y_test == c
            assert table[i, j] == pytest.approx(np.mean(predicted[in_class] == c))
    assert [t.get_text() for t in ax.get_yticklabels()] == list("abcd")
    overall = np.mean(rounds[2].estimator.predict(X_test) == y_test)
    assert ax.get_xticklabels()[2].get_text() == f"R2\nacc {overall:.2f}"
    fig.savefig(tmp_path / "per_class.png")


def test_class_balance_counts(run):
    rounds, _, y = run
    fig = plot_class_balance(rounds, y, classes=[0, 1, 2, 3, 4])
    ax = fig.axes[0]
    counts = [int(t.get_text()) for t in ax.texts]
    expected = np.array([np.bincount(y[r.labeled], minlength=5) for r in rounds]).T
    assert counts == expected.ravel().tolist()  # row-major: class by class
    assert "max/min inf" in ax.get_xticklabels()[0].get_text()  # class 4 is absent


def test_bad_rounds(run):
    rounds, X, y = run
    overlapping = RoundRecord(0, rounds[0].estimator, [0, 1], [1, 2])
    with pytest.raises(ValueError, match="already labeled"):
        plot_confidence_histograms([overlapping], X)
    with pytest.raises(TypeError, match="RoundRecord"):
        plot_class_balance([(0, rounds[0].estimator, [0])], y)
    unfitted = RoundRecord(0, tiny_mlp(), [0, 1])
    with pytest.raises(NotFittedError):
        plot_per_class_accuracy([unfitted], X, y)
    with pytest.raises(ValueError, match="outside"):
        plot_class_balance([RoundRecord(0, rounds[0].estimator, [500])], y)
    with pytest.raises(ValueError, match="class_names"):
        plot_per_class_accuracy(rounds, X, y, class_names=["a"])


# --- from a RoundRecorder ----------------------------------------------------------
@pytest.fixture
def recorded(blobs):
    """An ActiveLearner run with two recorders: on the pool and on a test set."""
    X, y = blobs
    X_pool, y_pool, X_test, y_test = X[:120], y[:120], X[120:200], y[120:200]
    learner = ActiveLearner(
        tiny_mlp(hidden_layer_sizes=(8,), max_epochs=3),
        "entropy",
        batch_size=20,
        n_rounds=2,
        classes=np.unique(y),
        random_state=0,
        callbacks=[
            RoundRecorder(proba=True, features=True, keep_estimators=True),
            RoundRecorder(X_test, proba=True),
        ],
    ).fit(X_pool, y_pool)
    return learner.callbacks_, X_pool, y_pool, X_test, y_test


def legend_texts(fig):
    return [[t.get_text() for t in ax.get_legend().get_texts()] for ax in visible(fig)]


def test_figures_from_a_recorder_equal_figures_from_its_models(recorded, monkeypatch):
    (on_pool, on_test), X, y, X_test, y_test = recorded
    models = [replace(r, proba=None, features=None) for r in on_pool.records_]
    assert all(r.estimator is not None for r in models)
    # Confidence: recorded probabilities, no X needed.
    assert legend_texts(plot_confidence_histograms(on_pool, bins=8)) == legend_texts(
        plot_confidence_histograms(models, X, bins=8)
    )
    # Per-class accuracy: probabilities recorded on the test set.
    from_recorder = plot_per_class_accuracy(on_test, X_test, y_test)
    from_models = plot_per_class_accuracy(models, X_test, y_test)
    np.testing.assert_array_equal(
        from_recorder.axes[0].get_images()[0].get_array(),
        from_models.axes[0].get_images()[0].get_array(),
    )
    # Class balance reads the labeled rows only.
    fig = plot_class_balance(on_test, y)
    assert sum(int(t.get_text()) for t in fig.axes[0].texts) == 20 + 40 + 60
    # t-SNE: recorded features, no forward pass at all.
    from skal.diagnostics import _rounds

    def no_forward_pass(*args, **kwargs):
        raise AssertionError("the recorded features were not used")

    monkeypatch.setattr(_rounds.embeddings, "forward_pass", no_forward_pass)
    fig = plot_feature_embeddings(on_pool, X, y, max_points=40, perplexity=5)
    assert [ax.get_title() for ax in visible(fig)][
        0
    ] == "round 0 (20 labeled), 20 queried"


def test_arrays_recorded_on_other_rows_are_not_used(recorded):
    (on_pool, on_test), X, y, X_test, y_test = recorded
    # The test-set recorder kept no model and recorded nothing on the pool.
    with pytest.raises(ValueError, match="no model and no recorded proba"):
        plot_confidence_histograms(on_test, X)
    with pytest.raises(ValueError, match="no model and no recorded proba"):
        plot_confidence_histograms(on_test)
    # The pool recorder kept its models: they are used on the test set.
    fig = plot_per_class_accuracy(on_pool, X_test, y_test)
    assert len(fig.axes[0].get_xticklabels()) == 3
    with pytest.raises(NotFittedError, match="recorded nothing"):
        plot_class_balance(RoundRecorder(), y)
