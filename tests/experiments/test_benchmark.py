"""Tests for the benchmark runner: protocol, resume, failures, backends, report."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from skal.experiments import (
    BenchmarkProtocol,
    _benchmark,
    find_collapses,
    load_results,
    run_benchmark,
    split_pool,
    sweep_learning_rate,
    write_report,
)

RESULT_COLUMNS = [
    "dataset", "model", "strategy", "seed", "round", "n_labeled", "accuracy",
    "acquisition_seconds", "training_seconds",
]  # fmt: skip


@pytest.fixture(scope="module")
def small_digits():
    """A 500-row digits train split and a 200-row test split."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return {"digits": (X[:500], y[:500], X[500:700], y[500:700])}


def _run(data, out, **params):
    defaults = dict(
        strategies=["random", "margin"],
        seeds=2,
        n_rounds=2,
        batch_size=10,
        estimator=LogisticRegression(tol=1e-2, max_iter=100),  # fast on tiny sets
        model="logreg",
        output_dir=out,
        report=False,  # plotting is tested once, in the test of the report
        torch_threads=1,  # the fastest on a shared machine
        progress=False,
        print_fn=None,
    )
    return run_benchmark(data, **{**defaults, **params})


@pytest.fixture
def counted_cells(monkeypatch):
    """Count the cells actually computed (the joblib backend runs in-process)."""
    calls = []
    monkeypatch.setattr(_benchmark, "run_cell", _counting(_benchmark.run_cell, calls))
    return calls


class _ConstantScore(ClassifierMixin, BaseEstimator):
    """Has an ``lr`` but the same validation accuracy whatever it is."""

    def __init__(self, lr=0.1):
        self.lr = lr

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_sweep_learning_rate_records_every_trial_and_breaks_ties_low():
    X, y = np.random.RandomState(0).rand(120, 3), np.repeat([0, 1], 60)
    data = split_pool(X, y, X, y)
    sweep = sweep_learning_rate(
        _ConstantScore(), data, lr_grid=[1e-2, 1e-3], sizes=[10, 40]
    )
    assert len(sweep) == 4 and set(sweep["n_train"]) == {10, 40}
    assert sweep.loc[sweep["selected"], "lr"].unique().tolist() == [1e-3]


