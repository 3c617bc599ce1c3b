"""The report of a results directory (``skal report``): tables, plots, summary.

:func:`write_report` aggregates the finished cells of one or several results
directories as in paper 001, section 4.5 (penalty matrices, loss scores, AULC),
plots learning curves and heatmaps, writes the timing tables, flags training
collapses (:func:`find_collapses`) and prints a summary; for cells run with
``--evaluate ssl`` the same aggregates of the semi-supervised score, for
``--stopping`` where each stopping criterion would have stopped, for
``--diagnostics`` the round figures (per-class accuracy, class balance,
confidence histograms).
"""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import kendalltau
from sklearn.utils import Bunch

from ._aggregate import (
    area_under_learning_curve,
    loss_scores,
    penalty_matrix,
    stopping_points,
    summarize_stopping,
)
from ._monitors import SSL_COLUMN, SSL_SECONDS
from ._plots import (
    aulc_ranking,
    confidence_rounds,
    plot_aulc_ranking,
    plot_learning_curves,
    plot_penalty_matrix,
    plot_round_class_accuracy,
    plot_round_class_balance,
    plot_round_confidence,
    timing_table,
)
from ._results import (
    CELLS,
    DIAGNOSTICS,
    _safe,
    load_diagnostics,
    load_results,
    write_atomic,
)
from ._runner import RESULT_COLUMNS

VIEWS = ("all", "early", "late")
SSL_PREFIX = "ssl_"  # files of the semi-supervised score
#: The best stopping point of a cell: its first round within this of the final
#: accuracy (issue 19).
STOPPING_TOLERANCE = 0.01


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


def _aulc_table(results, metric="accuracy"):
    """Mean and std over seeds of the normalized AULC, strategies x datasets."""
    aulc = area_under_learning_curve(results, metric=metric)
    stats = aulc.groupby(["dataset", "model", "strategy"])["aulc"].agg(["mean", "std"])
    return aulc, stats.reset_index()


def _metric_tables(results, metric="accuracy"):
    """AULC, penalty matrices (all/early/late) and loss scores of one score."""
    aulc, aulc_stats = _aulc_table(results, metric)
    matrices = {
        view: penalty_matrix(results, rounds=_rounds_view(view), metric=metric)
        for view in VIEWS
    }
    scores = pd.DataFrame({view: loss_scores(P) for view, P in matrices.items()})
    scores.index.name = "strategy"
    return Bunch(
        aulc=aulc,
        aulc_summary=aulc_stats,
        penalty_matrices=matrices,
        loss_scores=scores,
    )


def _save_metric_tables(save, tables, prefix=""):
    save(tables.aulc, f"{prefix}aulc.csv")
    save(tables.aulc_summary, f"{prefix}aulc_summary.csv")
    for view, P in tables.penalty_matrices.items():
        save(P, f"{prefix}penalty_matrix_{view}.csv", index=True)
    save(tables.loss_scores, f"{prefix}loss_scores.csv", index=True)


def _plot_metric(results, tables, out, prefix="", metric="accuracy"):
    """Learning curves, AULC ranking and penalty matrices of one score."""
    files = _plot_curves(
        results, out / f"{prefix}learning_curves", out / f"{prefix}aulc_ranking", metric
    )
    n_experiments = results.groupby(["dataset", "model"]).ngroups
    score = "" if metric == "accuracy" else f" ({metric})"
    for view, P in tables.penalty_matrices.items():
        title = (
            f"Penalty matrix{score}, {view} acquisition rounds ({n_experiments} "
            f"experiments)"
        )
        fig = plot_penalty_matrix(P, title=title)
        files += _save_both(fig, out / f"{prefix}penalty_matrix_{view}")
    return files


