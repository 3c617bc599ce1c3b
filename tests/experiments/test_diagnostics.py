"""Tests for ``skal bench --diagnostics`` and the round figures of ``skal report``."""

import copy
import json
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.linear_model import LogisticRegression

from skal import ActiveLearner
from skal.callbacks import Callback
from skal.experiments import _benchmark, _report, run_benchmark, write_report
from skal.experiments._monitors import RoundDiagnostics
from skal.experiments._plots import (
    plot_round_class_accuracy,
    plot_round_class_balance,
    plot_round_confidence,
)
from skal.experiments._results import load_diagnostics
from skal.nets import MLPClassifier

CELL = "digits__logreg__margin__0.csv"
QUANTITIES = {
    "class_accuracy",
    "labeled_count",
    "max_proba_labeled",
    "max_proba_unlabeled",
}
FIGURES = ["round_class_accuracy", "round_class_balance", "round_confidence"]


class _KeepRounds(Callback):
    """A copy of every round's model and rows (for the hand computations)."""

    def on_fit_begin(self, learner, **kwargs):
        self.rounds_ = []

    def on_round_end(
        self, learner, *, estimator, labeled_indices, labels, unlabeled_indices, **kw
    ):
        self.rounds_.append(
            (copy.deepcopy(estimator), labeled_indices.copy(), labels.copy(),
             unlabeled_indices.copy())
        )  # fmt: skip


# ------------------------------------------------------------- the callback
@pytest.fixture(scope="module")
def recorded():
    """A 4-class LogisticRegression run with RoundDiagnostics, rerun by hand."""
    X, y = make_classification(
        n_samples=400, n_features=5, n_informative=4, n_redundant=0, n_classes=4,
        n_clusters_per_class=1, random_state=0,
    )  # fmt: skip
    X_test, y_test = X[300:], y[300:]
    learner = ActiveLearner(
        LogisticRegression(max_iter=200), "margin", batch_size=6, n_rounds=3,
        random_state=0, callbacks=[RoundDiagnostics(classes=[0, 1, 2, 3]),
                                   _KeepRounds()],
    ).fit(X[:300], y[:300], eval_set=(X_test, y_test))  # fmt: skip
    diagnostics, kept = learner.callbacks_
    return dict(
        table=diagnostics.to_frame(), rounds=kept.rounds_, X=X[:300],
        X_test=X_test, y_test=y_test, history=learner.history_,
    )  # fmt: skip


def _values(table, round_, quantity):
    rows = table[(table["round"] == round_) & (table["quantity"] == quantity)]
    return dict(zip(rows["key"], rows["value"]))


def test_class_accuracy_and_counts_equal_a_hand_computation(recorded):
    table, y_test = recorded["table"], recorded["y_test"]
    assert sorted(table["round"].unique()) == [0, 1, 2, 3]
    for round_, (model, labeled, labels, _) in enumerate(recorded["rounds"]):
        predicted = model.predict(recorded["X_test"])
        expected = {}
        for c in (0, 1, 2, 3):
            rows = [i for i in range(len(y_test)) if y_test[i] == c]
            expected[str(c)] = sum(predicted[i] == c for i in rows) / len(rows)
        assert _values(table, round_, "class_accuracy") == pytest.approx(expected)
        # The classes' recalls, weighted by their sizes, are the cell's accuracy.
        sizes = np.bincount(y_test)
        recall = np.array([expected[str(c)] for c in range(4)])
        accuracy = recorded["history"]["eval_score"][round_]
        assert recall @ sizes / sizes.sum() == pytest.approx(accuracy)
        counts = Counter(labels.tolist())
        assert _values(table, round_, "labeled_count") == {
            str(c): counts.get(c, 0) for c in (0, 1, 2, 3)
        }
        assert len(labeled) == 6 * (round_ + 1)


