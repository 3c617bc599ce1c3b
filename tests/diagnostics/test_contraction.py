"""Tests for the gradient-discrepancy contraction monitor (paper 001, Appendix A)."""

import copy

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skal.diagnostics import GradientDiscrepancyMonitor, plot_discrepancy_curves
from tests.conftest import tiny_mlp


class WeightSnapshots(Callback):
    """Copies of the module after each epoch (and before training)."""

    def initialize(self):
        self.snapshots = []
        return self

    def _keep(self, net):
        flush = getattr(net.optimizer_, "flush", None)
        if flush is not None:
            flush()
        self.snapshots.append(copy.deepcopy(net.module_))

    def on_train_begin(self, net, **kwargs):
        self._keep(net)

    def on_epoch_end(self, net, **kwargs):
        self._keep(net)


def brute_force_discrepancy(module, X, y_index, subset):
    """||mean_S grad l_i - mean_SJ grad l_i|| by a per-sample autograd loop."""
    module.eval()
    params = [p for p in module.parameters() if p.requires_grad]
    grads = []
    for i in range(len(y_index)):
        row = X[i : i + 1]
        x = torch.as_tensor(row.toarray() if hasattr(row, "toarray") else row)
        loss = torch.nn.functional.cross_entropy(
            module(x.float()), torch.as_tensor(y_index[i : i + 1])
        )
        g = torch.autograd.grad(loss, params)
        grads.append(torch.cat([t.flatten() for t in g]).double())
    grads = torch.stack(grads)
    return float(torch.linalg.norm(grads.mean(0) - grads[subset].mean(0)))


@pytest.mark.parametrize("data", ["blobs", "sparse_text"])
def test_values_equal_brute_force_autograd(data, request):
    X, y = request.getfixturevalue(data)
    X, y = X[:60], y[:60] + 5  # labels that are not class indices
    monitor = GradientDiscrepancyMonitor(X, y, subset_size=0.3, random_state=0)
    snapshots = WeightSnapshots()
    net = tiny_mlp(
        hidden_layer_sizes=(6,), max_epochs=3, callbacks=[monitor, snapshots]
    ).fit(X, y)
    if data == "sparse_text":  # the lazy optimizer's flush is exercised
        assert type(net.optimizer_).__name__ == "LazyMomentumSGD"
    assert len(monitor.subset_indices_) == 18
    y_index = np.searchsorted(net.classes_, y)
    expected = [
        brute_force_discrepancy(m, X, y_index, monitor.subset_indices_)
        for m in snapshots.snapshots
    ]
    got = [monitor.initial_discrepancy_, *monitor.discrepancies_]
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert net.history[:, "gradient_discrepancy"] == monitor.discrepancies_
    assert net.module_.training  # the monitor restores the training mode


def test_refit_redraws_state_and_bad_subset_sizes(blobs):
    X, y = blobs
    monitor = GradientDiscrepancyMonitor(X[:40], y[:40], subset_size=10)
    net = tiny_mlp(max_epochs=2, callbacks=[monitor]).fit(X[:40], y[:40])
    net.fit(X[:40], y[:40])
    assert len(monitor.discrepancies_) == 2 and len(monitor.subset_indices_) == 10
    for bad in (0, 40, 1.0, -0.5, True, "half"):
        with pytest.raises(ValueError, match="subset_size|S_J"):
            GradientDiscrepancyMonitor(X[:40], y[:40], subset_size=bad).initialize()
    with pytest.raises(ValueError, match="labels"):
        GradientDiscrepancyMonitor(X[:40], y[:30]).initialize()


def test_plot_curves(blobs, tmp_path):
    X, y = blobs
    monitor = GradientDiscrepancyMonitor(X[:40], y[:40], random_state=0)
    tiny_mlp(max_epochs=3, callbacks=[monitor]).fit(X[:40], y[:40])
    fig = plot_discrepancy_curves({"blobs": monitor, "values": [3.0, 2.0, 2.5, 1.0]})
    axes = [ax for ax in fig.axes if ax.get_visible()]
    x0, _ = axes[0].get_lines()[0].get_data()
    x1, y1 = axes[1].get_lines()[0].get_data()
    assert list(x0) == [0, 1, 2, 3] and list(x1) == [1, 2, 3, 4]
    assert axes[1].get_yscale() == "log"
    assert "max at epoch 1" in axes[1].get_legend().get_texts()[0].get_text()
    fig.savefig(tmp_path / "curves.png")
    with pytest.raises(ValueError, match="finite"):
        plot_discrepancy_curves({"x": [1.0, np.nan]})
    with pytest.raises(ValueError, match="no epoch"):
        plot_discrepancy_curves({"x": GradientDiscrepancyMonitor(X, y)})
