"""Tests for skal.experiments plots and the timing table."""

import numpy as np
import pandas as pd
import pytest
from matplotlib._pylab_helpers import Gcf
from matplotlib.figure import Figure

from skal.experiments import (
    penalty_matrix,
    plot_learning_curves,
    plot_penalty_matrix,
    timing_table,
)


@pytest.fixture
def results():
    rng = np.random.default_rng(0)
    rows = []
    for dataset in ("isolet", "20ng"):
        for strategy, gain in (("random", 0.0), ("grad", 0.05), ("entropy", 0.02)):
            for seed in range(3):
                for rnd in range(4):
                    rows.append(
                        dict(
                            dataset=dataset,
                            model="mlp",
                            strategy=strategy,
                            seed=seed,
                            round=rnd,
                            n_labeled=100 * (rnd + 1),
                            accuracy=0.5 + 0.1 * rnd + gain + rng.normal(0, 0.01),
                            acquisition_seconds=0.1 * (1 + len(strategy)) + seed,
                            training_seconds=2.0,
                        )
                    )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_learning_curves_written(results, tmp_path, suffix):
    path = tmp_path / f"curves{suffix}"
    fig = plot_learning_curves(results, path)
    assert isinstance(fig, Figure) and path.stat().st_size > 1000
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2 and len(visible[0].get_lines()) == 3
    assert Gcf.get_num_fig_managers() == 0  # no pyplot state


def test_learning_curves_into_given_axes(results):
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert plot_learning_curves(results, ax=axes) is fig
    with pytest.raises(ValueError, match="panels"):
        plot_learning_curves(results, ax=axes[0])


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_penalty_matrix_plot_written(results, tmp_path, suffix):
    path = tmp_path / f"ppm{suffix}"
    fig = plot_penalty_matrix(penalty_matrix(results), path, title="all rounds")
    assert isinstance(fig, Figure) and path.stat().st_size > 1000
    assert Gcf.get_num_fig_managers() == 0


def test_timing_table(results):
    table = timing_table(results)
    assert list(table.index) == ["entropy", "grad", "random"]
    assert sorted(table.columns) == ["20ng", "isolet"]
    assert table.loc["grad", "isolet"] == pytest.approx(0.5 + 1)  # median seed is 1
    train = timing_table(results, column="training_seconds")
    assert (train.to_numpy() == 2.0).all()


def test_missing_columns_are_rejected(results, tmp_path):
    with pytest.raises(ValueError, match="missing the required column.*accuracy"):
        plot_learning_curves(results.drop(columns="accuracy"), tmp_path / "x.png")
    with pytest.raises(ValueError, match="missing the required column.*seed"):
        plot_learning_curves(results.drop(columns="seed"))
    with pytest.raises(ValueError, match="acquisition_seconds"):
        timing_table(results.drop(columns="acquisition_seconds"))
    with pytest.raises(ValueError, match="square"):
        plot_penalty_matrix(pd.DataFrame([[0.0, 1.0]], index=["a"], columns=["a", "b"]))
    assert not (tmp_path / "x.png").exists()


# --- issue 17, item 9: readable figures with many strategies -----------------------------
@pytest.fixture
def many_results():
    """20 strategies on one experiment; s00 best, s19 worst, random in between."""
    rng = np.random.default_rng(0)
    names = [f"s{i:02d}" for i in range(19)] + ["random"]
    gains = {name: 0.02 * (9 - i) for i, name in enumerate(names[:-1])}
    gains["random"] = 0.001
    rows = [
        dict(
            dataset="digits",
            model="mlp",
            strategy=name,
            seed=seed,
            round=rnd,
            n_labeled=10 * (rnd + 1),
            accuracy=0.5 + 0.05 * rnd + gains[name] * rnd + rng.normal(0, 0.002),
        )
        for name in names
        for seed in range(2)
        for rnd in range(5)
    ]
    return pd.DataFrame(rows)


def reference_aulc(results):
    """Mean over seeds of the trapezoid area divided by the budget, by strategy."""
    areas = {}
    for (strategy, _), run in results.groupby(["strategy", "seed"]):
        run = run.sort_values("n_labeled")
        x, y = run["n_labeled"].to_numpy(float), run["accuracy"].to_numpy(float)
        area = np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0])
        areas.setdefault(strategy, []).append(area)
    return pd.Series({k: np.mean(v) for k, v in areas.items()}).sort_values(
        ascending=False
    )


def test_many_strategies_highlight_the_baseline_and_the_best(many_results, tmp_path):
    fig = plot_learning_curves(many_results, tmp_path / "curves.png")
    curves, bars = [ax for ax in fig.axes if ax.get_visible()]
    lines = {line.get_label(): line for line in curves.get_lines()}
    best = list(reference_aulc(many_results).index[:5])
    assert best == ["s00", "s01", "s02", "s03", "s04"]
    colored = [label for label in lines if not label.startswith("_")]
    assert sorted(label.split()[0] for label in colored) == sorted([*best, "random"])
    baseline = next(line for label, line in lines.items() if label.startswith("random"))
    assert baseline.get_color() == "black" and baseline.get_linestyle() == "--"
    greys = [line for line in curves.get_lines() if line.get_label().startswith("_")]
    assert len(greys) == 14 and {line.get_color() for line in greys} == {"0.72"}
    colors = {lines[label].get_color() for label in colored}
    assert len(colors) == 6  # distinct colors for the highlighted curves
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [t.split()[0] for t in legend[:5]] == best  # best first
    assert legend[-1] == "14 other strategies (grey)"
    # The full set is in the ranked AULC bar chart, best on top.
    labels = [t.get_text() for t in bars.get_yticklabels()]
    ranking = list(reference_aulc(many_results).index)
    assert labels == ranking  # tick labels listed top (best) down


def test_aulc_ranking_bars_match_a_brute_force_area(many_results):
    from skal.experiments import plot_aulc_ranking

    fig = plot_aulc_ranking(many_results)
    (axis,) = fig.axes
    widths = sorted((p.get_width() for p in axis.patches), reverse=True)
    np.testing.assert_allclose(widths, reference_aulc(many_results).to_numpy())
    random_bar = [
        p
        for p, t in zip(axis.patches, reversed(axis.get_yticklabels()))
        if t.get_text() == "random"
    ]
    assert len(random_bar) == 1


def test_large_penalty_matrix_labels_only_nonzero_cells(many_results):
    P = penalty_matrix(many_results)
    fig = plot_penalty_matrix(P)
    heat = fig.axes[0]
    texts = [t.get_text() for t in heat.texts]
    assert len(texts) == int((P.to_numpy() > 0).sum()) > 0
    assert "0.00" not in texts
    order = [t.get_text() for t in heat.get_yticklabels()]
    from skal.experiments import loss_scores

    assert order == list(loss_scores(P).sort_values(kind="stable").index)
