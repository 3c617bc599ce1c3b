"""Acquisition geometry (paper 001, section 4.1, Figure 1).

One acquisition step by several strategies from the same labeled set and the same
trained model, drawn in two 2-D PCA projections: of the inputs, and of the
pseudo-labeled last-layer gradient embeddings ``g_i = a_i (x) h~_i`` (``a_i`` the
loss derivative at the logits, ``h~_i = [h_i, 1]`` the penultimate features; see
:mod:`skal.gradients`). The embeddings are materialized, but only for the plotted
rows (a few thousand), never for a whole pool.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state

from .. import gradients
from .._arrays import stack_rows
from .._validation import check_fitted_estimator, check_pool, n_features_of
from ._common import (
    LABELED_COLOR,
    POOL_COLOR,
    STRATEGY_COLORS,
    STRATEGY_MARKERS,
    check_indices,
    flat_rows,
    hide_ticks,
    panel_grid,
)

SPACES = ("input", "gradient")
# Materialized embeddings larger than this (float64 values) are refused: they are
# meant for plotted rows only.
MAX_EMBEDDING_VALUES = 2**27  # 1 GiB


def last_layer_gradient_embeddings(
    estimator, X, *, loss="pseudo_label", y=None, chunk_size=None
):
    """Materialized last-layer gradient embeddings of a few rows.

    Row ``i`` is ``vec(a_i h~_i^T)``: the gradient of the loss of sample ``i``
    with respect to the output layer's weight and bias, laid out as the
    ``C x (D+1)`` matrix ``[dW | db]`` read row by row. It is built from
    :func:`skal.gradients.last_layer_factors`; use it for plotting, not on a
    whole pool (strategies work with the factors).

    Parameters
    ----------
    estimator : fitted skorch net ending in ``nn.Linear``, or sklearn linear classifier
    X : ndarray or CSR matrix of shape (N, n_features)
        The rows to embed.
    loss : {"pseudo_label", "label", "entropy"}, default="pseudo_label"
        See :func:`skal.gradients.last_layer_factors`.
    y : array-like of shape (N,), default=None
        Labels for ``loss="label"``.
    chunk_size : int, default=None
        Rows per forward chunk.

    Returns
    -------
    embeddings : ndarray of shape (N, C * (D + 1))
    """
    factors, _ = gradients.last_layer_factors(
        estimator, X, loss=loss, y=y, chunk_size=chunk_size
    )
    a = np.asarray(factors.a, dtype=np.float64)
    h = factors.h.toarray() if sparse.issparse(factors.h) else np.asarray(factors.h)
    n_values = a.shape[0] * a.shape[1] * h.shape[1]
    if n_values > MAX_EMBEDDING_VALUES:
        raise ValueError(
            f"The gradient embeddings of {a.shape[0]} rows would hold {n_values:,} "
            f"values (over {MAX_EMBEDDING_VALUES:,}); embed fewer rows, e.g. with "
            f"a smaller max_pool_points."
        )
    return (a[:, :, None] * h.astype(np.float64)[:, None, :]).reshape(len(a), -1)


def acquisition_projections(
    estimator, X_labeled, X_pool, pool_rows=None, *, spaces=SPACES, chunk_size=None
):
    """2-D PCA coordinates of the labeled rows and of chosen pool rows.

    PCA is fitted on the plotted rows (labeled rows, then ``X_pool[pool_rows]``)
    in each space: ``"input"`` (flattened inputs; sparse input stays sparse) and
    ``"gradient"`` (pseudo-labeled last-layer gradient embeddings, see
    :func:`last_layer_gradient_embeddings`).

    Parameters
    ----------
    estimator : fitted classifier
        The model every strategy queried with.
    X_labeled : array-like or sparse matrix of shape (n_labeled, ...)
    X_pool : array-like or sparse matrix of shape (n_pool, ...)
    pool_rows : array-like of int, default=None
        Pool rows to project (all by default).
    spaces : sequence of {"input", "gradient"}, default=("input", "gradient")
    chunk_size : int, default=None
        Rows per forward chunk.

    Returns
    -------
    projections : dict of str to Projection
        One per space. ``coordinates`` has shape ``(n_labeled + len(pool_rows),
        2)``: the labeled rows first, then the pool rows in the given order.
    """
    spaces = _check_spaces(spaces)
    check_fitted_estimator(estimator)
    n_features = n_features_of(estimator)
    X_labeled = check_pool(X_labeled, n_features=n_features, name="X_labeled")
    X_pool = check_pool(X_pool, n_features=n_features, name="X_pool")
    if pool_rows is None:
        pool_rows = np.arange(X_pool.shape[0])
    pool_rows = check_indices(pool_rows, X_pool.shape[0], "pool_rows")
    rows = stack_rows(X_labeled, X_pool[pool_rows])
    if rows.shape[0] < 3:
        raise ValueError(
            f"A 2-D PCA projection needs at least 3 rows; got {rows.shape[0]}."
        )
    projections = {}
    for space in spaces:
        if space == "input":
            values = flat_rows(rows)
        else:
            values = last_layer_gradient_embeddings(
                estimator, rows, chunk_size=chunk_size
            )
        projections[space] = _pca_2d(values)
    return projections


@dataclass
class Projection:
    """2-D coordinates and the variance share of each axis.

    Attributes
    ----------
    coordinates : ndarray of shape (n_rows, 2)
    explained_variance_ratio : ndarray of shape (2,)
    """

    coordinates: np.ndarray
    explained_variance_ratio: np.ndarray


def _pca_2d(values):
    # sklearn's PCA centers sparse input implicitly with the arpack solver.
    solver = "arpack" if sparse.issparse(values) else "full"
    pca = PCA(n_components=2, svd_solver=solver, random_state=0)
    return Projection(pca.fit_transform(values), pca.explained_variance_ratio_)


def acquire_batches(strategies, estimator, X_labeled, y_labeled, X_pool, batch_sizes):
    """One acquisition step per strategy and batch size, from the same model.

    Each strategy is cloned and fitted afresh for every batch size, so seeded
    strategies draw the same way whatever the other batch sizes.

    Parameters
    ----------
    strategies : dict of str to QueryStrategy
        Unfitted strategies by display name.
    estimator : fitted classifier
        Trained on ``(X_labeled, y_labeled)``.
    X_labeled : array-like or sparse matrix of shape (n_labeled, ...)
    y_labeled : array-like of shape (n_labeled,)
    X_pool : array-like or sparse matrix of shape (n_pool, ...)
    batch_sizes : sequence of int

    Returns
    -------
    batches : dict of str to dict of str to ndarray
        ``{"B = 10": {name: pool indices, ...}, ...}``, as
        :func:`plot_acquisition_geometry` takes it.
    """
    if not isinstance(strategies, Mapping) or not strategies:
        raise TypeError(
            "strategies must be a non-empty dict {name: QueryStrategy}, e.g. "
            "{'grad': GradDiscrepancy(), 'entropy': Entropy()}."
        )
    return {
        f"B = {size}": {
            name: clone(strategy)
            .fit(X_labeled, y_labeled, estimator=estimator)
            .query(X_pool, size)
            for name, strategy in strategies.items()
        }
        for size in batch_sizes
    }


def plot_acquisition_geometry(
    estimator,
    X_labeled,
    X_pool,
    batches,
    *,
    spaces=SPACES,
    max_pool_points=3000,
    random_state=0,
    chunk_size=None,
):
    """Where one acquisition step of each strategy lands (paper 001, Figure 1).

    One row of panels per space (PCA of the inputs, PCA of the pseudo-labeled
    last-layer gradient embeddings), one column per group of batches (e.g. per
    batch size). The pool is grey, the labeled set black, each strategy's batch
    has its own color and marker. Every panel of a row shares one projection,
    fitted on the labeled rows, the drawn pool rows and every selected row.

    Parameters
    ----------
    estimator : fitted classifier
        The model all strategies queried with.
    X_labeled : array-like or sparse matrix of shape (n_labeled, ...)
    X_pool : array-like or sparse matrix of shape (n_pool, ...)
    batches : dict
        Either ``{column title: {strategy name: pool indices}}`` (as returned by
        :func:`acquire_batches`) or, for one column, ``{strategy name: pool
        indices}``.
    spaces : sequence of {"input", "gradient"}, default=("input", "gradient")
    max_pool_points : int, default=3000
        Grey pool points drawn at most (a uniform subsample; selected rows are
        always drawn); None draws all. Bounds the materialized gradient
        embeddings.
    random_state : int, RandomState instance or None, default=0
        Draws the pool subsample.
    chunk_size : int, default=None
        Rows per forward chunk.

    Returns
    -------
    fig : matplotlib.figure.Figure

    References
    ----------
    Gradient-Discrepancy Acquisition for Pool-Based Active Learning, arXiv
    2605.02609 (2026), section 4.1 and Figure 1.
    """
    spaces = _check_spaces(spaces)
    X_pool = check_pool(X_pool, n_features=n_features_of(estimator), name="X_pool")
    columns = _check_batches(batches, X_pool.shape[0])
    names = list(dict.fromkeys(name for col in columns.values() for name in col))
    selected = np.unique(
        np.concatenate([np.concatenate(list(c.values())) for c in columns.values()])
    )
    background = _pool_sample(X_pool.shape[0], max_pool_points, random_state)
    pool_rows = np.union1d(background, selected)
    projections = acquisition_projections(
        estimator, X_labeled, X_pool, pool_rows, spaces=spaces, chunk_size=chunk_size
    )
    n_labeled = next(iter(projections.values())).coordinates.shape[0] - len(pool_rows)

    def plotted(rows):  # positions of pool rows among the projected rows
        return n_labeled + np.searchsorted(pool_rows, rows)

    n_pool = X_pool.shape[0]
    pool_label = (
        f"pool ({n_pool})"
        if len(background) == n_pool
        else (f"pool ({len(background)} of {n_pool} drawn)")
    )
    fig, axes = panel_grid(
        len(spaces) * len(columns), ncols=len(columns), width=4.2, height=4.0
    )
    axes = axes.reshape(len(spaces), len(columns))
    for r, space in enumerate(spaces):
        projection = projections[space]
        xy = projection.coordinates
        for c, (title, column) in enumerate(columns.items()):
            ax = axes[r, c]
            ax.scatter(
                *xy[plotted(background)].T,
                s=4,
                color=POOL_COLOR,
                alpha=0.5,
                linewidths=0,
                label=pool_label,
                rasterized=True,
            )
            ax.scatter(
                *xy[:n_labeled].T,
                s=30,
                color=LABELED_COLOR,
                label=f"initial labeled ({n_labeled})",
                zorder=3,
            )
            for k, name in enumerate(names):
                if name in column:
                    ax.scatter(
                        *xy[plotted(column[name])].T,
                        s=46,
                        marker=STRATEGY_MARKERS[k % len(STRATEGY_MARKERS)],
                        facecolors="none",
                        linewidths=1.6,
                        label=name,
                        zorder=4,
                        edgecolors=STRATEGY_COLORS[k % len(STRATEGY_COLORS)],
                    )
            variance = projection.explained_variance_ratio
            ax.set_title(f"{_SPACE_TITLES[space]}, {title}".strip(", "))
            ax.set_xlabel(f"PC1 ({variance[0]:.0%} of variance)")
            ax.set_ylabel(f"PC2 ({variance[1]:.0%})")
            hide_ticks(ax)
    # One entry per label over all panels (a strategy may miss some columns).
    legend = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(
        legend.values(),
        legend.keys(),
        loc="outside lower center",
        ncols=len(legend),
        frameon=False,
        markerscale=1.3,
    )
    return fig


_SPACE_TITLES = {"input": "Input space", "gradient": "Gradient space"}


def _check_spaces(spaces):
    spaces = [spaces] if isinstance(spaces, str) else list(spaces)
    unknown = [s for s in spaces if s not in SPACES]
    if not spaces or unknown:
        raise ValueError(
            f"spaces must be a non-empty subset of {SPACES}, got {spaces!r}."
        )
    return spaces


def _check_batches(batches, n_pool):
    """``{column: {strategy: indices}}`` with checked indices."""
    if not isinstance(batches, Mapping) or not batches:
        raise TypeError(
            "batches must be a non-empty dict: {strategy name: pool indices} or "
            "{column title: {strategy name: pool indices}} (see acquire_batches)."
        )
    nested = [isinstance(v, Mapping) for v in batches.values()]
    if not any(nested):
        batches = {"": batches}
    elif not all(nested):
        raise TypeError(
            "batches mixes dicts and index arrays: give either {strategy: indices} "
            "or {column title: {strategy: indices}}."
        )
    columns = {}
    for title, column in batches.items():
        if not column:
            raise ValueError(f"The batch group {title!r} holds no strategy.")
        columns[str(title)] = {
            str(name): check_indices(indices, n_pool, f"batches[{title!r}][{name!r}]")
            for name, indices in column.items()
        }
    return columns


def _pool_sample(n_pool, max_points, random_state):
    if max_points is None or n_pool <= max_points:
        return np.arange(n_pool)
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n_pool, max_points, replace=False))
