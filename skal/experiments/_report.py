"""The report of a results directory (``skal report``): tables, plots, summary.

:func:`write_report` aggregates the finished cells of one or several results
directories as in paper 001, section 4.5 (penalty matrices, loss scores, AULC),
plots learning curves and heatmaps, writes the timing tables, flags training
collapses (:func:`find_collapses`) and prints a summary.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.utils import Bunch

from ._aggregate import area_under_learning_curve, loss_scores, penalty_matrix
from ._plots import (
    plot_aulc_ranking,
    plot_learning_curves,
    plot_penalty_matrix,
    timing_table,
)
from ._results import CELLS, load_results, write_atomic
from ._runner import RESULT_COLUMNS

VIEWS = ("all", "early", "late")


def find_collapses(results, *, drop=0.1):
    """Rounds whose accuracy fell by more than ``drop`` from the previous round.

    With SGD momentum, too high a learning rate can make a round's model
    collapse; such a drop looks like an acquisition failure of whatever strategy
    ran (DESIGN.md). Check this before reading a comparison.

    Parameters
    ----------
    results : DataFrame
        Tidy results.
    drop : float, default=0.1
        Absolute accuracy drop that counts as a collapse.

    Returns
    -------
    collapses : DataFrame
        One row per collapse: ``dataset, model, strategy, seed, round,
        n_labeled, accuracy, previous_accuracy, drop``.
    """
    keys = ["dataset", "model", "strategy", "seed"]
    ordered = results.sort_values([*keys, "round"])
    previous = ordered.groupby(keys)["accuracy"].shift()
    out = ordered.assign(
        previous_accuracy=previous, drop=previous - ordered["accuracy"]
    )
    out = out[out["drop"] > drop]
    cols = [*keys, "round", "n_labeled", "accuracy", "previous_accuracy", "drop"]
    return out[cols].reset_index(drop=True)


def _rounds_view(view):
    """Acquisition rounds (round 0 excluded) of a penalty-matrix view.

    Round 0 is the same model for every strategy of a seed, so it can never
    separate two strategies; counting it would only dilute the 1/n_rounds wins.
    The early and late views are the first and second halves, as in
    :func:`skal.experiments.penalty_matrix`.
    """

    def select(rounds):
        acquired = rounds[rounds > 0] if (rounds > 0).any() else rounds
        n = len(acquired)
        return {
            "all": acquired,
            "early": acquired[: (n + 1) // 2],
            "late": acquired[n // 2 :],
        }[view]

    return select


def _aulc_table(results):
    """Mean and std over seeds of the normalized AULC, strategies x datasets."""
    aulc = area_under_learning_curve(results)
    stats = aulc.groupby(["dataset", "model", "strategy"])["aulc"].agg(["mean", "std"])
    return aulc, stats.reset_index()


def _format_aulc(stats):
    text = stats.assign(
        value=[
            f"{m:.3f} ± {0 if np.isnan(s) else s:.3f}"
            for m, s in zip(stats["mean"], stats["std"])
        ],
        experiment=stats["dataset"] + " (" + stats["model"] + ")",
    )
    table = text.pivot(index="strategy", columns="experiment", values="value")
    order = stats.groupby("strategy")["mean"].mean().sort_values(ascending=False)
    return table.loc[order.index]


def _plot_curves(results, stem):
    """Learning curves, one wide panel per experiment; PNG and PDF."""
    n = results.groupby(["dataset", "model"]).ngroups
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(7.5 * ncols, 5.5 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for extra in axes[n:]:
        extra.set_visible(False)
    # plot_learning_curves gives each strategy its own color and line style and
    # draws one legend outside the panels.
    plot_learning_curves(results, ax=axes[:n])
    # Every strategy ranked by AULC (the curves highlight only the best few).
    ranking = plot_aulc_ranking(results)
    return _save_both(fig, stem) + _save_both(
        ranking, Path(stem).with_name("aulc_ranking")
    )


def _save_both(fig, stem):
    paths = [Path(f"{stem}.png"), Path(f"{stem}.pdf")]
    for path in paths:
        fig.savefig(path, bbox_inches="tight", dpi=130)
    return paths


def write_report(
    output_dir, *, sources=None, strategies=None, drop=0.1, print_fn=print
):
    """Aggregate, plot and summarize a results directory (``skal report``).

    Reads every finished cell (of ``output_dir``, or of several ``sources``) and
    writes, in ``output_dir``:

    - ``results.csv``: the tidy table of all cells;
    - ``aulc.csv`` (per seed) and ``aulc_summary.csv`` (mean, std over seeds);
    - ``penalty_matrix_{all,early,late}.csv`` and ``loss_scores.csv``: paper 001,
      section 4.5, over the acquisition rounds (round 0 is the same for every
      strategy), summed over experiments; early/late are the two halves;
    - ``timing_acquisition.csv`` (median seconds per acquisition round) and
      ``timing_training.csv`` (median seconds per training);
    - ``collapses.csv``: rounds whose accuracy fell by more than ``drop``;
    - ``learning_curves.{png,pdf}`` (mean and +-1 std over seeds) and
      ``penalty_matrix_{all,early,late}.{png,pdf}`` (heatmap and loss scores);
    - ``summary.txt``: the printed summary.

    Parameters
    ----------
    output_dir : str or path-like
        A directory written by :func:`run_benchmark`, or where to write the
        combined report of ``sources``.
    sources : sequence of str or path-like, default=None
        Results directories to combine (None: ``output_dir`` itself). Runs whose
        protocols differ (e.g. text and tabular data) are combined this way: each
        (dataset, model) is its own experiment of the penalty matrix, whose
        matrices are summed over experiments. A (dataset, model) found in two
        sources is refused.
    strategies : sequence of str, default=None
        Report only these strategies (None: all). The penalty matrix depends on
        which strategies are compared (its multiple-testing correction runs over
        their pairs).
    drop : float, default=0.1
        Threshold of :func:`find_collapses`.
    print_fn : callable, default=print
        Where the summary is printed (``None`` for silence).

    Returns
    -------
    report : Bunch
        ``results``, ``aulc``, ``aulc_summary``, ``penalty_matrices`` (dict by
        view), ``loss_scores`` (DataFrame, one column per view), ``timing``,
        ``collapses``, ``files`` (list of written paths) and ``summary`` (str).
    """
    print_fn = print_fn or (lambda *a, **k: None)
    out = Path(output_dir)
    sources = [out] if sources is None else [Path(s) for s in sources]
    results = _combined_results(sources)
    if strategies is not None:
        results = results[results["strategy"].isin(list(strategies))]
    if results.empty:
        where = ", ".join(str(s / CELLS) for s in sources)
        raise FileNotFoundError(f"No finished cells in {where}.")
    out.mkdir(parents=True, exist_ok=True)
    files = []

    def save(frame, name, index=False):
        write_atomic(out / name, lambda f: frame.to_csv(f, index=index))
        files.append(out / name)

    save(results, "results.csv")
    aulc, aulc_stats = _aulc_table(results)
    save(aulc, "aulc.csv")
    save(aulc_stats, "aulc_summary.csv")
    matrices = {v: penalty_matrix(results, rounds=_rounds_view(v)) for v in VIEWS}
    scores = pd.DataFrame({v: loss_scores(P) for v, P in matrices.items()})
    scores.index.name = "strategy"
    for view, P in matrices.items():
        save(P, f"penalty_matrix_{view}.csv", index=True)
    save(scores, "loss_scores.csv", index=True)
    acquired = results[results["round"] > 0]  # round 0 has no acquisition step
    timing = timing_table(acquired) if len(acquired) else pd.DataFrame()
    save(timing, "timing_acquisition.csv", index=True)
    save(
        timing_table(results, column="training_seconds"),
        "timing_training.csv",
        index=True,
    )
    collapses = find_collapses(results, drop=drop)
    save(collapses, "collapses.csv")

    files += _plot_curves(results, out / "learning_curves")
    n_experiments = results.groupby(["dataset", "model"]).ngroups
    for view, P in matrices.items():
        title = (
            f"Penalty matrix, {view} acquisition rounds ({n_experiments} experiments)"
        )
        fig = plot_penalty_matrix(P, title=title)
        files += _save_both(fig, out / f"penalty_matrix_{view}")

    skipped = [
        pd.read_csv(source / "skipped.csv", dtype=str)
        for source in sources
        if (source / "skipped.csv").exists()
    ]
    skipped = pd.concat(skipped, ignore_index=True) if skipped else None
    summary = _summary_text(
        out, results, aulc_stats, scores, timing, collapses, drop, skipped
    )
    if sources != [out]:
        summary = f"Combined from: {', '.join(map(str, sources))}\n{summary}"
    write_atomic(out / "summary.txt", lambda f: f.write(summary + "\n"))
    files.append(out / "summary.txt")
    print_fn(summary)
    return Bunch(
        results=results,
        aulc=aulc,
        aulc_summary=aulc_stats,
        penalty_matrices=matrices,
        loss_scores=scores,
        timing=timing,
        collapses=collapses,
        files=files,
        summary=summary,
    )


def _combined_results(sources):
    """The cells of several results directories; an experiment must not repeat."""
    tables = [load_results(source) for source in sources]
    owner = {}
    for source, table in zip(sources, tables):
        for experiment in table.groupby(["dataset", "model"]).groups:
            if experiment in owner:
                raise ValueError(
                    f"Experiment {experiment} is in both {owner[experiment]} and "
                    f"{source}: combine runs of different experiments only."
                )
            owner[experiment] = source
    tables = [t for t in tables if len(t)]
    if not tables:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return pd.concat(tables, ignore_index=True)


def _summary_text(out, results, aulc_stats, scores, timing, collapses, drop, skipped):
    n_cells = results.groupby(["dataset", "model", "strategy", "seed"]).ngroups
    n_seeds = results.groupby(["dataset", "model", "strategy"])["seed"].nunique()
    lines = [
        f"Results in {out}: {n_cells} finished cells, "
        f"{results['strategy'].nunique()} strategies, {n_seeds.min()}-"
        f"{n_seeds.max()} seeds per strategy.",
        "",
    ]
    if (out / "learning_rates.csv").exists():
        rates = pd.read_csv(out / "learning_rates.csv", dtype=str)
        lines += [
            "Learning rates: "
            + ", ".join(f"{r.dataset} {r.lr} ({r.source})" for r in rates.itertuples()),
            "",
        ]
    lines += [
        "Area under the learning curve (mean test accuracy over the labeling "
        "budget), mean ± std over seeds:",
        _format_aulc(aulc_stats).to_string(),
        "",
        "Loss scores (column means of the penalty matrix over the acquisition "
        "rounds; lower is better):",
        scores.sort_values("all").round(3).to_string(),
        "",
        "Median acquisition seconds per round:",
        timing.round(4).to_string() if len(timing) else "(no acquisition rounds)",
        "",
    ]
    if len(collapses):
        lines += [
            f"WARNING: {len(collapses)} round-to-round accuracy drops > {drop} "
            "(possible training collapses; see collapses.csv):",
            collapses.round(3).head(20).to_string(index=False),
        ]
    else:
        lines.append(f"No round-to-round accuracy drop > {drop} (no collapses).")
    if skipped is not None and len(skipped):
        lines += ["", "Skipped (failed a trial round with this model and data):"]
        lines += [
            f"  {r.strategy} on {r.dataset} ({r.model}): {r.reason}"
            for r in skipped.itertuples()
        ]
    run_files = ""
    if (out / CELLS).is_dir():  # a run's own directory, not a combined report
        run_files = (
            "cells/, lr_sweep.csv, learning_rates.csv, skipped.csv, config.json, "
        )
    lines += [
        "",
        f"Files: {out / 'results.csv'}, aulc*.csv, penalty_matrix_*.csv/png/pdf, "
        "loss_scores.csv, timing_*.csv, collapses.csv, learning_curves.png/pdf, "
        f"{run_files}summary.txt.",
    ]
    return "\n".join(lines)
