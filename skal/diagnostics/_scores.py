"""Acquisition scores under distribution shift (paper 001, Figure 2).

Histograms of a ranking strategy's scores on several sets, e.g. the test set of
the training distribution and an out-of-distribution set. With two sets the panel
also reports the AUROC of telling them apart by the score: 0.5 means the score
does not react to the shift, 1 that every out-of-distribution point outscores
every in-distribution one.
"""

from collections.abc import Mapping

import numpy as np
from sklearn.metrics import roc_auc_score

from ._common import STRATEGY_COLORS, panel_grid


def plot_score_histograms(strategies, datasets, *, bins=50, density=False, log=False):
    """Histograms of acquisition scores on several sets (paper 001, Figure 2).

    Parameters
    ----------
    strategies : QueryStrategy or dict of str to QueryStrategy
        Fitted ranking strategies (``strategy.fit(X_labeled, y_labeled,
        estimator=...)``); one panel per strategy.
    datasets : dict of str to array-like
        Sets to score, by legend label, e.g. ``{"MNIST (in)": X_in, "CIFAR-10
        gray (out)": X_out}``. The first is taken as in-distribution for the AUROC
        shown when there are exactly two.
    bins : int, default=50
        Bins over the range of all scores of a panel (shared by its sets).
    density : bool, default=False
        Plot densities instead of counts (for sets of different sizes).
    log : bool, default=False
        Logarithmic count axis.

    Returns
    -------
    fig : matplotlib.figure.Figure

    References
    ----------
    Gradient-Discrepancy Acquisition for Pool-Based Active Learning, arXiv
    2605.02609 (2026), section 4.1 and Figure 2.
    """
    if not isinstance(strategies, Mapping):
        strategies = {type(strategies).__name__: strategies}
    if not strategies:
        raise ValueError("strategies is empty: pass at least one fitted strategy.")
    if not isinstance(datasets, Mapping) or not datasets:
        raise TypeError(
            "datasets must be a non-empty dict {label: X}, e.g. "
            "{'in-distribution': X_test, 'out-of-distribution': X_ood}."
        )
    fig, axes = panel_grid(len(strategies), ncols=min(len(strategies), 3), width=4.6)
    for ax, (name, strategy) in zip(axes, strategies.items()):
        scores = {label: _scores(strategy, name, X) for label, X in datasets.items()}
        _draw_histograms(ax, scores, bins, density, log)
        ax.set_title(name + _auroc_note(scores))
        ax.set_xlabel("acquisition score")
        ax.set_ylabel("density" if density else "count")
    # The sets are the same in every panel: one legend below them all.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 3),
        frameon=False,
    )
    return fig


def _scores(strategy, name, X):
    try:
        return strategy.score(X)
    except NotImplementedError as exc:
        raise TypeError(
            f"Strategy {name!r} ({type(strategy).__name__}) selects points jointly "
            f"and has no per-point score; use a ranking strategy (grad, entropy, "
            f"margin, ...)."
        ) from exc


def _draw_histograms(ax, scores, bins, density, log):
    values = np.concatenate(list(scores.values()))
    edges = np.histogram_bin_edges(values, bins=bins)
    medians = []
    for k, (label, s) in enumerate(scores.items()):
        color = STRATEGY_COLORS[k % len(STRATEGY_COLORS)]
        ax.hist(
            s,
            bins=edges,
            density=density,
            log=log,
            color=color,
            alpha=0.45,
            label=f"{label} (n={len(s)})",
        )
        ax.axvline(np.median(s), color=color, linestyle="--", linewidth=1.2)
        medians.append(f"{np.median(s):.3g}")
    ax.text(
        0.98,
        0.97,
        "medians (dashed):\n" + " / ".join(medians),
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize="small",
    )


def _auroc_note(scores):
    if len(scores) != 2:
        return ""
    inside, outside = scores.values()
    labels = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    auroc = roc_auc_score(labels, np.r_[inside, outside])
    return f"\nAUROC(out vs in) = {auroc:.2f}"
