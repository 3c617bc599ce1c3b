"""Plots and tables of active-learning results (paper 001, Figs. 3-5, Table 2).

The round figures (``plot_round_*``) draw the tables ``skal bench
--diagnostics`` records (paper 002, Figs. 7-8, and the labeled set's class
balance), averaged over seeds; :mod:`skal.diagnostics` draws the same views
from one learner's fitted models.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through
``pyplot``, so no global figure state is created or leaked and no GUI backend is
needed; ``Figure.savefig`` writes PNG with Agg and PDF with the PDF backend.
"""

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from ._aggregate import (
    EXPERIMENT,
    _check_results,
    _check_square,
    area_under_learning_curve,
    loss_scores,
    summarize,
)
from ._monitors import (
    CLASS_ACCURACY,
    LABELED_COUNT,
    MAX_PROBA_LABELED,
    MAX_PROBA_UNLABELED,
)

__all__ = [
    "plot_aulc_ranking",
    "plot_learning_curves",
    "plot_penalty_matrix",
    "plot_round_class_accuracy",
    "plot_round_class_balance",
    "plot_round_confidence",
    "timing_table",
]

# With more strategies than this, learning curves show the baseline and the best
# few in color and the rest in grey (20 colored curves cannot be told apart).
N_HIGHLIGHT = 5
_BASELINE_STYLE = dict(color="black", linestyle="--", linewidth=2.2)
_OTHER_STYLE = dict(color="0.72", linestyle="-", linewidth=0.9, alpha=0.8)


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


def aulc_ranking(results, *, metric="accuracy"):
    """Strategies ranked by their mean normalized area under the learning curve.

    The mean is over seeds and (dataset, model) experiments: the mean ``metric``
    over the labeling budget. Returns a DataFrame indexed by strategy (best
    first) with columns ``aulc_mean`` and ``aulc_std`` (over seeds and
    experiments; NaN for a single run).
    """
    aulc = area_under_learning_curve(results, metric=metric)
    table = aulc.groupby("strategy")["aulc"].agg(aulc_mean="mean", aulc_std="std")
    return table.sort_values("aulc_mean", ascending=False, kind="stable")


def _curve_styles(ranking, baseline, n_highlight):
    """Style per strategy: the baseline black dashed, the best few in color,
    and, when there are many, the others grey (no band, no own legend entry)."""
    names = list(ranking.index)
    others = [name for name in names if name != baseline]
    many = len(others) > n_highlight
    best = others[:n_highlight] if many else others
    palette = colormaps["tab10"].colors if many else _COLORS
    styles = {
        name: dict(color=palette[i % len(palette)], linestyle="-", linewidth=1.6)
        for i, name in enumerate(best)
    }
    for name in others[len(best) :]:
        styles[name] = dict(_OTHER_STYLE)
    if baseline in names:
        styles[baseline] = dict(_BASELINE_STYLE)
    return styles, set(best) | ({baseline} & set(names))


