"""examples/label_in_terminal.py applies or refuses its flags when it continues a
session (issue 17, item 10)."""

import importlib.util
import io
import sqlite3
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "label_in_terminal.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("label_in_terminal", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(example, monkeypatch, capsys, store, answers, *flags):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(answers) + "\n"))
    code = example.main(["--store", str(store), *flags])
    return code, capsys.readouterr().out


def n_answers(store):
    with sqlite3.connect(store) as db:
        return db.execute("SELECT COUNT(*) FROM labels").fetchone()[0]


def test_continuing_applies_rounds_and_strategy_and_refuses_the_rest(
    example, monkeypatch, capsys, tmp_path
):
    store = tmp_path / "labels.db"
    start = ["--n-initial", "2", "--batch-size", "2", "--rounds", "1"]
    code, out = run(example, monkeypatch, capsys, store, ["1", "2"] * 3, *start)
    assert code == 0 and "Session complete" in out
    assert n_answers(store) == 4  # 2 initial + 1 round of 2
    # The user's steps: continue with more rounds and another strategy.
    code, out = run(
        example,
        monkeypatch,
        capsys,
        store,
        ["3"] * 6,
        "--rounds",
        "3",
        "--strategy",
        "entropy",
    )
    assert code == 0
    assert "--rounds: 1 -> 3 in this run." in out
    assert "--strategy: 'margin' -> 'entropy' in this run." in out
    assert n_answers(store) == 8  # rounds 2 and 3 were asked, not ignored
    # Flags that shape the session from its start cannot change.
    with pytest.raises(SystemExit, match="--batch-size 5 differs"):
        run(example, monkeypatch, capsys, store, [], "--batch-size", "5")
    # The same values as stored are fine.
    code, out = run(example, monkeypatch, capsys, store, [], *start)
    assert code == 0 and "in this run" not in out
