"""Shared helpers of the diagnostic figures: panel grids, colors, index checks.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through
``pyplot``, so no global figure state is created and no GUI backend is needed
(``Figure.savefig`` renders with Agg).
"""

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from scipy import sparse

# Batches of different strategies: distinct colors *and* marker shapes, so that
# points picked by two strategies stay visible when they overlap.
STRATEGY_COLORS = [colormaps["tab10"].colors[i] for i in (3, 0, 2, 1, 4, 6, 8, 9)]
STRATEGY_MARKERS = ["o", "^", "s", "D", "v", "P", "X", "*"]
POOL_COLOR = "0.72"
LABELED_COLOR = "black"
QUERIED_COLOR = "tab:red"


def panel_grid(n_panels, *, ncols=None, width=4.0, height=3.6, sharex=False):
    """A constrained-layout Figure with ``n_panels`` visible axes (row-major)."""
    ncols = ncols or min(n_panels, 4)
    nrows = -(-n_panels // ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex).ravel()
    for extra in axes[n_panels:]:
        extra.set_visible(False)
    return fig, axes[:n_panels]


def class_colors(n_classes):
    """One color per class: tab10, tab20, then a sampled continuous map."""
    if n_classes <= 10:
        return list(colormaps["tab10"].colors[:n_classes])
    if n_classes <= 20:
        return list(colormaps["tab20"].colors[:n_classes])
    return [colormaps["turbo"](v) for v in np.linspace(0.05, 0.95, n_classes)]


def check_indices(indices, n_rows, name):
    """Distinct integer row indices in ``[0, n_rows)`` as an int64 array."""
    array = np.asarray(indices)
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be a 1-D array of integer row indices, got an array of "
            f"shape {array.shape} and dtype {array.dtype}."
        )
    if array.min() < 0 or array.max() >= n_rows:
        raise ValueError(
            f"{name} holds indices outside [0, {n_rows}): min {array.min()}, max "
            f"{array.max()}. Indices refer to rows of the matching X."
        )
    if len(np.unique(array)) != len(array):
        raise ValueError(f"{name} repeats indices; each row can be picked once.")
    return array.astype(np.int64)


def flat_rows(X):
    """``X`` as a 2-D float matrix (images flattened; sparse stays sparse CSR)."""
    if sparse.issparse(X):
        return sparse.csr_matrix(X, dtype=np.float64)
    X = np.asarray(X)
    return X.reshape(len(X), -1).astype(np.float64)


def hide_ticks(ax):
    """Projections have no meaningful tick values: keep the frame only."""
    ax.set_xticks([])
    ax.set_yticks([])
