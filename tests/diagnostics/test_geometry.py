"""Tests for skal.diagnostics acquisition geometry (paper 001, Figure 1)."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from skal.diagnostics import (
    acquire_batches,
    acquisition_projections,
    last_layer_gradient_embeddings,
    plot_acquisition_geometry,
)
from skal.strategies import BADGE, Entropy, GradDiscrepancy
from tests.conftest import tiny_mlp


def autograd_embeddings(net, X):
    """Per-sample autograd of the pseudo-labeled loss w.r.t. [W | b] of the output."""
    module = net.module_.eval()
    layer = module.output_layer
    rows = []
    for x in torch.as_tensor(np.asarray(X, dtype=np.float32)):
        logits = module(x[None])
        loss = torch.nn.functional.cross_entropy(logits, logits.argmax(1))
        d_weight, d_bias = torch.autograd.grad(loss, [layer.weight, layer.bias])
        rows.append(torch.cat([d_weight, d_bias[:, None]], dim=1).flatten())
    return torch.stack(rows).double().numpy()


@pytest.fixture
def setup(blobs):
    X, y = blobs
    net = tiny_mlp(hidden_layer_sizes=(8,)).fit(X[:30], y[:30])
    return net, X[:30], y[:30], X[30:200]


def test_embeddings_equal_autograd_reference(setup):
    net, X_labeled, _, X_pool = setup
    got = last_layer_gradient_embeddings(net, X_pool[:40])
    np.testing.assert_allclose(got, autograd_embeddings(net, X_pool[:40]), atol=1e-6)


def test_projected_gradient_embeddings_equal_materialized_reference(setup):
    net, X_labeled, _, X_pool = setup
    pool_rows = np.array([5, 0, 17, 99, 42, 130, 3])
    projections = acquisition_projections(net, X_labeled, X_pool, pool_rows)

    plotted = np.vstack([X_labeled, X_pool[pool_rows]])
    pca = PCA(n_components=2, svd_solver="full")
    expected = pca.fit_transform(autograd_embeddings(net, plotted))
    got = projections["gradient"]
    np.testing.assert_allclose(got.coordinates, expected, atol=1e-5)
    np.testing.assert_allclose(
        got.explained_variance_ratio, pca.explained_variance_ratio_, rtol=1e-5
    )
    expected_input = PCA(n_components=2, svd_solver="full").fit_transform(plotted)
    np.testing.assert_allclose(
        projections["input"].coordinates, expected_input, atol=1e-4
    )


def test_sparse_input_projects_without_densifying_the_pool(sparse_text):
    X, y = sparse_text
    net = tiny_mlp(hidden_layer_sizes=(8,)).fit(X[:40], y[:40])
    projections = acquisition_projections(net, X[:40], X[40:], np.arange(50))
    dense = np.vstack([X[:40].toarray(), X[40:90].toarray()])
    expected = PCA(n_components=2, svd_solver="full").fit_transform(dense)
    got = projections["input"].coordinates
    # arpack and full SVD agree up to the sign of each component.
    signs = np.sign(np.sum(got * expected, axis=0))
    np.testing.assert_allclose(got * signs, expected, atol=1e-5)


def test_acquire_batches_match_direct_queries(setup):
    net, X_labeled, y_labeled, X_pool = setup
    strategies = {"grad": GradDiscrepancy(), "badge": BADGE(random_state=0)}
    batches = acquire_batches(strategies, net, X_labeled, y_labeled, X_pool, [3, 6])
    assert list(batches) == ["B = 3", "B = 6"]
    direct = GradDiscrepancy().fit(X_labeled, y_labeled, estimator=net)
    np.testing.assert_array_equal(batches["B = 6"]["grad"], direct.query(X_pool, 6))
    badge = BADGE(random_state=0).fit(X_labeled, y_labeled, estimator=net)
    np.testing.assert_array_equal(batches["B = 3"]["badge"], badge.query(X_pool, 3))
    with pytest.raises(TypeError, match="non-empty dict"):
        acquire_batches([GradDiscrepancy()], net, X_labeled, y_labeled, X_pool, [3])


def test_plot_renders_every_space_and_batch_size(setup, tmp_path):
    net, X_labeled, y_labeled, X_pool = setup
    strategies = {"grad": GradDiscrepancy(), "entropy": Entropy()}
    batches = acquire_batches(strategies, net, X_labeled, y_labeled, X_pool, [4, 8])
    fig = plot_acquisition_geometry(net, X_labeled, X_pool, batches, max_pool_points=50)
    assert isinstance(fig, Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [
        "Input space, B = 4",
        "Input space, B = 8",
        "Gradient space, B = 4",
        "Gradient space, B = 8",
    ]
    # pool, labeled, one collection per strategy; the pool sample is capped.
    collections = visible[0].collections
    assert len(collections) == 4 and len(collections[0].get_offsets()) == 50
    assert len(collections[2].get_offsets()) == 4
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [
        "pool (50 of 170 drawn)",
        "initial labeled (30)",
        "grad",
        "entropy",
    ]
    fig.savefig(tmp_path / "geometry.png")
    assert (tmp_path / "geometry.png").stat().st_size > 1000


def test_single_column_batches_and_bad_input(setup):
    net, X_labeled, _, X_pool = setup
    fig = plot_acquisition_geometry(
        net, X_labeled, X_pool, {"a": [0, 1, 2]}, spaces="gradient"
    )
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["Gradient space"]
    # A strategy missing from the first column still gets its legend entry.
    fig = plot_acquisition_geometry(
        net, X_labeled, X_pool, {"B = 1": {"a": [0]}, "B = 2": {"b": [1, 2]}}
    )
    assert [t.get_text() for t in fig.legends[0].get_texts()][2:] == ["a", "b"]
    with pytest.raises(ValueError, match="outside"):
        plot_acquisition_geometry(net, X_labeled, X_pool, {"a": [0, len(X_pool)]})
    with pytest.raises(ValueError, match="repeats"):
        plot_acquisition_geometry(net, X_labeled, X_pool, {"a": [1, 1]})
    with pytest.raises(TypeError, match="mixes"):
        plot_acquisition_geometry(net, X_labeled, X_pool, {"a": [1], "B": {"x": [2]}})
    with pytest.raises(ValueError, match="spaces"):
        plot_acquisition_geometry(net, X_labeled, X_pool, {"a": [1]}, spaces=["pixel"])
    with pytest.raises(ValueError, match="features"):
        acquisition_projections(net, X_labeled[:, :3], X_pool)
