"""Tests for skal.diagnostics score histograms (paper 001, Figure 2)."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from skal.diagnostics import plot_score_histograms
from skal.strategies import BADGE, Entropy, GradDiscrepancy
from tests.conftest import tiny_mlp


@pytest.fixture
def fitted(blobs):
    X, y = blobs
    net = tiny_mlp(hidden_layer_sizes=(8,)).fit(X[:150], y[:150])
    return net, X[:150], y[:150], X[150:250]


def test_histograms_per_strategy_with_auroc(fitted, tmp_path):
    net, X_lab, y_lab, X_in = fitted
    X_out = X_in * 4.0 + 3.0  # a shifted, rescaled copy
    strategies = {
        "grad": GradDiscrepancy().fit(X_lab, y_lab, estimator=net),
        "entropy": Entropy().fit(X_lab, y_lab, estimator=net),
    }
    fig = plot_score_histograms(strategies, {"in": X_in, "out": X_out}, bins=12)
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    grad = strategies["grad"]
    expected = roc_auc_score(
        np.r_[np.zeros(100), np.ones(100)], np.r_[grad.score(X_in), grad.score(X_out)]
    )
    assert axes[0].get_title() == f"grad\nAUROC(out vs in) = {expected:.2f}"
    # 12 bars per set, counts adding up to each set's size.
    heights = [p.get_height() for p in axes[0].patches]
    assert len(heights) == 24 and sum(heights[:12]) == sum(heights[12:]) == 100
    fig.savefig(tmp_path / "scores.png")


def test_single_strategy_and_errors(fitted):
    net, X_lab, y_lab, X_in = fitted
    entropy = Entropy().fit(X_lab, y_lab, estimator=net)
    fig = plot_score_histograms(entropy, {"a": X_in, "b": X_in, "c": X_in})
    assert fig.axes[0].get_title() == "Entropy"  # no AUROC for three sets
    badge = BADGE().fit(X_lab, y_lab, estimator=net)
    with pytest.raises(TypeError, match="ranking strategy"):
        plot_score_histograms({"badge": badge}, {"in": X_in})
    with pytest.raises(TypeError, match="datasets"):
        plot_score_histograms(entropy, X_in)
