"""Tests for the penalty matrix, AULC and summaries (skal.experiments)."""

import numpy as np
import pandas as pd
import pytest

from skal.experiments import (
    area_under_learning_curve,
    loss_scores,
    penalty_matrix,
    summarize,
    win_scores,
)


def _rows(dataset, rnd, accs, model="mlp"):
    """Rows for one round: ``accs`` maps strategy -> accuracy per seed."""
    return [
        dict(dataset=dataset, model=model, strategy=s, seed=seed, round=rnd,
             n_labeled=100 * (rnd + 1), accuracy=acc)
        for s, values in accs.items()
        for seed, acc in enumerate(values)
    ]  # fmt: skip


def _p_df2(diff):
    """Two-sided paired t-test p-value for 3 seeds (df = 2), in closed form:
    P(|T| > t) = 1 - t / sqrt(t^2 + 2)."""
    d = np.asarray(diff, dtype=float)
    t = abs(d.mean()) / (d.std(ddof=1) / np.sqrt(3))
    return 1 - t / np.sqrt(t**2 + 2)


A0 = np.array([0.80, 0.82, 0.84])
A1 = np.array([0.85, 0.86, 0.88])


def _hand_table():
    rows = []
    # Experiment d1: two rounds, so each win is worth 1/2.
    # Round 0: A-B = [.10,.11,.12] (t = 19.05, p = .00274); A-C = [.01,.03,-.01]
    # (t = .866, p = .4778); B-C = [-.09,-.08,-.13] (t = -6.547, p = .02255).
    # BH over 3 p-values: .00274*3 = .0082, .02255*3/2 = .0338, .4778 -> A>B, C>B.
    rows += _rows("d1", 0, {"A": A0, "B": A0 - [0.10, 0.11, 0.12],
                            "C": A0 - [0.01, 0.03, -0.01]})  # fmt: skip
    # Round 1: A-B = [.04,.05,.07] (p = .0263), B-C = [-.03,-.07,-.055]
    # (p = .0474), A-C = [.01,-.02,.015] (p = .893). Both small p-values are below
    # .05 raw, but BH gives min(.0263*3, .0474*3/2) = .0711 for both: no win.
    rows += _rows("d1", 1, {"A": A1, "B": A1 - [0.04, 0.05, 0.07],
                            "C": A1 - [0.01, -0.02, 0.015]})  # fmt: skip
    # Experiment d2: one round, each win is worth 1. C equals A exactly (no test
    # result, p treated as 1); B beats A and C with p = .00274 each; BH:
    # .00274*3/2 = .0041 < .05 -> B>A and B>C.
    rows += _rows("d2", 0, {"A": A0, "B": A0 + [0.20, 0.21, 0.22], "C": A0})
    return pd.DataFrame(rows)