def test_confidence_histograms_count_every_row_in_its_bin(recorded):
    table, X = recorded["table"], recorded["X"]
    for round_, (model, labeled, _, unlabeled) in enumerate(recorded["rounds"]):
        confidence = model.predict_proba(X).max(axis=1)
        for quantity, rows in (
            ("max_proba_labeled", labeled),
            ("max_proba_unlabeled", unlabeled),
        ):
            histogram = _values(table, round_, quantity)
            assert list(histogram) == [f"{k / 20:.6g}" for k in range(20)]
            expected = [0] * 20
            for p in confidence[rows]:
                expected[min(int(p * 20), 19)] += 1  # [k/20, (k+1)/20); 1.0 last
            assert list(histogram.values()) == expected
            assert sum(histogram.values()) == len(rows)
        assert len(labeled) + len(unlabeled) == len(X)


def test_round_diagnostics_without_eval_set_or_proba_record_what_they_can():
    X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    learner = ActiveLearner(
        LogisticRegression(), "random", batch_size=10, n_rounds=1,
        random_state=0, callbacks=[RoundDiagnostics()],
    ).fit(X, y)  # fmt: skip
    table = learner.callbacks_[0].to_frame()
    assert set(table["quantity"]) == QUANTITIES - {"class_accuracy"}
    # Without eval_set nor classes: the labels seen, sorted.
    counts = _values(table, 0, "labeled_count")
    assert list(counts) == sorted(counts) and sum(counts.values()) == 10
    with pytest.raises(ValueError, match="bins must be an integer"):
        ActiveLearner(
            LogisticRegression(), "random", batch_size=10, n_rounds=1,
            callbacks=[RoundDiagnostics(bins=0)],
        ).fit(X, y)  # fmt: skip


# ------------------------------------------------------------- skal bench
@pytest.fixture(scope="module")
def small_digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return {"digits": (X[:500], y[:500], X[500:700], y[500:700])}


def _run(data, out, **params):
    defaults = dict(
        strategies=["random", "margin"], seeds=2, n_rounds=3, batch_size=10,
        estimator=LogisticRegression(tol=1e-2, max_iter=100), model="logreg",
        output_dir=out, report=False, torch_threads=1, progress=False,
        print_fn=None,
    )  # fmt: skip
    return run_benchmark(data, **{**defaults, **params})


def _no_curves(monkeypatch):
    """Only the round figures: the others take most of a report's time."""
    monkeypatch.setattr(_report, "_plot_metric", lambda *args, **kwargs: [])