def test_run_benchmark_writes_cells_and_a_report(small_digits, tmp_path):
    report = _run(small_digits, tmp_path, report=True)
    cells = sorted(p.name for p in (tmp_path / "cells").glob("*.csv"))
    assert cells == [f"digits__logreg__{s}__{k}.csv" for s in ("margin", "random")
                     for k in (0, 1)]  # fmt: skip
    results = pd.read_csv(tmp_path / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert sorted(results["n_labeled"].unique()) == [10, 20, 30]
    # Same initial set and round-0 model for every strategy of a seed.
    first = results[results["round"] == 0].pivot(
        index="seed", columns="strategy", values="accuracy"
    )
    np.testing.assert_array_equal(first["margin"], first["random"])
    for name in (
        "learning_curves.png",
        "learning_curves.pdf",
        "penalty_matrix_late.png",
        "loss_scores.csv",
        "timing_acquisition.csv",
        "aulc_summary.csv",
        "summary.txt",
    ):
        assert (tmp_path / name).stat().st_size > 0, name  # fmt: skip
    assert set(report.loss_scores.columns) == {"all", "early", "late"}
    assert "Area under the learning curve" in report.summary


def test_interrupted_run_resumes_without_recomputing(
    small_digits, tmp_path, monkeypatch
):
    real, calls = _benchmark.run_cell, []

    def interrupt_third(estimator, strategy, seed, data, **kwargs):
        calls.append((strategy, seed))
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third cell runs
        return real(estimator, strategy, seed, data, **kwargs)

    monkeypatch.setattr(_benchmark, "run_cell", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        _run(small_digits, tmp_path)
    finished = {p.name: p.read_bytes() for p in (tmp_path / "cells").glob("*.csv")}
    assert len(finished) == 2  # written as soon as they ended, nothing lost
    (tmp_path / "cells" / ".half-written.csv.tmp").write_text("dataset,mo")

    calls = []
    monkeypatch.setattr(_benchmark, "run_cell", _counting(real, calls))
    _run(small_digits, tmp_path)
    assert len(calls) == 2  # only the 2 unfinished cells
    for name, content in finished.items():
        assert (tmp_path / "cells" / name).read_bytes() == content
    assert len(load_results(tmp_path)) == 4 * 3

    (tmp_path / "cells" / "digits__logreg__margin__1.csv").unlink()
    calls.clear()
    _run(small_digits, tmp_path, seeds=3)  # one deleted cell + a new seed
    assert sorted(calls) == [("margin", 1), ("margin", 2), ("random", 2)]


def _counting(func, calls):
    def counting(estimator, strategy, seed, data, **kwargs):
        calls.append((strategy, seed))
        return func(estimator, strategy, seed, data, **kwargs)

    return counting


def test_resume_refuses_another_protocol_and_no_resume_starts_over(
    small_digits, tmp_path, counted_cells
):
    _run(small_digits, tmp_path, strategies=["random"], seeds=1)
    with pytest.raises(ValueError, match="n_rounds: 2 -> 3"):
        _run(small_digits, tmp_path, strategies=["random"], seeds=1, n_rounds=3)
    # A directory written before a parameter existed lacks its key: it resumes
    # at that parameter's default only.
    config = json.loads((tmp_path / "config.json").read_text())
    del config["protocol"]["data_seed"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    counted_cells.clear()
    _run(small_digits, tmp_path, strategies=["random"], seeds=1)
    assert counted_cells == []
    with pytest.raises(ValueError, match="data_seed: 0 -> 1"):
        _run(small_digits, tmp_path, strategies=["random"], seeds=1, data_seed=1)
    counted_cells.clear()
    _run(small_digits, tmp_path, strategies=["random"], seeds=1, n_rounds=3,
         resume=False)  # fmt: skip
    assert counted_cells == [("random", 0)]
    assert load_results(tmp_path)["round"].max() == 3


def test_a_failing_cell_is_reported_and_retried(small_digits, tmp_path, monkeypatch):
    real = _benchmark.run_cell

    def margin_fails(estimator, strategy, seed, data, **kwargs):
        if strategy == "margin" and seed == 1:
            raise RuntimeError("boom")
        return real(estimator, strategy, seed, data, **kwargs)

    monkeypatch.setattr(_benchmark, "run_cell", margin_fails)
    report = _run(small_digits, tmp_path)
    assert [(f[2], f[3]) for f in report.failures] == [("margin", 1)]
    assert "boom" in report.failures[0][4].traceback
    assert len(list((tmp_path / "cells").glob("*.csv"))) == 3
    calls = []
    monkeypatch.setattr(_benchmark, "run_cell", _counting(real, calls))
    assert not _run(small_digits, tmp_path).failures
    assert calls == [("margin", 1)]


def test_strategies_that_cannot_run_are_skipped_with_the_reason(small_digits, tmp_path):
    # BALD needs a torch network with dropout, not a logistic regression.
    report = _run(small_digits, tmp_path, strategies=["random", "bald"], seeds=1)
    assert set(report.results["strategy"]) == {"random"} and not report.failures
    skipped = pd.read_csv(tmp_path / "skipped.csv")
    assert skipped["strategy"].tolist() == ["bald"]
    assert "dropout" in skipped["reason"].iloc[0]
    with pytest.raises(ValueError, match="Unknown strategies"):
        _run(small_digits, tmp_path, strategies=["nope"])


def test_strategy_params_are_used_and_recorded(small_digits, tmp_path, monkeypatch):
    seen = []
    real = _benchmark.run_cell

    def spy(estimator, strategy, seed, data, **kwargs):
        seen.append(strategy.get_params())
        return real(estimator, strategy, seed, data, **kwargs)

    monkeypatch.setattr(_benchmark, "run_cell", spy)
    params = {"random": {"random_state": 3}}
    report = _run(
        small_digits, tmp_path, strategies=["random"], seeds=1, strategy_params=params
    )
    assert seen[0]["random_state"] == 3
    assert set(report.results["strategy"]) == {"random"}  # named as registered
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["protocol"]["strategy_params"] == params
    with pytest.raises(TypeError):
        _run(small_digits, tmp_path, strategy_params={"margin": {"nope": 1}})


def _learner_params_seen(monkeypatch, name):
    """The values of the learner parameter ``name`` each cell's run_cell gets."""
    seen = []
    real = _benchmark.run_cell

    def spy(estimator, strategy, seed, data, **kwargs):
        seen.append(kwargs[name])
        return real(estimator, strategy, seed, data, **kwargs)

    monkeypatch.setattr(_benchmark, "run_cell", spy)
    return seen


def test_warm_start_reaches_the_learner_and_is_recorded(
    small_digits, tmp_path, monkeypatch
):
    seen = _learner_params_seen(monkeypatch, "warm_start")
    with warnings.catch_warnings():
        # The network has every class's output from round 0: no fresh restarts.
        warnings.filterwarnings("error", message="warm_start")
        _run(
            small_digits,
            tmp_path / "warm",
            strategies=["random"],
            seeds=1,
            warm_start=True,
        )
    _run(small_digits, tmp_path / "cold", strategies=["random"], seeds=1)
    assert seen == [True, False]
    config = json.loads((tmp_path / "warm" / "config.json").read_text())
    assert config["protocol"]["warm_start"] is True
    with pytest.raises(ValueError, match="warm_start"):  # a resume keeps the protocol
        _run(small_digits, tmp_path / "warm", strategies=["random"], seeds=1)


def test_initial_strategy_chooses_one_initial_set_per_seed(
    small_digits, tmp_path, monkeypatch
):
    seen = _learner_params_seen(monkeypatch, "initial_strategy")
    report = _run(small_digits, tmp_path, seeds=1, initial_strategy="typiclust")
    assert seen == ["typiclust", "typiclust"]
    first = report.results[report.results["round"] == 0]
    assert first["accuracy"].nunique() == 1  # the same rows and model seed
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["protocol"]["initial_strategy"] == "typiclust"
    assert (
        config["protocol"]["initial_set"]
        == "one batch, chosen by typiclust on the input"
    )
    # "random" is the default protocol (paper 001's random batch).
    assert BenchmarkProtocol(initial_strategy="random").initial_strategy is None
    with pytest.raises(ValueError, match="initial_strategy"):
        BenchmarkProtocol(initial_strategy="margin")  # needs a model


def test_budget_larger_than_the_pool_is_refused(small_digits, tmp_path):
    with pytest.raises(ValueError, match="exceeds its pool"):
        _run(small_digits, tmp_path, n_rounds=100)


def test_dask_local_cluster_gives_the_joblib_results(small_digits, tmp_path):
    distributed = pytest.importorskip(
        "distributed",
        reason="dask.distributed is not installed (pip install 'dask[distributed]')",
    )
    _run(small_digits, tmp_path / "joblib", seeds=1)
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        report = _run(small_digits, tmp_path / "dask", seeds=1, dask=client)
    expected = load_results(tmp_path / "joblib")
    cols = ["strategy", "seed", "round", "n_labeled", "accuracy"]
    pd.testing.assert_frame_equal(report.results[cols], expected[cols])
    config = json.loads((tmp_path / "dask" / "config.json").read_text())
    assert config["runs"][-1]["dask"] == "client"  # a Client cannot be recorded


def test_find_collapses_flags_round_to_round_drops():
    results = pd.DataFrame(
        dict(dataset="d", model="m", strategy="s", seed=0, round=[0, 1, 2, 3],
             n_labeled=[10, 20, 30, 40], accuracy=[0.5, 0.7, 0.2, 0.68])
    )  # fmt: skip
    collapses = find_collapses(results, drop=0.1)
    assert collapses["round"].tolist() == [2]
    assert collapses["drop"].iloc[0] == pytest.approx(0.5)


def test_write_report_rebuilds_from_cells(small_digits, tmp_path):
    _run(small_digits, tmp_path, strategies=["random"], seeds=1)
    (tmp_path / "results.csv").unlink()
    report = write_report(tmp_path, print_fn=None)
    assert len(pd.read_csv(tmp_path / "results.csv")) == len(report.results) == 3
    assert (tmp_path / "penalty_matrix_all.pdf").stat().st_size > 0
    with pytest.raises(FileNotFoundError, match="No finished cells"):
        write_report(tmp_path / "empty", print_fn=None)


def test_write_report_combines_runs_of_different_experiments(small_digits, tmp_path):
    X_tr, y_tr, X_te, y_te = small_digits["digits"]
    _run(small_digits, tmp_path / "a", strategies=["random", "margin"], seeds=2)
    other = {"digits_half": (X_tr[:, :32], y_tr, X_te[:, :32], y_te)}
    _run(other, tmp_path / "b", strategies=["random", "margin"], seeds=2, n_rounds=1)
    report = write_report(
        tmp_path / "both", sources=[tmp_path / "a", tmp_path / "b"], print_fn=None
    )
    assert set(report.results["dataset"]) == {"digits", "digits_half"}
    assert len(report.results) == 2 * 2 * 3 + 2 * 2 * 2  # rounds 0..2 and 0..1
    assert (tmp_path / "both" / "penalty_matrix_all.csv").exists()
    only = write_report(
        tmp_path / "margin_only",
        sources=[tmp_path / "a", tmp_path / "b"],
        strategies=["margin"],
        print_fn=None,
    )
    assert set(only.results["strategy"]) == {"margin"}
    with pytest.raises(ValueError, match="in both"):
        write_report(tmp_path / "x", sources=[tmp_path / "a", tmp_path / "a"])
