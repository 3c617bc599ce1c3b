"""Tests for ``skal bench --evaluate ssl`` / ``--stopping``: cells, loading, report."""

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score
from sklearn.utils import Bunch

from skal import ActiveLearner
from skal.callbacks import Callback
from skal.experiments import (
    _report,
    load_results,
    make_model,
    run_benchmark,
    stopping_points,
    write_report,
)
from skal.experiments._monitors import semi_supervised_learner
from skal.semi_supervised import FixMatchClassifier, SelfTrainingClassifier

RESULT_COLUMNS = [
    "dataset", "model", "strategy", "seed", "round", "n_labeled", "accuracy",
    "acquisition_seconds", "training_seconds",
]  # fmt: skip
STOPS = [
    "stop_classification_change",
    "stop_overall_uncertainty",
    "stop_stabilizing_predictions",
]
SEED, N_ROUNDS, BATCH = 0, 5, 8


@pytest.fixture(scope="module")
def toy():
    """Three well separated classes: confident models, varied stopping rounds."""
    X, y = make_classification(
        n_samples=700, n_features=6, n_informative=4, n_classes=3,
        n_clusters_per_class=1, class_sep=2.0, random_state=0,
    )  # fmt: skip
    return Bunch(
        X_pool=X[:500], y_pool=y[:500], X_val=X[500:520], y_val=y[500:520],
        X_test=X[500:], y_test=y[500:],
    )  # fmt: skip


def _estimator():
    # lbfgs is deterministic: the semi-supervised fits do not depend on seeds.
    return LogisticRegression(C=1, max_iter=200)