@pytest.fixture(scope="module")
def benched(small_digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _no_curves(monkeypatch)
        report = _run(small_digits, out / "on", diagnostics=True, report=True)
    _run(small_digits, out / "off")
    return out, report


def test_bench_writes_a_diagnostics_file_per_cell_and_the_same_cells(benched):
    out, _ = benched
    cells = sorted(p.name for p in (out / "on" / "cells").glob("*.csv"))
    assert len(cells) == 4
    assert sorted(p.name for p in (out / "on" / "diagnostics").glob("*")) == cells
    assert not (out / "off" / "diagnostics").exists()
    for name in cells:
        on = pd.read_csv(out / "on" / "cells" / name)
        off = pd.read_csv(out / "off" / "cells" / name)
        assert list(on.columns) == list(off.columns)  # no extra cell column
        for column in ("round", "n_labeled", "accuracy"):
            np.testing.assert_array_equal(on[column], off[column])
    table = pd.read_csv(out / "on" / "diagnostics" / CELL)
    assert list(table.columns) == ["round", "quantity", "key", "value"]
    assert set(table["quantity"]) == QUANTITIES
    counts = table[table["quantity"] == "labeled_count"]
    assert counts.groupby("round")["value"].sum().tolist() == [10, 20, 30, 40]
    assert sorted(counts["key"].unique()) == list(range(10))  # every pool class
    # 450 pool rows (10 % are the validation split): labeled + unlabeled.
    hist = table[table["quantity"].str.startswith("max_proba")]
    assert (hist.groupby("round")["value"].sum() == 450).all()
    config = json.loads((out / "on" / "config.json").read_text())
    assert config["protocol"]["diagnostics"] is True


def test_the_report_draws_the_round_figures(benched, monkeypatch):
    out, report = benched
    names = [f"{stem}__digits__logreg.png" for stem in FIGURES]
    for name in names:
        assert (out / "on" / name).stat().st_size > 10_000, name
        assert out / "on" / name in report.files
    assert "round_confidence__*.png" in report.summary
    assert "Round diagnostics (--diagnostics) of 4 cells" in report.summary
    assert report.diagnostics.rounds == [0, 1, 3]
    assert report.diagnostics.missing == []
    # A report restricted to one strategy draws only its cells.
    _no_curves(monkeypatch)
    restricted = write_report(out / "on", strategies=["random"], print_fn=None)
    assert set(restricted.diagnostics.table["strategy"]) == {"random"}
    # No diagnostics: no figure, no line.
    plain = write_report(out / "off", print_fn=None)
    assert plain.diagnostics is None and "round_" not in plain.summary


def test_diagnostics_do_not_change_a_network_cell(tmp_path):
    # A torch net (forward passes, dropout for BALD's Monte-Carlo passes).
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16.0).astype(np.float32)
    data = {"digits": (X[:200], y[:200], X[200:], y[200:300])}
    net = MLPClassifier(
        hidden_layer_sizes=(16,), max_epochs=2, batch_size=16, dropout=0.1, lr=0.05
    )
    for on in (True, False):
        _run(
            data, tmp_path / str(on), estimator=net, model="mlp",
            strategies=["bald"], seeds=1, n_rounds=2, lr=0.05, diagnostics=on,
        )  # fmt: skip
    cell = "cells/digits__mlp__bald__0.csv"
    on, off = (pd.read_csv(tmp_path / str(on) / cell) for on in (True, False))
    np.testing.assert_array_equal(on["accuracy"], off["accuracy"])
    assert (tmp_path / "True" / "diagnostics" / cell.split("/")[1]).exists()


def test_a_lost_diagnostics_file_is_reported_not_recomputed(
    small_digits, tmp_path, monkeypatch
):
    _run(small_digits, tmp_path, diagnostics=True)
    (tmp_path / "diagnostics" / CELL).unlink()
    calls = []
    real = _benchmark.run_cell

    def counting(estimator, strategy, seed, data, **kwargs):
        calls.append((strategy, seed))
        return real(estimator, strategy, seed, data, **kwargs)

    monkeypatch.setattr(_benchmark, "run_cell", counting)
    _no_curves(monkeypatch)
    with pytest.warns(UserWarning, match="1 finished cell.*not recomputed"):
        _run(small_digits, tmp_path, diagnostics=True, seeds=3)
    assert sorted(calls) == [("margin", 2), ("random", 2)]  # the new seed only
    assert not (tmp_path / "diagnostics" / CELL).exists()
    loaded = load_diagnostics(tmp_path)
    assert loaded.missing == [CELL]
    assert len(loaded.table.groupby(["strategy", "seed"])) == 5
    report = write_report(tmp_path, print_fn=None)
    assert "WARNING: 1 finished cells" in report.summary and CELL in report.summary
    assert (tmp_path / "round_class_accuracy__digits__logreg.png").exists()
    # The only way back: delete the cell, the rerun recomputes both files.
    (tmp_path / "cells" / CELL).unlink()
    calls.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run(small_digits, tmp_path, diagnostics=True, seeds=3)
    assert not [w for w in caught if "diagnostics file" in str(w.message)]
    assert calls == [("margin", 0)]
    assert load_diagnostics(tmp_path).missing == []


def test_a_run_without_diagnostics_resumes_only_without(small_digits, tmp_path):
    _run(small_digits, tmp_path, strategies=["random"], seeds=1)
    with pytest.raises(ValueError, match="diagnostics: False -> True"):
        _run(small_digits, tmp_path, strategies=["random"], seeds=1, diagnostics=True)
    assert load_diagnostics(tmp_path).missing == []  # nothing was asked for


# ------------------------------------------------------------- the figures
def _table(**columns):
    keys = dict(dataset="d", model="m")
    return pd.DataFrame({**keys, **columns})