def _ranking_comparison(results):
    """Strategies ranked by mean AULC under both scores, per experiment.

    Only rows with both scores count (with ``--ssl-every k`` the supervised
    AULC is then over the same rounds as the semi-supervised one).
    """
    both = results.dropna(subset=[SSL_COLUMN])
    tables = []
    for (dataset, model), experiment in both.groupby(["dataset", "model"]):
        aulc = {
            metric: area_under_learning_curve(experiment, metric=metric)
            .groupby("strategy")["aulc"]
            .mean()
            for metric in ("accuracy", SSL_COLUMN)
        }
        table = pd.DataFrame({f"aulc_{m}": v for m, v in aulc.items()}).dropna()
        for metric in aulc:
            table[f"rank_{metric}"] = table[f"aulc_{metric}"].rank(
                ascending=False, method="min"
            )
        tau, pvalue = (np.nan, np.nan)
        if len(table) >= 2:
            tau, pvalue = kendalltau(
                table["aulc_accuracy"], table[f"aulc_{SSL_COLUMN}"]
            )
        table.insert(0, "model", model)
        table.insert(0, "dataset", dataset)
        tables.append(table.assign(kendall_tau=tau, kendall_p_value=pvalue))
    if not tables:
        return pd.DataFrame()
    table = pd.concat(tables).reset_index(names="strategy")
    first = ["dataset", "model", "strategy"]
    return table[first + [c for c in table.columns if c not in first]]


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


def _plot_curves(results, stem, ranking_stem, metric="accuracy"):
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
    plot_learning_curves(results, ax=axes[:n], metric=metric)
    # Every strategy ranked by AULC (the curves highlight only the best few).
    ranking = plot_aulc_ranking(results, metric=metric)
    return _save_both(fig, stem) + _save_both(ranking, ranking_stem)


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
    - when cells have ``ssl_accuracy`` (``skal bench --evaluate ssl``): the same
      AULC, penalty-matrix, loss-score and learning-curve files for it, named
      with an ``ssl_`` prefix (over the rounds it was evaluated), and
      ``ssl_ranking.csv``: each strategy's mean AULC and rank under both
      scores and the Kendall tau between the rankings, per experiment;
    - when cells have ``stop_*`` columns (``--stopping``): ``stopping_cells.csv``
      (:func:`stopping_points`: where each criterion stopped each cell) and
      ``stopping.csv`` (:func:`summarize_stopping`: mean and std over cells);
    - when cells have diagnostics files (``--diagnostics``), per (dataset,
      model): ``round_class_accuracy__<dataset>__<model>.png`` (per-class test
      accuracy across rounds), ``round_class_balance__...png`` (the labeled
      set's class shares) and ``round_confidence__...png`` (max-probability
      histograms of labeled and unlabeled rows at the first, middle and last
      round), strategies best AULC first, means over seeds. Finished cells
      whose diagnostics file was lost are left out and listed in the summary;
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
        ``collapses``, ``ssl`` (None, or a Bunch with ``results`` (the rows
        with a semi-supervised score) and the four tables above for
        ``ssl_accuracy``), ``ranking_comparison`` (``ssl_ranking.csv`` or
        None), ``stopping`` (None, or a Bunch ``summary``, ``points``),
        ``diagnostics`` (None, or a Bunch ``table`` (the recorded rows),
        ``missing`` (cell files without their diagnostics file), ``files``),
        ``files`` (list of written paths) and ``summary`` (str).
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
    tables = _metric_tables(results)
    _save_metric_tables(save, tables)
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
    ssl, ranking = _semi_supervised_tables(results, save)
    stopping = _stopping_tables(results, save)

    files += _plot_metric(results, tables, out)
    if ssl is not None:
        files += _plot_metric(ssl.results, ssl, out, SSL_PREFIX, SSL_COLUMN)
    diagnostics = _round_diagnostics(sources, results, out)
    if diagnostics is not None:
        files += diagnostics.files

    skipped = [
        pd.read_csv(source / "skipped.csv", dtype=str)
        for source in sources
        if (source / "skipped.csv").exists()
    ]
    skipped = pd.concat(skipped, ignore_index=True) if skipped else None
    summary = _summary_text(
        out,
        results,
        tables,
        timing,
        collapses,
        drop,
        skipped,
        ssl,
        stopping,
        diagnostics,
    )
    if sources != [out]:
        summary = f"Combined from: {', '.join(map(str, sources))}\n{summary}"
    write_atomic(out / "summary.txt", lambda f: f.write(summary + "\n"))
    files.append(out / "summary.txt")
    print_fn(summary)
    return Bunch(
        results=results,
        aulc=tables.aulc,
        aulc_summary=tables.aulc_summary,
        penalty_matrices=tables.penalty_matrices,
        loss_scores=tables.loss_scores,
        timing=timing,
        collapses=collapses,
        ssl=ssl,
        ranking_comparison=ranking,
        stopping=stopping,
        diagnostics=diagnostics,
        files=files,
        summary=summary,
    )


