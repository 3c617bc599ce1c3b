"""Tests for BenchmarkProtocol: checks, command-line flags, config.json, signature."""

import inspect
import json
from dataclasses import fields

import pytest

from skal.cli import _bench_protocol, _parser
from skal.experiments import BenchmarkProtocol, run_benchmark
from skal.experiments._protocol import flag_of

# A non-default value of every field: (Python value, command-line words, the
# normalized value). A new field needs a row here (the first test says so).
EXAMPLES = {
    "datasets": (["isolet", "mnist"], ["isolet", "mnist"], ("isolet", "mnist")),
    "model": ("lenet", ["lenet"], "lenet"),
    "data_home": ("/data/here", ["/data/here"], "/data/here"),
    "strategies": (["margin", "npc"], ["margin", "npc"], ("margin", "npc")),
    "seeds": ([4, 5], ["4:6"], (4, 5)),
    "n_rounds": (7, ["7"], 7),
    "batch_size": (12, ["12"], 12),
    "max_epochs": (3, ["3"], 3),
    "sgd_batch_size": (32, ["32"], 32),
    "dropout": (0.25, ["0.25"], 0.25),
    "lr": (0.05, ["0.05"], 0.05),
    "lr_grid": ([0.1, 0.01], ["0.1", "0.01"], (0.1, 0.01)),
    "sweep_sizes": ([10, 50], ["10", "50"], (10, 50)),
    "validation_size": (300, ["300"], 300),
    "pool_size": (2000, ["2000"], 2000),
    "max_features": (500, ["500"], 500),
    "data_seed": (4, ["4"], 4),
    "strategy_params": (
        {"npc": {"max_candidates": 100}},
        ["npc:max_candidates=100"],
        {"npc": {"max_candidates": 100}},
    ),
    "evaluate": ("ssl", ["ssl"], ("ssl",)),
    "ssl_every": (3, ["3"], 3),
    "stopping": (True, [], True),  # --stopping
    "warm_start": (True, [], True),  # --warm-start
    "initial_strategy": ("typiclust", ["typiclust"], "typiclust"),
    "diagnostics": (True, [], True),  # --diagnostics
    "output_dir": ("/tmp/out", ["/tmp/out"], "/tmp/out"),
    "n_jobs": (3, ["3"], 3),
    "dask": ("tcp://10.0.0.1:8786", ["tcp://10.0.0.1:8786"], "tcp://10.0.0.1:8786"),
    "torch_threads": (2, ["2"], 2),
    "resume": (False, [], False),  # --no-resume
    "progress": (False, [], False),
}
NAMES = [f.name for f in fields(BenchmarkProtocol)]


def test_every_field_has_an_example_here():
    assert sorted(EXAMPLES) == sorted(NAMES), "add the new field to EXAMPLES"


@pytest.mark.parametrize("name", NAMES)
def test_every_field_has_a_command_line_flag(name):
    python, words, expected = EXAMPLES[name]
    field = next(f for f in fields(BenchmarkProtocol) if f.name == name)
    flag = flag_of(field)
    if isinstance(python, bool):  # --x / --no-x
        flag = f"--no-{flag[2:]}" if python is False else flag
    protocol = _bench_protocol(_parser().parse_args(["bench", flag, *words]))
    assert getattr(protocol, name) == expected
    # Only that field changed (against the command line's defaults).
    defaults = _bench_protocol(_parser().parse_args(["bench"]))
    changed = [n for n in NAMES if getattr(protocol, n) != getattr(defaults, n)]
    assert changed == [name]
    # The Python API normalizes the same value to the same protocol field.
    assert getattr(BenchmarkProtocol(**{name: python}), name) == expected


def test_every_field_round_trips_through_config_json():
    protocol = BenchmarkProtocol(
        **{n: python for n, (python, _, _) in EXAMPLES.items()}
    )
    default = BenchmarkProtocol()
    assert all(getattr(protocol, n) != getattr(default, n) for n in NAMES)
    config = protocol.to_config()
    # What config.json holds after json.dump / json.load.
    written = json.loads(
        json.dumps({"protocol": config["protocol"], "runs": [config["run"]]})
    )
    assert BenchmarkProtocol.from_config(written) == protocol
    # The default model (None) is recorded by name and read back as "mlp".
    config = default.to_config()
    written = {"protocol": config["protocol"], "runs": [config["run"]]}
    assert BenchmarkProtocol.from_config(written) == BenchmarkProtocol(model="mlp")


def _fields():
    return {f.name: f for f in fields(BenchmarkProtocol)}


