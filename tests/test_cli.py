import pandas as pd
import pytest

from skal.cli import _bench_protocol, _parser, main
from skal.strategies import available_strategies


def test_demo_prints_a_table_and_writes_a_plot(tmp_path, capsys):
    out = tmp_path / "demo"
    main(
        [
            "demo",
            "--strategies",
            "random",
            "margin",
            "--seeds",
            "1",
            "--rounds",
            "2",
            "--batch-size",
            "10",
            "--epochs",
            "2",
            "--output-dir",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert "Mean test accuracy" in printed and "margin" in printed
    # Progress while it runs: one line per finished (strategy, seed) cell.
    assert "Running 2 cells" in printed
    assert "[1/2]" in printed and "[2/2]" in printed
    assert printed.index("[2/2]") < printed.index("Mean test accuracy")
    results = pd.read_csv(out / "results.csv")
    assert set(results["strategy"]) == {"random", "margin"}
    assert sorted(results["n_labeled"].unique()) == [10, 20, 30]
    assert (out / "learning_curves.png").stat().st_size > 1000


def _bench_args(out, *extra):
    return [
        "bench", "--datasets", "digits", "--strategies", "random", "margin",
        "--seeds", "2", "--rounds", "2", "--batch-size", "10", "--epochs", "1",
        "--sgd-batch-size", "64", "--pool-size", "300", "--output-dir", str(out),
        "--no-progress", "--torch-threads", "1", *extra,
    ]  # fmt: skip


def _protocol(*flags):
    return _bench_protocol(_parser().parse_args(["bench", *flags]))


def test_bench_flags_make_the_protocol():
    protocol = _protocol(
        "--datasets", "isolet", "pokerhand", "--seeds", "3:5", "--lr", "0.005",
        "--dask", "local", "--no-resume", "--validation-size", "200",
    )  # fmt: skip
    assert protocol.datasets == ("isolet", "pokerhand") and protocol.seeds == (3, 4)
    assert protocol.lr == 0.005 and protocol.dask == "local"
    assert protocol.resume is False
    assert protocol.validation_size == 200 and protocol.model is None  # the MLP
    assert protocol.model_name() == "mlp512-256"
    assert _protocol("--model", "lenet").model == "lenet"
    defaults = _protocol()
    assert defaults.seeds == (0, 1, 2, 3, 4) and defaults.n_jobs == -1
    assert defaults.strategies == tuple(available_strategies())
    assert (defaults.n_rounds, defaults.batch_size, defaults.sgd_batch_size) == (
        39, 100, 8,
    )  # fmt: skip
    assert defaults.lr_grid == (1e-4, 5e-4, 1e-3, 5e-3, 1e-2) and defaults.resume
    assert _protocol("--seeds", "0,7").seeds == (0, 7)
    assert _protocol("--seeds", "2").seeds == (0, 1)
    assert _protocol("--validation-size", "0.25").validation_size == 0.25
    params = _protocol(
        "--strategy-params", "npc:max_candidates=100", "albl:random_state=3"
    ).strategy_params
    assert params == {"albl": {"random_state": 3}, "npc": {"max_candidates": 100}}
    for bad in (["--lr", "0.1", "--lr-grid", "0.1"], ["--seeds", "x"],
                ["--seeds", "3:3"], ["--datasets", "cifar100"],
                ["--model", "vgg19"], ["--strategy-params", "npc"]):  # fmt: skip
        with pytest.raises(SystemExit):
            _parser().parse_args(["bench", *bad])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-size", "0"], "batch_size must be an integer >= 1"),
        (["--rounds", "-2"], "--rounds"),
        (["--seeds", "0"], "seeds must be"),
        (["--dropout", "1"], "dropout must be a probability in [0, 1)"),
        (["--strategy-params", "margin:nope=1"], "Give only parameters of margin"),
        (["--strategy-params", "npc:max_candidates=0"], "max_candidates"),
    ],
)
def test_bench_bad_values_are_one_line_errors(flags, message, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["bench", "--output-dir", str(out), *flags]) == 1
    err = capsys.readouterr().err
    assert err.startswith("skal bench: error:") and err.count("\n") == 1
    assert message in err and "Traceback" not in err
    assert not out.exists()  # refused before anything ran


def test_bench_end_to_end_then_resume_and_report(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(_bench_args(out, "--lr-grid", "0.001", "0.01")) == 0
    printed = capsys.readouterr().out
    assert "Area under the learning curve" in printed and "Loss scores" in printed
    results = pd.read_csv(out / "results.csv")
    assert set(results["strategy"]) == {"random", "margin"}
    assert set(results["dataset"]) == {"digits"} and set(results["seed"]) == {0, 1}
    assert sorted(results["n_labeled"].unique()) == [10, 20, 30]
    sweep = pd.read_csv(out / "lr_sweep.csv")
    assert set(sweep["lr"]) == {0.001, 0.01} and set(sweep["n_train"]) == {10, 30}
    assert (out / "learning_curves.pdf").stat().st_size > 1000

    assert main(_bench_args(out, "--lr-grid", "0.001", "0.01")) == 0
    assert "4 already finished" in capsys.readouterr().out

    (out / "results.csv").unlink()
    assert main(["report", str(out)]) == 0
    assert "Loss scores" in capsys.readouterr().out
    assert len(pd.read_csv(out / "results.csv")) == len(results)


def test_report_errors_are_one_line(tmp_path, capsys):
    # The user's steps: `skal report` on a directory that is not a bench output.
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("skal report: error:") and "skal bench" in err
    assert main(["report", str(tmp_path / "missing")]) == 1
    assert "is not a `skal bench` results directory" in capsys.readouterr().err


def test_bench_evaluate_ssl_and_stopping_then_report(tmp_path, capsys, monkeypatch):
    from skal.experiments import _report

    drawn = []  # figures are built but not rendered (rendering is most of the time)
    monkeypatch.setattr(
        _report, "_save_both", lambda fig, stem: drawn.append(stem) or []
    )
    out = tmp_path / "bench"
    flags = ["--lr", "0.01", "--evaluate", "ssl", "--ssl-every", "2", "--stopping",
             "--strategies", "margin", "--seeds", "1", "--n-jobs", "1"]  # fmt: skip
    assert main(_bench_args(out, *flags)) == 0
    printed = capsys.readouterr().out
    assert "Semi-supervised evaluation" in printed and "Kendall tau" in printed
    assert "Stopping criteria" in printed and "stabilizing_predictions" in printed
    results = pd.read_csv(out / "results.csv")
    # --ssl-every 2 over rounds 0..2: rounds 0 and 2 (the last) are evaluated.
    assert results["ssl_accuracy"].notna().tolist() == [True, False, True]
    assert {"stop_classification_change", "stop_overall_uncertainty"} <= set(
        results.columns
    )
    names = {stem.name for stem in drawn}
    assert {"ssl_learning_curves", "ssl_aulc_ranking", "ssl_penalty_matrix_all",
            "aulc_ranking"} <= names  # fmt: skip
    assert len(pd.read_csv(out / "stopping.csv")) == 3  # criteria on one dataset
