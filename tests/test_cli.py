import pandas as pd

from skal.cli import main


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
    results = pd.read_csv(out / "results.csv")
    assert set(results["strategy"]) == {"random", "margin"}
    assert sorted(results["n_labeled"].unique()) == [10, 20, 30]
    assert (out / "learning_curves.png").stat().st_size > 1000