def test_config_protocol_keeps_the_keys_and_values_of_earlier_versions():
    # What `skal bench --rounds 4 --batch-size 40 --epochs 20 --sgd-batch-size 16
    # --dropout 0.1 --pool-size 2000 --max-features 5000 --strategy-params
    # npc:max_candidates=100` wrote before the protocol was a dataclass
    # (docs/results/paper001_reduced/tabular/config.json), without "estimator".
    earlier = {
        "model": "mlp512-256",
        "n_rounds": 4,
        "batch_size": 40,
        "initial_set": "one batch, uniform at random",
        "lr": None,
        "lr_grid": [0.0001, 0.0005, 0.001, 0.005, 0.01],
        "sweep_sizes": None,
        "validation_size": 0.1,
        "pool_size": 2000,
        "max_features": 5000,
        "data_seed": 0,
        "strategy_params": {"npc": {"max_candidates": 100}},
    }
    protocol = BenchmarkProtocol(
        datasets=["isolet", "pokerhand"], seeds=3, n_rounds=4, batch_size=40,
        max_epochs=20, sgd_batch_size=16, dropout=0.1, pool_size=2000,
        max_features=5000, strategy_params={"npc": {"max_candidates": 100}},
    )  # fmt: skip
    recorded = protocol.to_config()["protocol"]
    estimator = recorded.pop("estimator")
    # Fields added since are recorded at their defaults (and an older file
    # lacking them reads as these defaults on resume).
    added = {
        "evaluate": [], "ssl_every": 1, "stopping": False, "warm_start": False,
        "diagnostics": False, "initial_strategy": None,
    }  # fmt: skip
    assert {key: recorded.pop(key) for key in added} == added
    assert BenchmarkProtocol.recorded_defaults().items() >= added.items()
    assert recorded == earlier
    assert estimator.startswith("MLPClassifier(batch_size=16, ")
    assert "dropout=0.1" in estimator and "max_epochs=20" in estimator
    assert " at 0x" not in estimator  # stable across runs

    # A config.json of that version reads back; its runs lack the newer fields.
    old_run = {"started": "2026-01-01T00:00:00+00:00", "datasets": ["isolet",
               "pokerhand"], "strategies": ["random", "npc"], "seeds": [0, 1, 2],
               "n_jobs": -1, "dask": None}  # fmt: skip
    config = {"protocol": {**earlier, "estimator": estimator}, "runs": [old_run]}
    read = BenchmarkProtocol.from_config(config)
    assert read.model == "mlp"
    assert (read.n_rounds, read.pool_size, read.seeds) == (4, 2000, (0, 1, 2))
    assert read.strategies == ("random", "npc") and read.max_epochs == 30  # default


@pytest.mark.parametrize("name", NAMES)
def test_an_invalid_value_names_the_field_and_its_flag(name):
    field = _fields()[name]
    with pytest.raises(ValueError) as error:
        BenchmarkProtocol(**{name: object()})  # invalid for every field
    assert str(error.value).startswith(f"{name} must be ")
    assert flag_of(field) in str(error.value)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": True}, "batch_size must be an integer >= 1"),
        ({"seeds": [1, 1]}, "seeds must be"),
        ({"seeds": 0}, "seeds must be"),
        ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\)"),
        ({"validation_size": 1.5}, r"a fraction in \(0, 1\) or a row count"),
        ({"lr": 0}, "lr must be a number > 0 or None"),
        ({"lr_grid": []}, "lr_grid must be a non-empty list"),
        ({"n_jobs": 0}, "n_jobs must be a non-zero integer"),
        ({"resume": "yes"}, "resume must be True or False"),
        ({"evaluate": ["ssl", "nope"]}, r"evaluate must be .* among \['ssl'\]"),
        ({"evaluate": ["ssl", "ssl"]}, "evaluate must be a list of distinct"),
        ({"ssl_every": 0}, "ssl_every must be an integer >= 1"),
        ({"stopping": 1}, "stopping must be True or False"),
        ({"strategies": ["random", "nope"]}, r"Unknown strategies \['nope'\]"),
        ({"strategy_params": {"nope": {}}}, "Unknown strategy 'nope'"),
        ({"strategy_params": {"npc": {"max_candidates": -3}}}, "max_candidates"),
    ],
)
def test_invalid_values_are_refused_with_the_fix(params, message):
    with pytest.raises(ValueError, match=message):
        BenchmarkProtocol(**params)


def test_unknown_strategy_parameters_are_a_type_error():
    with pytest.raises(TypeError, match="Give only parameters of margin"):
        BenchmarkProtocol(strategy_params={"margin": {"nope": 1}})


def test_protocol_is_frozen_and_normalized():
    protocol = BenchmarkProtocol(datasets="digits", strategies="margin", seeds=2)
    assert protocol.datasets == ("digits",) and protocol.strategies == ("margin",)
    assert protocol.seeds == (0, 1) and protocol.budget == 100 * 40
    with pytest.raises(AttributeError):
        protocol.seeds = (5,)


def test_run_benchmark_keeps_its_keywords_and_defaults():
    # The keyword arguments of run_benchmark before the protocol was a
    # dataclass, with their defaults: user code calling it keeps working.
    earlier = dict(
        strategies=None, strategy_params=None, seeds=3, n_rounds=39,
        batch_size=100, max_epochs=30, sgd_batch_size=8, dropout=0.0,
        estimator=None, model=None, lr=None, lr_grid=(1e-4, 5e-4, 1e-3, 5e-3, 1e-2),
        sweep_sizes=None, validation_size=0.1, pool_size=None, max_features=None,
        data_home=None, data_seed=0, output_dir="skal-bench", n_jobs=1, dask=None,
        torch_threads=None, resume=True, report=True, progress=True, print_fn=print,
    )  # fmt: skip
    shown = inspect.signature(run_benchmark).parameters
    assert {name: shown[name].default for name in earlier} == earlier
    assert set(NAMES) <= set(shown)  # a new field is a keyword too


def test_run_benchmark_refuses_unknown_or_doubled_parameters(tmp_path):
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['n_round'\]"):
        run_benchmark(n_round=3, output_dir=tmp_path)
    with pytest.raises(TypeError, match="both protocol= and protocol parameters"):
        run_benchmark(protocol=BenchmarkProtocol(), n_rounds=3)
    assert not any(tmp_path.iterdir())
