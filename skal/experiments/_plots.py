"""Plots and tables of active-learning results (paper 001, Figs. 3-5, Table 2).

Figures are built with :class:`matplotlib.figure.Figure` directly, never through
``pyplot``, so no global figure state is created or leaked and no GUI backend is
needed; ``Figure.savefig`` writes PNG with Agg and PDF with the PDF backend.
"""

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from ._aggregate import (
    EXPERIMENT,
    _check_results,
    _check_square,
    loss_scores,
    summarize,
)

__all__ = ["plot_learning_curves", "plot_penalty_matrix", "timing_table"]


def _save(fig, path):
    if path is not None:
        fig.savefig(path, bbox_inches="tight")
    return fig


# tab20 reordered: its ten dark shades first, then the ten light ones.
_COLORS = [colormaps["tab20"].colors[i] for i in (*range(0, 20, 2), *range(1, 20, 2))]


def _line_styles(names):
    """(color, line style) per name: 20 colors, then dashed and dotted repeats."""
    return {
        name: (_COLORS[i % 20], ("-", "--", ":")[i // 20 % 3])
        for i, name in enumerate(names)
    }


def _panel_axes(ax, n_panels, width=4.5, height=3.5):
    """A figure and ``n_panels`` axes: new ones, or checked user-given ones."""
    if ax is None:
        ncols = min(n_panels, 3)
        nrows = -(-n_panels // ncols)
        fig = Figure(
            figsize=(width * ncols + 2.5, height * nrows), layout="constrained"
        )
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for extra in axes[n_panels:]:
            extra.set_visible(False)
        return fig, axes[:n_panels]
    axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
    if len(axes) < n_panels:
        raise ValueError(
            f"ax provides {len(axes)} axes but the results have {n_panels} "
            "(dataset, model) panels; pass one Axes per panel or ax=None."
        )
    return axes[0].figure, axes[:n_panels]


def plot_learning_curves(results, path=None, ax=None, *, metric="accuracy"):
    """Plot mean learning curves with +-1 std bands over seeds.

    One panel per (dataset, model) experiment, one line per strategy, test
    ``metric`` against the number of labeled points (as in paper 001, Fig. 3).

    Parameters
    ----------
    results : DataFrame
        Tidy results with columns ``dataset, model, strategy, seed, round,
        n_labeled`` and ``metric``.
    path : str or path-like, default=None
        If given, the figure is saved there (format from the suffix, e.g.
        ``.png`` or ``.pdf``).
    ax : Axes or array of Axes, default=None
        Axes to draw into, one per panel; by default a new Figure is made.
    metric : str, default="accuracy"
        Column plotted.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the panels.
    """
    summary = summarize(results, metric=metric)
    panels = list(summary.groupby(list(EXPERIMENT), sort=True))
    if not panels:
        raise ValueError("results has no rows with a non-missing metric to plot.")
    fig, axes = _panel_axes(ax, len(panels), width=6.0, height=4.5)
    strategies = sorted(summary["strategy"].unique(), key=str)
    styles = _line_styles(strategies)  # the same in every panel
    band_alpha = 0.2 if len(strategies) <= 6 else 0.07  # many bands would hide lines
    for axis, ((dataset, model), panel) in zip(axes, panels):
        for strategy, curve in panel.groupby("strategy", sort=True):
            curve = curve.sort_values("n_labeled")
            x, mean = curve["n_labeled"], curve[f"{metric}_mean"]
            std = curve[f"{metric}_std"].fillna(0.0)
            color, linestyle = styles[strategy]
            axis.plot(
                x,
                mean,
                marker=".",
                label=str(strategy),
                color=color,
                linestyle=linestyle,
            )
            axis.fill_between(x, mean - std, mean + std, alpha=band_alpha, color=color)
        axis.set(title=f"{dataset} ({model})", xlabel="labeled points", ylabel=metric)
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    # One legend for all panels, outside them, so that no curve is hidden.
    fig.legend(
        handles,
        labels,
        loc="outside right upper",
        fontsize="small",
        ncols=1 + len(labels) // 16,
    )
    return _save(fig, path)


def plot_penalty_matrix(P, path=None, *, title=None):
    """Heatmap of a pairwise penalty matrix with its loss-score bars.

    As in paper 001, Fig. 5: the top panel shows ``P`` (rows win, columns lose),
    the bottom panel the loss scores (column means; lower is better), sorted.

    Parameters
    ----------
    P : DataFrame
        Square penalty matrix from :func:`skal.experiments.penalty_matrix`.
    path : str or path-like, default=None
        If given, the figure is saved there (``.png``, ``.pdf``, ...).
    title : str, default=None
        Title over the heatmap.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure with the two panels.
    """
    _check_square(P)
    if P.shape[0] == 0:
        raise ValueError("P is empty: there is no strategy to plot.")
    names = [str(s) for s in P.index]
    k = len(names)
    size = (max(4.0, 0.9 * k + 2), max(6.0, 1.4 * k + 2))
    fig = Figure(figsize=size, layout="constrained")
    heat_ax, bar_ax = fig.subplots(2, 1, height_ratios=[3, 2])
    values = P.to_numpy(dtype=float)
    image = heat_ax.imshow(values, cmap="viridis", vmin=0)
    fig.colorbar(image, ax=heat_ax, shrink=0.8)
    heat_ax.set_xticks(range(k), names, rotation=45, ha="right")
    heat_ax.set_yticks(range(k), names)
    heat_ax.set(
        xlabel="loser", ylabel="winner", title=title or "Pairwise penalty matrix"
    )
    threshold = values.max() / 2 if values.max() > 0 else np.inf
    for i in range(k):
        for j in range(k):
            color = "black" if values[i, j] > threshold else "white"
            heat_ax.text(
                j, i, f"{values[i, j]:.2f}", ha="center", va="center", color=color
            )
    scores = loss_scores(P).sort_values(kind="stable")
    bar_ax.bar([str(s) for s in scores.index], scores.to_numpy(), color="tab:blue")
    bar_ax.set(ylabel="loss score (lower is better)")
    bar_ax.tick_params(axis="x", rotation=45)
    return _save(fig, path)


def timing_table(results, *, column="acquisition_seconds", by="dataset"):
    """Median per-round seconds for each strategy and dataset (paper 001, Table 2).

    Parameters
    ----------
    results : DataFrame
        Tidy results with columns ``strategy``, ``by`` and ``column`` (the
        runner writes ``acquisition_seconds`` and ``training_seconds``).
    column : str, default="acquisition_seconds"
        Timing column to summarize.
    by : str, default="dataset"
        Column whose values become the table's columns.

    Returns
    -------
    table : DataFrame
        Rows are strategies, columns the values of ``by``; each cell is the
        median of ``column`` over seeds and rounds (NaN where never run).
    """
    _check_results(results, ["strategy", by, column])
    if not pd.api.types.is_numeric_dtype(results[column]):
        raise ValueError(f"column {column!r} must be numeric seconds.")
    table = results.pivot_table(
        index="strategy", columns=by, values=column, aggfunc="median"
    )
    table.columns.name = f"median {column} by {by}"
    return table