def _semi_supervised_tables(results, save):
    """The ``ssl_`` tables and the ranking comparison, or ``(None, None)``."""
    if SSL_COLUMN not in results or results[SSL_COLUMN].isna().all():
        return None, None
    scored = results.dropna(subset=[SSL_COLUMN])
    ssl = _metric_tables(scored, SSL_COLUMN)
    ssl.results = scored
    _save_metric_tables(save, ssl, SSL_PREFIX)
    ranking = _ranking_comparison(results)
    save(ranking, "ssl_ranking.csv")
    ssl.ranking = ranking
    ssl.timing = None
    if SSL_SECONDS in scored:  # cells written before the column have none
        ssl.timing = timing_table(
            scored.dropna(subset=[SSL_SECONDS]), column=SSL_SECONDS
        )
        save(ssl.timing, "timing_ssl.csv", index=True)
    return ssl, ranking


def _stopping_tables(results, save):
    """``stopping.csv`` (per criterion) and ``stopping_cells.csv``, or None."""
    points = stopping_points(results, tolerance=STOPPING_TOLERANCE)
    if points.empty:
        return None
    summary = summarize_stopping(points)
    save(summary, "stopping.csv")
    save(points, "stopping_cells.csv")
    return Bunch(summary=summary, points=points)


def _round_diagnostics(sources, results, out):
    """The round figures of the cells with diagnostics files, or None.

    Only cells in ``results`` count (``strategies=`` restricts them too).
    """
    loaded = [load_diagnostics(source) for source in sources]
    missing = [
        str(Path(source) / CELLS / name)
        for source, found in zip(sources, loaded)
        for name in found.missing
    ]
    tables = [found.table for found in loaded if len(found.table)]
    table = pd.concat(tables, ignore_index=True) if tables else loaded[0].table
    table = table[table["strategy"].isin(results["strategy"].unique())]
    if table.empty and not missing:
        return None
    files = []
    for (dataset, model), experiment in table.groupby(["dataset", "model"]):
        ranked = results[(results["dataset"] == dataset) & (results["model"] == model)]
        order = list(aulc_ranking(ranked).index)  # best first, as the curves
        name = f"{_safe(dataset)}__{_safe(model)}.png"
        for stem, plot in (
            ("round_class_accuracy", plot_round_class_accuracy),
            ("round_class_balance", plot_round_class_balance),
            ("round_confidence", plot_round_confidence),
        ):
            figure = plot(experiment, strategies=order)
            figure.savefig(out / f"{stem}__{name}", bbox_inches="tight", dpi=110)
            files.append(out / f"{stem}__{name}")
    return Bunch(
        table=table,
        missing=missing,
        files=files,
        n_cells=table.groupby(["dataset", "model", "strategy", "seed"]).ngroups,
        rounds=confidence_rounds(table["round"]) if len(table) else [],
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


def _summary_text(
    out,
    results,
    tables,
    timing,
    collapses,
    drop,
    skipped,
    ssl=None,
    stopping=None,
    diagnostics=None,
):
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
        _format_aulc(tables.aulc_summary).to_string(),
        "",
        "Loss scores (column means of the penalty matrix over the acquisition "
        "rounds; lower is better):",
        tables.loss_scores.sort_values("all").round(3).to_string(),
        "",
    ]
    if ssl is not None:
        lines += _semi_supervised_text(ssl)
    if stopping is not None:
        lines += _stopping_text(stopping.summary)
    if diagnostics is not None:
        lines += _diagnostics_text(diagnostics)
    lines += [
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
    extra_files = ""
    if ssl is not None:
        extra_files += "ssl_* (the same for ssl_accuracy), ssl_ranking.csv, "
    if stopping is not None:
        extra_files += "stopping.csv, stopping_cells.csv, "
    if diagnostics is not None and diagnostics.files:
        extra_files += (
            "round_class_accuracy__*.png, round_class_balance__*.png, "
            "round_confidence__*.png, "
        )
    if run_files and (out / DIAGNOSTICS).is_dir():
        run_files += f"{DIAGNOSTICS}/, "
    lines += [
        "",
        f"Files: {out / 'results.csv'}, aulc*.csv, penalty_matrix_*.csv/png/pdf, "
        "loss_scores.csv, timing_*.csv, collapses.csv, learning_curves.png/pdf, "
        f"aulc_ranking.png/pdf, {extra_files}{run_files}summary.txt.",
    ]
    return "\n".join(lines)


def _semi_supervised_text(ssl):
    lines = [
        "Semi-supervised evaluation (ssl_accuracy: a semi-supervised learner fit "
        "on each round's labels and the unlabeled pool, paper 004), AULC mean ± "
        "std over seeds:",
        _format_aulc(ssl.aulc_summary).to_string(),
        "",
        "Loss scores under ssl_accuracy (lower is better):",
        ssl.loss_scores.sort_values("all").round(3).to_string(),
        "",
        "Strategy ranking by mean AULC, supervised vs semi-supervised (rounds "
        "with both scores; Kendall tau, 1 = same order):",
    ]
    for (dataset, model), table in ssl.ranking.groupby(["dataset", "model"], sort=True):
        tau, pvalue = table["kendall_tau"].iloc[0], table["kendall_p_value"].iloc[0]
        lines.append(
            f"  {dataset} ({model}): tau = {tau:.2f} (p = {pvalue:.2g}, "
            f"{len(table)} strategies)"
        )
        for metric, label in (("accuracy", "supervised"), (SSL_COLUMN, "ssl")):
            order = table.sort_values(f"aulc_{metric}", ascending=False, kind="stable")
            lines.append(f"    {label:>10}: " + " > ".join(order["strategy"]))
    if ssl.timing is not None and len(ssl.timing):
        lines += [
            "",
            "Median semi-supervised evaluation seconds per evaluated round:",
            ssl.timing.round(2).to_string(),
        ]
    return lines + [""]


def _diagnostics_text(diagnostics):
    lines = []
    if diagnostics.n_cells:
        lines.append(
            f"Round diagnostics (--diagnostics) of {diagnostics.n_cells} cells, "
            "means over seeds: per-class test accuracy (round_class_accuracy__*), "
            "the labeled set's class shares (round_class_balance__*), "
            "max-probability histograms of labeled and unlabeled rows at rounds "
            f"{', '.join(map(str, diagnostics.rounds))} (round_confidence__*)."
        )
    if diagnostics.missing:
        shown = diagnostics.missing[:5]
        more = len(diagnostics.missing) - len(shown)
        lines.append(
            f"WARNING: {len(diagnostics.missing)} finished cells of runs with "
            "--diagnostics have no diagnostics file (lost after the cell finished; "
            "skal bench does not recompute finished cells): the round figures "
            "leave them out. To recompute them, delete these cell files and rerun "
            "skal bench: " + ", ".join(shown) + (f" and {more} more" if more else "")
        )
    return lines + [""]


def _mean_std(mean, std, digits):
    return f"{mean:.{digits}f} ± {0 if np.isnan(std) else std:.{digits}f}"


def _stopping_text(summary):
    """Per experiment, a table of where the criteria stopped and what it cost."""
    lines = [
        "Stopping criteria (recorded with --stopping, never applied), mean ± std "
        "over cells. A criterion stops at the first round it fired, or at the "
        f"end of the budget if it never fired; best stopping point: the first "
        f"round within {STOPPING_TOLERANCE} of the final accuracy. 'vs best': "
        "labels beyond it (< 0: stopped before it), accuracy below it.",
    ]
    for (dataset, model), table in summary.groupby(["dataset", "model"], sort=True):
        first = table.iloc[0]
        lines.append(
            f"  {dataset} ({model}): budget {first['budget']:.0f} labels, best "
            f"stopping point at "
            f"{_mean_std(first['best_n_labeled_mean'], first['best_n_labeled_std'], 0)}"
            " labels"
        )
        text = pd.DataFrame(
            {
                "never fired": [
                    f"{round(r.never_fired * r.n_cells)}/{r.n_cells}"
                    for r in table.itertuples()
                ],
                "stop at labels": _column(table, "stop_n_labeled", 0),
                "labels saved": _column(table, "labels_saved", 0),
                "accuracy lost": _column(table, "accuracy_lost", 3),
                "labels vs best": _column(table, "labels_vs_best", 0),
                "accuracy vs best": _column(table, "accuracy_lost_vs_best", 3),
            },
            index=table["criterion"].to_numpy(),
        )
        lines += ["    " + line for line in text.to_string().splitlines()]
    return lines + [""]


def _column(table, measure, digits):
    return [
        _mean_std(m, s, digits)
        for m, s in zip(table[f"{measure}_mean"], table[f"{measure}_std"])
    ]