def plot_learning_curves(
    results,
    path=None,
    ax=None,
    *,
    metric="accuracy",
    baseline="random",
    n_highlight=N_HIGHLIGHT,
):
    """Plot mean learning curves with +-1 std bands over seeds.

    One panel per (dataset, model) experiment, one line per strategy, test
    ``metric`` against the number of labeled points (as in paper 001, Fig. 3).
    The baseline is drawn black and dashed. With more than ``n_highlight``
    other strategies, only the best ``n_highlight`` by mean AULC (area under the
    learning curve) are in color with bands; the rest are thin grey lines, and,
    on a new figure, a ranked AULC bar chart of every strategy is added (see
    :func:`plot_aulc_ranking`). The legend lists strategies best first, with
    their AULC.

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
    baseline : str, default="random"
        Strategy drawn as the reference (black, dashed), if present.
    n_highlight : int, default=5
        Strategies besides the baseline drawn in color when there are more.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the panels.
    """
    summary = summarize(results, metric=metric)
    panels = list(summary.groupby(list(EXPERIMENT), sort=True))
    if not panels:
        raise ValueError("results has no rows with a non-missing metric to plot.")
    ranking = aulc_ranking(results, metric=metric)
    styles, highlighted = _curve_styles(ranking, baseline, n_highlight)
    many = len(highlighted) < len(ranking)
    extra = 1 if (many and ax is None) else 0
    fig, axes = _panel_axes(ax, len(panels) + extra, width=6.0, height=4.5)
    band_alpha = 0.2 if len(highlighted) <= 6 else 0.07  # many bands hide lines
    # Grey lines first, so that the highlighted ones are drawn over them.
    order = sorted(ranking.index, key=lambda name: (name in highlighted, name))
    for axis, ((dataset, model), panel) in zip(axes, panels):
        curves = dict(tuple(panel.groupby("strategy", sort=True)))
        for strategy in order:
            if strategy not in curves:
                continue
            curve = curves[strategy].sort_values("n_labeled")
            x, mean = curve["n_labeled"], curve[f"{metric}_mean"]
            style = styles[strategy]
            shown = strategy in highlighted
            aulc = ranking.loc[strategy, "aulc_mean"]
            axis.plot(
                x,
                mean,
                marker="." if shown else None,
                label=f"{strategy} ({aulc:.3f})" if shown else "_other",
                zorder=3 if shown else 1,
                **style,
            )
            if shown:
                std = curve[f"{metric}_std"].fillna(0.0)
                axis.fill_between(
                    x, mean - std, mean + std, alpha=band_alpha, color=style["color"]
                )
        axis.set(title=f"{dataset} ({model})", xlabel="labeled points", ylabel=metric)
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    rank = {
        f"{s} ({ranking.loc[s, 'aulc_mean']:.3f})": i
        for i, s in enumerate(ranking.index)
    }
    pairs = sorted(
        [(h, label) for h, label in zip(handles, labels) if label in rank],
        key=lambda pair: rank[pair[1]],
    )
    if many:
        from matplotlib.lines import Line2D

        n_other = len(ranking) - len(highlighted)
        pairs.append(
            (Line2D([], [], **_OTHER_STYLE), f"{n_other} other strategies (grey)")
        )
    # One legend for all panels, outside them, so that no curve is hidden.
    fig.legend(
        [h for h, _ in pairs],
        [label for _, label in pairs],
        loc="outside right upper",
        fontsize="small",
        title=f"best first (mean AULC, {metric})",
        title_fontsize="small",
        ncols=1 + len(pairs) // 16,
    )
    if extra:
        plot_aulc_ranking(results, ax=axes[-1], metric=metric, baseline=baseline)
    return _save(fig, path)