def test_round_figures_average_over_seeds():
    # Two seeds, two rounds, classes a and b: recall and counts by hand.
    rows = [
        # seed, round, quantity, key, value
        (0, 0, "class_accuracy", "a", 0.2), (1, 0, "class_accuracy", "a", 0.4),
        (0, 0, "class_accuracy", "b", 1.0), (1, 0, "class_accuracy", "b", 0.6),
        (0, 1, "class_accuracy", "a", 0.5), (1, 1, "class_accuracy", "a", 0.7),
        (0, 1, "class_accuracy", "b", 0.9), (1, 1, "class_accuracy", "b", 0.9),
        (0, 0, "labeled_count", "a", 1), (1, 0, "labeled_count", "a", 3),
        (0, 0, "labeled_count", "b", 3), (1, 0, "labeled_count", "b", 1),
        (0, 1, "labeled_count", "a", 2), (1, 1, "labeled_count", "a", 8),
        (0, 1, "labeled_count", "b", 6), (1, 1, "labeled_count", "b", 0),
    ]  # fmt: skip
    seed, round_, quantity, key, value = zip(*rows)
    table = _table(
        strategy="s", seed=seed, round=round_, quantity=quantity, key=key, value=value
    )
    fig = plot_round_class_accuracy(table)
    mesh = fig.axes[0].collections[0].get_array()
    np.testing.assert_allclose(mesh.reshape(2, 2), [[0.3, 0.6], [0.8, 0.9]])
    assert "worst class a (0.60)" in fig.axes[0].get_title()
    fig = plot_round_class_balance(table)
    mesh = fig.axes[0].collections[0].get_array()
    # Shares per seed, then their mean: a = (1/4 + 3/4)/2, (2/8 + 8/8)/2.
    np.testing.assert_allclose(mesh.reshape(2, 2), [[0.5, 0.625], [0.5, 0.375]])


def test_confidence_figure_pools_the_seeds_per_group():
    edges = [f"{k / 4:.6g}" for k in range(4)]
    rows = []
    for seed, labeled, unlabeled in ((0, [0, 0, 1, 1], [4, 2, 2, 0]),
                                     (1, [0, 0, 0, 2], [2, 2, 0, 4])):  # fmt: skip
        for round_ in (0, 1, 2, 3, 4):
            for quantity, counts in (
                ("max_proba_labeled", labeled),
                ("max_proba_unlabeled", unlabeled),
            ):
                rows += [(seed, round_, quantity, k, c) for k, c in zip(edges, counts)]
    seed, round_, quantity, key, value = zip(*rows)
    table = _table(
        strategy="s", seed=seed, round=round_, quantity=quantity, key=key, value=value
    )
    fig = plot_round_confidence(table)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in axes]  # rows per seed: 2 labeled, 8 not
    assert titles == [f"round {r}: 2 labeled, 8 unlabeled" for r in (0, 2, 4)]
    unlabeled, _, labeled, _ = axes[0].patches  # filled, outline per group
    np.testing.assert_allclose(labeled.get_data().values, [0, 0, 1 / 4, 3 / 4])
    np.testing.assert_allclose(
        unlabeled.get_data().values, [3 / 8, 2 / 8, 1 / 8, 2 / 8]
    )
    np.testing.assert_allclose(labeled.get_data().edges, [0, 0.25, 0.5, 0.75, 1])


def test_round_figures_check_their_input():
    table = _table(
        strategy=["s"], seed=[0], round=[0], quantity=["labeled_count"], key=["a"],
        value=[1.0],
    )  # fmt: skip
    with pytest.raises(ValueError, match="no class_accuracy rows"):
        plot_round_class_accuracy(table)
    two = pd.concat([table, table.assign(dataset="other")])
    with pytest.raises(ValueError, match="2 \\(dataset, model\\) experiments"):
        plot_round_class_balance(two)
    with pytest.raises(ValueError, match="None of the strategies"):
        plot_round_class_balance(table, strategies=["other"])
