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