def _bench(data, out, **params):
    defaults = dict(
        strategies=["margin"], seeds=[SEED], n_rounds=N_ROUNDS, batch_size=BATCH,
        estimator=_estimator(), model="logreg", output_dir=out, report=False,
        torch_threads=1, progress=False, print_fn=None,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DARP's convergence warnings
        return run_benchmark({"toy": data}, **{**defaults, **params})


class _KeepRounds(Callback):
    """Copies of every round's model and rows (for hand computations)."""

    def on_fit_begin(self, learner, **kwargs):
        self.rounds_ = []

    def on_round_end(
        self, learner, *, estimator, labeled_indices, labels, unlabeled_indices, **kw
    ):
        self.rounds_.append(
            (copy.deepcopy(estimator), labeled_indices.copy(), labels.copy(),
             unlabeled_indices.copy())
        )  # fmt: skip


@pytest.fixture(scope="module")
def monitored(toy, tmp_path_factory):
    """A bench cell with --evaluate ssl --ssl-every 2 --stopping, the same cell
    without them, and the rounds of that cell's learner rerun by hand."""
    out = tmp_path_factory.mktemp("bench")
    _bench(toy, out / "on", evaluate="ssl", ssl_every=2, stopping=True)
    _bench(toy, out / "off")
    learner = ActiveLearner(
        _estimator(), "margin", batch_size=BATCH, n_rounds=N_ROUNDS,
        random_state=SEED, callbacks=[_KeepRounds()],
    ).fit(toy.X_pool, toy.y_pool, eval_set=(toy.X_test, toy.y_test))  # fmt: skip
    cell = "cells/toy__logreg__margin__0.csv"
    return Bunch(
        on=pd.read_csv(out / "on" / cell),
        off=pd.read_csv(out / "off" / cell),
        history=learner.history_,
        rounds=learner.callbacks_[0].rounds_,  # the fit's clone
    )


def test_monitors_add_columns_but_change_nothing_else(monitored):
    on, off = monitored.on, monitored.off
    assert list(off.columns) == RESULT_COLUMNS  # as before the options existed
    stops = ["stop_stabilizing_predictions", "stop_classification_change",
             "stop_overall_uncertainty"]  # fmt: skip
    statistics = [stop.replace("stop_", "stat_") for stop in stops]
    ssl = ["ssl_accuracy", "ssl_seconds"]
    assert list(on.columns) == RESULT_COLUMNS + [*ssl, *stops, *statistics]
    evaluated = on["ssl_accuracy"].notna()
    assert (on.loc[evaluated, "ssl_seconds"] > 0).all()
    assert (on.loc[~evaluated, "ssl_seconds"] == 0).all()
    for column in ("round", "n_labeled", "accuracy"):
        np.testing.assert_array_equal(on[column], off[column])
    np.testing.assert_array_equal(on["accuracy"], monitored.history["eval_score"])
    assert all(on[stop].dtype == bool for stop in STOPS)


def test_ssl_accuracy_is_a_semi_supervised_fit_on_the_round_labels(toy, monitored):
    ssl = monitored.on["ssl_accuracy"].to_numpy()
    # --ssl-every 2: rounds 0, 2, 4 and the last one (5).
    assert np.isnan(ssl[[1, 3]]).all() and not np.isnan(ssl[[0, 2, 4, 5]]).any()
    for round_ in (2, 5):
        _, labeled, labels, _ = monitored.rounds[round_]
        y = np.full(len(toy.y_pool), -1)
        y[labeled] = labels
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = SelfTrainingClassifier(_estimator(), darp="uniform")
            model.fit(toy.X_pool, y)
        assert sum(model.n_pseudo_labels_) > 0  # the unlabeled rows were used
        expected = np.mean(model.predict(toy.X_test) == toy.y_test)
        assert ssl[round_] == pytest.approx(expected, abs=1e-12)
    assert not np.allclose(ssl[[0, 2, 4, 5]], monitored.on["accuracy"][[0, 2, 4, 5]])


def _kappa(a, b):
    return 1.0 if np.array_equal(a, b) else cohen_kappa_score(a, b)


def test_stop_columns_follow_the_criteria_definitions(toy, monitored):
    models = [r[0] for r in monitored.rounds]
    unlabeled = [r[3] for r in monitored.rounds]
    predictions = [m.predict(toy.X_pool) for m in models]
    # The stop set: 1,000 rows (here all) of those unlabeled after round 0.
    first = unlabeled[0]
    stop_set = np.sort(
        np.random.RandomState(SEED).choice(first, min(1000, len(first)), False)
    )
    expected = {stop: [False] for stop in STOPS}
    statistic = {stop: [np.nan] for stop in STOPS}  # nothing to compare in round 0
    kappas = []
    for r in range(1, len(models)):
        rows = unlabeled[r]
        changed = np.mean(predictions[r][rows] != predictions[r - 1][rows])
        expected["stop_classification_change"].append(changed <= 0.005)
        statistic["stop_classification_change"].append(changed)
        kappas.append(_kappa(predictions[r - 1][stop_set], predictions[r][stop_set]))
        window = np.mean(kappas[-3:]) if len(kappas) >= 3 else np.nan
        expected["stop_stabilizing_predictions"].append(window >= 0.99)
        statistic["stop_stabilizing_predictions"].append(window)
    statistic["stop_overall_uncertainty"] = []
    for r, model in enumerate(models):
        least_confidence = 1 - model.predict_proba(toy.X_pool[unlabeled[r]]).max(1)
        fired = least_confidence.mean() < 0.05
        statistic["stop_overall_uncertainty"].append(least_confidence.mean())
        if r == 0:
            expected["stop_overall_uncertainty"][0] = fired
        else:
            expected["stop_overall_uncertainty"].append(fired)
    for stop in STOPS:
        assert monitored.on[stop].tolist() == expected[stop], stop
        np.testing.assert_allclose(
            monitored.on[stop.replace("stop_", "stat_")],
            statistic[stop],
            rtol=1e-9,
            err_msg=stop,
        )
    # The case is informative: every criterion fires somewhere, not everywhere.
    fired = monitored.on[STOPS].to_numpy()
    assert fired.any(axis=0).all() and not fired.all(axis=0).any()


def test_the_protocol_records_the_options_and_resume_refuses_others(toy, tmp_path):
    _bench(toy, tmp_path, n_rounds=1, stopping=True)
    with pytest.raises(ValueError, match="stopping: True -> False"):
        _bench(toy, tmp_path, n_rounds=1)
    with pytest.raises(ValueError, match=r"evaluate: \[\] -> \['ssl'\]"):
        _bench(toy, tmp_path, n_rounds=1, stopping=True, evaluate=["ssl"])


def test_the_semi_supervised_learner_of_each_model():
    mlp = semi_supervised_learner(make_model("mlp", lr=0.002), 4, "isolet")
    assert isinstance(mlp, SelfTrainingClassifier) and mlp.darp == "uniform"
    assert list(mlp.estimator.classes) == [0, 1, 2, 3]  # labels coded 0..C-1
    assert mlp.estimator.lr == 0.002  # the bench's rate
    lenet = semi_supervised_learner(make_model("lenet"), 10, "mnist")
    assert isinstance(lenet, FixMatchClassifier) and lenet.darp == "uniform"
    assert (lenet.threshold, lenet.mu, lenet.lambda_u) == (0.95, 7, 1.0)
    assert lenet.estimator.lr == 0.03 and list(lenet.estimator.classes) == list(
        range(10)
    )
    assert lenet.weak_augment.flip is False  # a mirrored digit is another shape
    cifar = semi_supervised_learner(make_model("lenet"), 10, "cifar10")
    assert cifar.weak_augment.flip is True
    other = semi_supervised_learner(_estimator(), 3, "toy")
    assert isinstance(other.estimator, LogisticRegression)


# ----------------------------------------------------------- loading and report
@pytest.fixture
def no_figures(monkeypatch):
    """Tables only: figures take most of a report's time (one test draws them)."""
    monkeypatch.setattr(_report, "_plot_metric", lambda *args, **kwargs: [])


def _cell(strategy, seed, accuracy, *, n_labeled=(10, 20, 30, 40), **columns):
    n = len(accuracy)
    return pd.DataFrame(
        {
            "dataset": "d", "model": "m", "strategy": strategy, "seed": seed,
            "round": range(n), "n_labeled": n_labeled[:n], "accuracy": accuracy,
            "acquisition_seconds": 0.0, "training_seconds": 0.0, **columns,
        }
    )  # fmt: skip


def _write_cells(out, cells):
    (out / "cells").mkdir(parents=True)
    for cell in cells:
        name = f"d__m__{cell['strategy'][0]}__{cell['seed'][0]}.csv"
        cell.to_csv(out / "cells" / name, index=False)


def test_old_cells_without_the_columns_still_load(tmp_path, no_figures):
    old = _cell("a", 0, [0.5, 0.6, 0.7, 0.8])
    new = _cell(
        "a", 1, [0.5, 0.6, 0.7, 0.8], ssl_accuracy=[0.6, np.nan, 0.8, 0.9],
        stop_overall_uncertainty=[False, False, True, True],
    )  # fmt: skip
    _write_cells(tmp_path / "old", [old])
    assert list(load_results(tmp_path / "old").columns) == RESULT_COLUMNS
    _write_cells(tmp_path / "both", [old, new])
    results = load_results(tmp_path / "both")
    assert list(results.columns) == RESULT_COLUMNS + [
        "ssl_accuracy",
        "stop_overall_uncertainty",
    ]
    assert results.loc[results["seed"] == 0, "ssl_accuracy"].isna().all()
    assert results.loc[results["seed"] == 1, "ssl_accuracy"].tolist()[2] == 0.8
    report = write_report(tmp_path / "both", print_fn=None)
    # Only the cell that recorded the criterion is analysed.
    assert len(report.stopping.points) == 1
    assert report.ssl.results["seed"].unique().tolist() == [1]


def test_ssl_aggregates_equal_the_accuracy_aggregates_of_a_renamed_table(
    tmp_path, no_figures
):
    rng = np.random.RandomState(0)
    cells = []
    for strategy, offset in (("a", 0.05), ("b", 0.0), ("c", -0.04)):
        for seed in range(4):
            accuracy = np.linspace(0.5, 0.8, 6) + rng.normal(0, 0.01, 6)
            ssl = np.linspace(0.6, 0.85, 6) + offset + rng.normal(0, 0.01, 6)
            ssl[3] = np.nan  # a round not evaluated (--ssl-every)
            cells.append(
                _cell(
                    strategy,
                    seed,
                    accuracy,
                    n_labeled=range(10, 70, 10),
                    ssl_accuracy=ssl,
                )  # fmt: skip
            )
    _write_cells(tmp_path / "with_ssl", cells)
    renamed = [
        cell.assign(accuracy=cell["ssl_accuracy"]).drop(columns="ssl_accuracy")
        for cell in cells
    ]
    _write_cells(tmp_path / "renamed", [c.dropna(subset=["accuracy"]) for c in renamed])
    report = write_report(tmp_path / "with_ssl", print_fn=None)
    expected = write_report(tmp_path / "renamed", print_fn=None)
    assert report.ssl.loss_scores.to_numpy().sum() > 0  # some significant wins
    for name in (
        "aulc.csv", "aulc_summary.csv", "loss_scores.csv", "penalty_matrix_all.csv",
        "penalty_matrix_early.csv", "penalty_matrix_late.csv",
    ):  # fmt: skip
        assert (tmp_path / "with_ssl" / f"ssl_{name}").read_text() == (
            tmp_path / "renamed" / name
        ).read_text(), name
    pd.testing.assert_frame_equal(report.ssl.aulc_summary, expected.aulc_summary)
    assert "Semi-supervised evaluation" in report.summary
    assert "Semi-supervised" not in expected.summary


def test_the_rankings_are_compared_with_kendall_tau(tmp_path, no_figures):
    # Constant curves: AULC = the value. Supervised a > b > c, ssl b > a > c:
    # one discordant pair of three, tau = (2 - 1) / 3.
    values = {"a": (0.9, 0.7), "b": (0.8, 0.8), "c": (0.7, 0.6)}
    cells = [
        _cell(s, seed, [acc] * 3, ssl_accuracy=[ssl] * 3)
        for s, (acc, ssl) in values.items()
        for seed in (0, 1)
    ]
    _write_cells(tmp_path, cells)
    report = write_report(tmp_path, print_fn=None)
    ranking = pd.read_csv(tmp_path / "ssl_ranking.csv").set_index("strategy")
    assert ranking["kendall_tau"].tolist() == pytest.approx([1 / 3] * 3)
    assert ranking["rank_accuracy"].to_dict() == {"a": 1, "b": 2, "c": 3}
    assert ranking["rank_ssl_accuracy"].to_dict() == {"a": 2, "b": 1, "c": 3}
    assert "tau = 0.33" in report.summary
    assert "supervised: a > b > c" in report.summary
    assert "ssl: b > a > c" in report.summary


def test_stopping_csv_on_a_hand_built_table(tmp_path, no_figures):
    # Cell 0: final 0.8, best stopping point round 2 (0.795 >= 0.79).
    # Cell 1: final 0.8, best round 1 (0.79: "within 0.01" is inclusive).
    cells = [
        _cell("s", 0, [0.5, 0.7, 0.795, 0.8],
              stop_a=[False, True, True, False], stop_b=[False] * 4),
        _cell("s", 1, [0.6, 0.79, 0.75, 0.8],
              stop_a=[False, False, False, True],
              stop_b=[False, False, True, True]),
        _cell("s", 2, [0.6, 0.7, 0.75, 0.8]),  # an old cell: no criterion
    ]  # fmt: skip
    _write_cells(tmp_path, cells)
    report = write_report(tmp_path, print_fn=None)
    points = pd.read_csv(tmp_path / "stopping_cells.csv")
    assert len(points) == 4  # 2 cells x 2 criteria
    a0 = points[(points["criterion"] == "a") & (points["seed"] == 0)].iloc[0]
    assert (a0["fired"], a0["stop_round"], a0["stop_n_labeled"]) == (True, 1, 20)
    assert (a0["best_round"], a0["best_n_labeled"]) == (2, 30)
    b0 = points[(points["criterion"] == "b") & (points["seed"] == 0)].iloc[0]
    assert (b0["fired"], b0["stop_round"], b0["labels_saved"]) == (False, 3, 0)

    summary = pd.read_csv(tmp_path / "stopping.csv").set_index("criterion")
    expected = {
        # criterion a: stops at rounds 1 and 3 (20 and 40 labels).
        "a": dict(
            n_cells=2, never_fired=0.0, budget=40,
            stop_round_mean=2, stop_round_std=2**0.5,
            stop_n_labeled_mean=30, stop_n_labeled_std=200**0.5,
            labels_saved_mean=10, labels_saved_std=200**0.5,
            accuracy_lost_mean=0.05, accuracy_lost_std=0.1 / 2**0.5,
            best_n_labeled_mean=25, best_n_labeled_std=50**0.5,
            labels_vs_best_mean=5, labels_vs_best_std=30 / 2**0.5,
            accuracy_lost_vs_best_mean=(0.095 - 0.01) / 2,
            accuracy_lost_vs_best_std=0.105 / 2**0.5,
        ),
        # criterion b: never fires in cell 0 (the budget: 40), round 2 in cell 1.
        "b": dict(
            n_cells=2, never_fired=0.5, budget=40,
            stop_round_mean=2.5, stop_round_std=0.5**0.5,
            stop_n_labeled_mean=35, stop_n_labeled_std=50**0.5,
            labels_saved_mean=5, labels_saved_std=50**0.5,
            accuracy_lost_mean=0.025, accuracy_lost_std=0.05 / 2**0.5,
            best_n_labeled_mean=25, best_n_labeled_std=50**0.5,
            labels_vs_best_mean=10, labels_vs_best_std=0,
            accuracy_lost_vs_best_mean=(-0.005 + 0.04) / 2,
            accuracy_lost_vs_best_std=0.045 / 2**0.5,
        ),
    }  # fmt: skip
    for criterion, values in expected.items():
        for column, value in values.items():
            assert summary.loc[criterion, column] == pytest.approx(value), (
                criterion,
                column,
            )
    assert "Stopping criteria" in report.summary and "1/2" in report.summary


def test_stopping_points_checks_its_input():
    table = _cell("s", 0, [0.5, 0.6], stop_a=[False, True])
    with pytest.raises(ValueError, match="tolerance must be"):
        stopping_points(table, tolerance=-1)
    with pytest.raises(ValueError, match="missing the required column"):
        stopping_points(table.drop(columns="n_labeled"))
    assert stopping_points(table.drop(columns="stop_a")).empty