def plot_aulc_ranking(
    results, path=None, ax=None, *, metric="accuracy", baseline="random"
):
    """Horizontal bars of every strategy's mean AULC, best on top.

    The area under the learning curve, normalized by the labeling budget (the
    mean ``metric`` over it), averaged over seeds and experiments; error bars
    are one standard deviation. The baseline's bar is black, and a dashed line
    marks its value so that strategies below it stand out.

    Parameters
    ----------
    results : DataFrame
        Tidy results (see :func:`plot_learning_curves`).
    path : str or path-like, default=None
        If given, the figure is saved there.
    ax : Axes, default=None
        Axes to draw into; by default a new Figure is made.
    metric : str, default="accuracy"
    baseline : str, default="random"

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    ranking = aulc_ranking(results, metric=metric)
    if ranking.empty:
        raise ValueError("results has no rows with a non-missing metric to plot.")
    if ax is None:
        fig = Figure(figsize=(6.5, 1.2 + 0.32 * len(ranking)), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    names = [str(name) for name in ranking.index]
    means = ranking["aulc_mean"].to_numpy()
    stds = ranking["aulc_std"].fillna(0.0).to_numpy()
    colors = ["black" if name == baseline else "tab:blue" for name in names]
    positions = np.arange(len(names))[::-1]  # best on top
    ax.barh(positions, means, xerr=stds, color=colors, alpha=0.85, capsize=2)
    ax.set_yticks(positions, names, fontsize="small")
    for y, mean in zip(positions, means):
        ax.text(mean, y, f" {mean:.3f}", va="center", fontsize="x-small")
    if baseline in names:
        ax.axvline(means[names.index(baseline)], color="black", linestyle="--", lw=1)
    low = max(0.0, (means - stds).min() - 0.05 * (means.max() - means.min() + 1e-9))
    ax.set_xlim(low, (means + stds).max() + 0.1 * (means.max() - low + 1e-9))
    ax.set(
        xlabel=f"mean AULC ({metric} over the labeling budget)",
        title="Strategies ranked by AULC",
    )
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_penalty_matrix(P, path=None, *, title=None, baseline="random"):
    """Heatmap of a pairwise penalty matrix with its loss-score bars.

    As in paper 001, Fig. 5: the top panel shows ``P`` (rows win, columns lose),
    the bottom panel the loss scores (column means; lower is better). Strategies
    are ordered by loss score (best first) on both axes, so that the structure
    shows; cells without a win (mostly, between many strategies) are left blank
    instead of printing "0.00" everywhere, and only non-zero cells are labeled.

    Parameters
    ----------
    P : DataFrame
        Square penalty matrix from :func:`skal.experiments.penalty_matrix`.
    path : str or path-like, default=None
        If given, the figure is saved there (``.png``, ``.pdf``, ...).
    title : str, default=None
        Title over the heatmap.
    baseline : str, default="random"
        Strategy whose loss-score bar is drawn black, if present.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure with the two panels.
    """
    _check_square(P)
    if P.shape[0] == 0:
        raise ValueError("P is empty: there is no strategy to plot.")
    scores = loss_scores(P).sort_values(kind="stable")
    P = P.loc[scores.index, scores.index]
    names = [str(s) for s in P.index]
    k = len(names)
    size = (max(4.0, 0.55 * k + 3), max(6.0, 0.9 * k + 3))
    fig = Figure(figsize=size, layout="constrained")
    heat_ax, bar_ax = fig.subplots(2, 1, height_ratios=[3, 2])
    values = P.to_numpy(dtype=float)
    cmap = colormaps["viridis"].with_extremes(bad="white")
    shown = np.ma.masked_where(values <= 0, values)
    image = heat_ax.imshow(shown, cmap=cmap, vmin=0, vmax=max(values.max(), 1e-12))
    fig.colorbar(image, ax=heat_ax, shrink=0.8, label="penalty (blank: 0)")
    heat_ax.set_xticks(range(k), names, rotation=45, ha="right")
    heat_ax.set_yticks(range(k), names)
    heat_ax.set_xticks(np.arange(k + 1) - 0.5, minor=True)
    heat_ax.set_yticks(np.arange(k + 1) - 0.5, minor=True)
    heat_ax.grid(which="minor", color="0.9", linewidth=0.5)
    heat_ax.tick_params(which="minor", length=0)
    heat_ax.set(
        xlabel="loser", ylabel="winner", title=title or "Pairwise penalty matrix"
    )
    threshold = values.max() / 2 if values.max() > 0 else np.inf
    fontsize = "small" if k <= 10 else "x-small"
    for i, j in zip(*np.nonzero(values > 0)):
        color = "black" if values[i, j] > threshold else "white"
        heat_ax.text(
            j,
            i,
            _short_number(values[i, j]),
            ha="center",
            va="center",
            color=color,
            fontsize=fontsize,
        )
    colors = ["black" if name == baseline else "tab:blue" for name in names]
    bar_ax.bar(names, scores.to_numpy(), color=colors)
    bar_ax.set(ylabel="loss score (lower is better)")
    bar_ax.tick_params(axis="x", rotation=45)
    for label in bar_ax.get_xticklabels():
        label.set_horizontalalignment("right")
    return _save(fig, path)


def _short_number(value):
    """``0.35`` -> ``.35``, ``1.5`` -> ``1.5``: narrow cell labels."""
    text = f"{value:.2f}" if value < 10 else f"{value:.0f}"
    return text[1:] if text.startswith("0.") else text


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


# ------------------------------------------------------------ round diagnostics
_DIAGNOSTIC_KEYS = ["dataset", "model", "strategy", "seed", "round", "quantity"]


def _experiment_table(diagnostics, quantities, strategies):
    """The rows of ``quantities`` of one (dataset, model); the strategies drawn."""
    _check_results(diagnostics, [*_DIAGNOSTIC_KEYS, "key", "value"], "diagnostics")
    experiments = diagnostics.groupby(list(EXPERIMENT)).ngroups
    if experiments != 1:
        raise ValueError(
            f"diagnostics holds {experiments} (dataset, model) experiments; give "
            f"the rows of one (the report draws one figure per experiment)."
        )
    table = diagnostics[diagnostics["quantity"].isin(quantities)]
    if table.empty:
        raise ValueError(
            f"diagnostics has no {' or '.join(quantities)} rows (recorded by skal "
            f"bench --diagnostics)."
        )
    present = list(pd.unique(table["strategy"]))
    if strategies is None:
        strategies = sorted(present)
    strategies = [s for s in strategies if s in present]
    if not strategies:
        raise ValueError(f"None of the strategies has diagnostics; found {present}.")
    return table, strategies


def _class_grids(table, quantity, strategies):
    """Per strategy a classes x rounds array of the mean value over seeds."""
    rows = table[table["quantity"] == quantity]
    classes = list(pd.unique(rows["key"]))  # recorded in the pool's class order
    rounds = np.sort(rows["round"].unique())
    grids = {}
    for strategy in strategies:
        own = rows[rows["strategy"] == strategy]
        if quantity == LABELED_COUNT:  # counts -> shares of the labeled set
            total = own.groupby(["seed", "round"])["value"].transform("sum")
            own = own.assign(value=own["value"] / total.where(total > 0))
        mean = own.pivot_table(index="key", columns="round", values="value")
        grids[strategy] = mean.reindex(index=classes, columns=rounds).to_numpy()
    return grids, classes, rounds


def _edges(values):
    """Cell edges around sorted positions (midpoints; +-0.5 at the ends)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return values[0] + np.array([-0.5, 0.5])
    middle = (values[:-1] + values[1:]) / 2
    return np.concatenate([[values[0] - 0.5], middle, [values[-1] + 0.5]])