def test_penalty_matrix_hand_computed_example():
    assert _p_df2([0.10, 0.11, 0.12]) == pytest.approx(0.002743, abs=1e-6)
    assert _p_df2([-0.09, -0.08, -0.13]) == pytest.approx(0.022547, abs=1e-6)
    assert _p_df2([0.04, 0.05, 0.07]) < 0.05 and _p_df2([-0.03, -0.07, -0.055]) < 0.05
    P = penalty_matrix(_hand_table())
    expected = pd.DataFrame(
        [[0.0, 0.5, 0.0], [1.0, 0.0, 1.0], [0.0, 0.5, 0.0]],
        index=["A", "B", "C"],
        columns=["A", "B", "C"],
    )
    np.testing.assert_allclose(P.to_numpy(), expected.to_numpy(), atol=1e-12)
    assert list(P.index) == list(P.columns) == ["A", "B", "C"]
    np.testing.assert_allclose(loss_scores(P), [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(win_scores(P), [1 / 6, 2 / 3, 1 / 6])
    # Without the correction round 1 of d1 would add A>B and C>B wins.
    loose = penalty_matrix(_hand_table(), alpha=0.08)
    assert loose.loc["A", "B"] == pytest.approx(1.0)
    assert loose.loc["C", "B"] == pytest.approx(1.0)


def test_identical_results_give_no_win_and_no_nan():
    acc = [0.5, 0.6, 0.7]
    table = pd.DataFrame(_rows("d", 0, {"A": acc, "B": acc, "C": acc}))
    P = penalty_matrix(table)
    assert not P.isna().any().any() and (P.to_numpy() == 0).all()


def test_too_few_common_seeds_are_not_tested():
    single = pd.DataFrame(_rows("d", 0, {"A": [0.9], "B": [0.1]}))
    assert (penalty_matrix(single).to_numpy() == 0).all()
    rows = _rows("d", 0, {"A": [0.9, 0.91, 0.92], "B": [0.1, 0.11, 0.12]})
    table = pd.DataFrame(rows)
    table.loc[table.strategy == "B", "seed"] += 2  # only seed 2 is shared
    assert (penalty_matrix(table).to_numpy() == 0).all()
    table.loc[(table.strategy == "A") & (table.seed == 0), "accuracy"] = np.nan
    assert (penalty_matrix(table).to_numpy() == 0).all()


def test_constant_difference_counts_as_a_win():
    a = np.array([0.5, 0.6, 0.7])
    P = penalty_matrix(pd.DataFrame(_rows("d", 0, {"A": a + 0.25, "B": a})))
    assert P.loc["A", "B"] == 1.0 and P.loc["B", "A"] == 0.0


def _late_winner_table(n_rounds, winning_rounds):
    rows = []
    for r in range(n_rounds):
        gap = [0.1, 0.11, 0.13] if r in winning_rounds else [0.0, 0.0, 0.0]
        rows += _rows("d", r, {"A": A0 + gap, "B": A0})
    return pd.DataFrame(rows)


def test_round_selection():
    table = _late_winner_table(4, {2, 3})
    assert penalty_matrix(table).loc["A", "B"] == pytest.approx(0.5)
    assert penalty_matrix(table, rounds="all").loc["A", "B"] == pytest.approx(0.5)
    assert penalty_matrix(table, rounds="early").loc["A", "B"] == 0
    assert penalty_matrix(table, rounds="late").loc["A", "B"] == pytest.approx(1.0)
    assert penalty_matrix(table, rounds=[0, 3]).loc["A", "B"] == pytest.approx(0.5)
    last = penalty_matrix(table, rounds=lambda r: r[-1:])
    assert last.loc["A", "B"] == pytest.approx(1.0)
    middle = _late_winner_table(3, {1})  # odd count: the middle round is in both
    assert penalty_matrix(middle, rounds="early").loc["A", "B"] == pytest.approx(0.5)
    assert penalty_matrix(middle, rounds="late").loc["A", "B"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="rounds must be"):
        penalty_matrix(table, rounds="middle")


def test_penalty_matrix_validation():
    table = _hand_table()
    with pytest.raises(ValueError, match="missing the required column"):
        penalty_matrix(table.drop(columns="seed"))
    with pytest.raises(ValueError, match="missing the required column"):
        penalty_matrix(table, metric="f1")
    with pytest.raises(TypeError, match="DataFrame"):
        penalty_matrix(table.to_numpy())
    with pytest.raises(ValueError, match="alpha"):
        penalty_matrix(table, alpha=1.5)
    with pytest.raises(ValueError, match="one row per combination"):
        penalty_matrix(pd.concat([table, table.iloc[:1]]))
    with pytest.raises(ValueError, match="square"):
        loss_scores(pd.DataFrame([[0.0, 1.0]], index=["A"], columns=["A", "B"]))


def test_area_under_learning_curve():
    base = dict(dataset="d", model="m", strategy="s", seed=0)
    curve = [(10, 0.5), (20, 0.7), (40, 0.8)]
    rows = [
        dict(base, round=r, n_labeled=n, accuracy=a) for r, (n, a) in enumerate(curve)
    ]
    rows.append(dict(rows[0], seed=1))  # a one-point curve
    table = pd.DataFrame(rows)
    aulc = area_under_learning_curve(table)
    # trapezoids: 10 * 0.6 + 20 * 0.75 = 21 over a range of 30 labels.
    assert aulc["aulc"].tolist() == pytest.approx([0.7, 0.5])
    assert list(aulc.columns) == ["dataset", "model", "strategy", "seed", "aulc"]
    raw = area_under_learning_curve(table, normalize=False)
    assert raw["aulc"].tolist() == pytest.approx([21.0, 0.0])
    with pytest.raises(ValueError, match="n_labeled"):
        area_under_learning_curve(table.drop(columns="n_labeled"))


def test_summarize():
    table = _hand_table()
    table["extra"] = "ignored"
    summary = summarize(table)
    row = summary[(summary.dataset == "d1") & (summary.strategy == "A")]
    row = row[row["round"] == 0].iloc[0]
    assert row["accuracy_mean"] == pytest.approx(0.82)
    assert row["accuracy_std"] == pytest.approx(0.02)
    assert row["n_seeds"] == 3 and row["n_labeled"] == 100
    assert len(summary) == 9