def _round_heatmaps(grids, classes, rounds, *, cmap, norm, colorbar, title, caption):
    """One classes x rounds heat map per strategy, with one shared color bar."""
    n = len(grids)
    ncols = min(n, 4)
    nrows = -(-n // ncols)
    height = min(max(2.4, 0.9 + 0.2 * len(classes)), 6.5)
    fig = Figure(
        figsize=(3.9 * ncols + 1.2, height * nrows + 0.8), layout="constrained"
    )
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for extra in axes[n:]:
        extra.set_visible(False)
    step = max(1, -(-len(classes) // 25))  # at most ~25 class labels
    for i, (ax, (strategy, grid)) in enumerate(zip(axes, grids.items())):
        mesh = ax.pcolormesh(
            _edges(rounds),
            np.arange(len(classes) + 1) - 0.5,
            np.ma.masked_invalid(grid),
            cmap=cmap,
            norm=norm,
        )
        ax.set_yticks(range(0, len(classes), step), classes[::step], fontsize="small")
        ax.invert_yaxis()  # the first class on top, as in a table
        ax.set_title(f"{strategy}\n{caption(grid, classes)}", fontsize="medium")
        if i % ncols == 0:
            ax.set_ylabel("class")
        if i >= n - ncols:
            ax.set_xlabel("round")
    fig.colorbar(mesh, ax=axes[:n], shrink=0.9, label=colorbar)
    fig.suptitle(title)
    return fig


def plot_round_class_accuracy(diagnostics, path=None, *, strategies=None):
    """Test accuracy of each class across rounds, mean over seeds (paper 002, Fig. 8).

    One heat map per strategy: classes down, rounds across, color = the
    fraction of the class's test rows predicted right (recall), averaged over
    seeds. Panel titles give the last round's balanced accuracy (mean recall)
    and its worst class.

    Parameters
    ----------
    diagnostics : DataFrame
        Round diagnostics of one (dataset, model): columns ``dataset, model,
        strategy, seed, round, quantity, key, value``
        (:func:`skal.experiments._results.load_diagnostics`).
    path : str or path-like, default=None
        If given, the figure is saved there.
    strategies : sequence of str, default=None
        Panels, in order (default: every strategy, sorted).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    table, strategies = _experiment_table(diagnostics, [CLASS_ACCURACY], strategies)
    grids, classes, rounds = _class_grids(table, CLASS_ACCURACY, strategies)

    def caption(grid, classes):
        last = grid[:, -1]
        worst = int(np.nanargmin(last))
        return (
            f"last round: balanced acc {np.nanmean(last):.2f}, worst class "
            f"{classes[worst]} ({last[worst]:.2f})"
        )

    dataset, model = table.iloc[0][["dataset", "model"]]
    fig = _round_heatmaps(
        grids,
        classes,
        rounds,
        cmap="viridis",
        norm=Normalize(0.0, 1.0),
        colorbar="test accuracy of the class (recall), mean over seeds",
        title=f"Per-class test accuracy across rounds: {dataset} ({model})",
        caption=caption,
    )
    return _save(fig, path)


def plot_round_class_balance(diagnostics, path=None, *, strategies=None):
    """The labeled set's class shares across rounds, mean over seeds.

    One heat map per strategy: classes down, rounds across, color = the
    class's share of the labeled set (mean over seeds) on a diverging scale
    centered on the uniform share ``1 / n_classes`` (white): red classes are
    over-represented, blue ones under-represented. Panel titles give the last
    round's largest/smallest class count ratio.

    Parameters
    ----------
    diagnostics : DataFrame
        See :func:`plot_round_class_accuracy`.
    path : str or path-like, default=None
    strategies : sequence of str, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    table, strategies = _experiment_table(diagnostics, [LABELED_COUNT], strategies)
    grids, classes, rounds = _class_grids(table, LABELED_COUNT, strategies)
    uniform = 1.0 / len(classes)
    largest = max(np.nanmax(grid) for grid in grids.values())
    norm = TwoSlopeNorm(vcenter=uniform, vmin=0.0, vmax=max(largest, 2 * uniform))

    def caption(grid, classes):
        last = grid[:, -1]
        ratio = (
            "inf"
            if np.nanmin(last) == 0
            else f"{np.nanmax(last) / np.nanmin(last):.1f}"
        )
        return f"last round: largest/smallest class {ratio}"

    dataset, model = table.iloc[0][["dataset", "model"]]
    fig = _round_heatmaps(
        grids,
        classes,
        rounds,
        cmap="RdBu_r",
        norm=norm,
        colorbar=f"share of the labeled set (white: uniform, {uniform:.3g})",
        title=f"Labeled set per class across rounds: {dataset} ({model})",
        caption=caption,
    )
    return _save(fig, path)


def confidence_rounds(rounds):
    """The first, middle and last of the recorded rounds (fewer if fewer)."""
    rounds = np.sort(np.unique(rounds))
    picked = [rounds[0], rounds[(len(rounds) - 1) // 2], rounds[-1]]
    return list(dict.fromkeys(int(r) for r in picked))


def plot_round_confidence(diagnostics, path=None, *, strategies=None, rounds=None):
    """Max-probability histograms of labeled and unlabeled rows (paper 002, Fig. 7).

    One row of panels per strategy, one column per round (default: the first,
    middle and last round); each panel shows the fraction of the labeled and
    of the unlabeled pool rows per bin of the model's largest class
    probability, counts summed over seeds.

    Parameters
    ----------
    diagnostics : DataFrame
        See :func:`plot_round_class_accuracy`.
    path : str or path-like, default=None
    strategies : sequence of str, default=None
    rounds : sequence of int, default=None
        Columns (default: :func:`confidence_rounds` of the recorded rounds).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    styles = {
        MAX_PROBA_UNLABELED: dict(label="unlabeled rows", color="tab:blue"),
        MAX_PROBA_LABELED: dict(label="labeled rows", color="tab:orange"),
    }
    table, strategies = _experiment_table(diagnostics, list(styles), strategies)
    rounds = confidence_rounds(table["round"]) if rounds is None else list(rounds)
    left = np.sort(pd.unique(table["key"]).astype(float))  # bins' left edges
    fig = Figure(
        figsize=(3.3 * len(rounds) + 0.6, 1.75 * len(strategies) + 1.0),
        layout="constrained",
    )
    axes = fig.subplots(len(strategies), len(rounds), squeeze=False, sharex=True)
    counts = table.groupby(["strategy", "round", "quantity", "key"])["value"].sum()
    cells = table.groupby("strategy")["seed"].nunique()
    for i, strategy in enumerate(strategies):
        for j, round_ in enumerate(rounds):
            ax = axes[i, j]
            sizes = [
                _draw_confidence(ax, counts, (strategy, round_, quantity), left, style)
                / cells[strategy]
                for quantity, style in styles.items()
            ]
            ax.set_xlim(0.0, 1.0)
            ax.grid(alpha=0.3)
            ax.set_title(
                f"round {round_}: {sizes[1]:.0f} labeled, {sizes[0]:.0f} unlabeled",
                fontsize="small",
            )
            if j == 0:
                ax.set_ylabel(f"{strategy}\nfraction of rows", fontsize="small")
            if i == len(strategies) - 1:
                ax.set_xlabel("max class probability")
    dataset, model = table.iloc[0][["dataset", "model"]]
    n_seeds = int(cells.max())
    fig.suptitle(
        f"Model confidence on labeled and unlabeled rows: {dataset} ({model}); "
        f"{n_seeds} seed{'s' if n_seeds > 1 else ''} pooled, rows per seed in "
        f"the panel titles"
    )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    return _save(fig, path)


def _draw_confidence(ax, counts, key, left, style):
    """One group's histogram as fractions of its rows; returns its row count."""
    try:
        per_bin = counts.loc[key]
    except KeyError:  # not recorded (e.g. no unlabeled row left)
        return 0.0
    per_bin = per_bin.set_axis(per_bin.index.astype(float))
    per_bin = per_bin.reindex(left, fill_value=0.0).to_numpy()
    total = per_bin.sum()
    fraction = per_bin / max(total, 1.0)
    edges = np.append(left, 1.0)
    ax.stairs(fraction, edges, fill=True, alpha=0.4, **style)
    ax.stairs(fraction, edges, color=style["color"])  # the outline
    return total
