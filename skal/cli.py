"""The ``skal`` command line (also ``python -m skal``).

- ``skal demo``: a quick comparison of every strategy on digits.
- ``skal bench``: the evaluation of paper 001 (section 4), scaled by flags,
  resumable, in parallel with joblib or on a Dask cluster.
- ``skal report OUTPUT_DIR``: re-aggregate and re-plot a ``skal bench`` directory.
"""

import argparse
import ast

from .experiments._benchmark import LR_GRID
from .experiments._setup import MODELS, available_datasets
from .strategies import available_strategies


def _seeds(text):
    """``N`` (seeds 0..N-1), ``A:B`` (seeds A..B-1) or ``A,B,C``."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        elif ":" in text:
            start, stop = (int(s) for s in text.split(":"))
            seeds = list(range(start, stop))
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds must be N, A:B or A,B,C (integers), got {text!r}"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r} selects no seed")
    return seeds


def _strategy_param(text):
    """``NAME:PARAM=VALUE`` -> (name, param, value); VALUE as a Python literal."""
    try:
        name, assignment = text.split(":", 1)
        param, value = assignment.split("=", 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected STRATEGY:PARAM=VALUE (e.g. npc:max_candidates=100), got {text!r}"
        ) from None
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass  # a bare word stays a string
    return name.strip(), param.strip(), value


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _size(text):
    """A fraction in (0, 1) or a row count."""
    value = float(text)
    if value >= 1 and value.is_integer():
        return int(value)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1) or a count, got {text}")
    return value


def _add_demo(commands):
    demo = commands.add_parser(
        "demo", help="compare every strategy on digits; print a table, write a plot"
    )
    demo.add_argument(
        "--strategies",
        nargs="+",
        choices=available_strategies(),
        default=None,
        help="strategies to compare (default: all registered)",
    )
    demo.add_argument(
        "--seeds", type=int, default=3, help="number of seeds (default 3)"
    )
    demo.add_argument(
        "--rounds", type=int, default=8, help="acquisition rounds (default 8)"
    )
    demo.add_argument("--batch-size", type=int, default=20, help="points per round")
    demo.add_argument("--epochs", type=int, default=30, help="MLP epochs per round")
    demo.add_argument("--output-dir", default="skal-demo-output")
    demo.add_argument("--n-jobs", type=int, default=2, help="parallel cells (joblib)")


def _add_bench(commands):
    bench = commands.add_parser(
        "bench",
        help="paper 001's evaluation: resumable, parallel, scaled by flags",
        description=(
            "Run every (dataset, strategy, seed) cell with the protocol of paper "
            "001, section 4.3, write each finished cell to OUTPUT_DIR/cells/, then "
            "aggregate (penalty matrices, loss scores, AULC), plot and summarize. "
            "Defaults are the paper's scale (batch 100, 39 rounds, 5 seeds, 30 "
            "epochs, SGD batch 8); a laptop run, e.g.: skal bench --datasets isolet "
            "--seeds 3 --rounds 5 --batch-size 20 --epochs 10 --sgd-batch-size 32."
        ),
    )
    data = bench.add_argument_group("data")
    data.add_argument(
        "--datasets",
        nargs="+",
        choices=available_datasets(),
        default=["digits"],
        help="datasets (default: digits)",
    )
    data.add_argument(
        "--model",
        choices=list(MODELS),
        default="mlp",
        help="the 512-256 MLP (default; images as rows of pixels) or a CNN with "
        "that head (image datasets only)",
    )
    data.add_argument(
        "--data-home",
        default=None,
        help="folder with the dataset files (default: $SKAL_DATA or ~/skal_data)",
    )
    data.add_argument(
        "--pool-size",
        type=_positive_int,
        default=None,
        help="subsample the unlabeled pool to this many rows",
    )
    data.add_argument(
        "--max-features",
        type=_positive_int,
        default=None,
        help="TF-IDF vocabulary size (20newsgroups)",
    )
    data.add_argument(
        "--validation-size",
        type=_size,
        default=0.1,
        help="stratified validation split excluded from the pool, a "
        "fraction or a count (default 0.1)",
    )

    protocol = bench.add_argument_group("protocol")
    protocol.add_argument(
        "--strategies",
        nargs="+",
        choices=available_strategies(),
        default=None,
        help="default: every registered strategy",
    )
    protocol.add_argument(
        "--strategy-params",
        type=_strategy_param,
        nargs="+",
        default=[],
        metavar="STRATEGY:PARAM=VALUE",
        help="non-default strategy parameters, e.g. npc:max_candidates=100",
    )
    protocol.add_argument(
        "--seeds",
        type=_seeds,
        default=list(range(5)),
        help="N (seeds 0..N-1), A:B or A,B,C (default 5)",
    )
    protocol.add_argument(
        "--rounds",
        type=_positive_int,
        default=39,
        help="acquisition rounds (default 39)",
    )
    protocol.add_argument(
        "--batch-size",
        type=_positive_int,
        default=100,
        help="points per round and initial set size (default 100)",
    )
    protocol.add_argument(
        "--epochs",
        type=_positive_int,
        default=30,
        help="epochs per training (default 30)",
    )
    protocol.add_argument(
        "--sgd-batch-size",
        type=_positive_int,
        default=8,
        help="SGD mini-batch size (default 8)",
    )
    protocol.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="dropout of the MLP (CNNs: of the head), for every strategy (default 0, the paper's MLP; "
        "the Monte-Carlo dropout strategies are skipped without it)",
    )
    rate = protocol.add_mutually_exclusive_group()
    rate.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate for every dataset (skips the sweep)",
    )
    rate.add_argument(
        "--lr-grid",
        type=float,
        nargs="+",
        default=list(LR_GRID),
        help="rates of the one-time sweep (default: the paper's)",
    )
    protocol.add_argument(
        "--sweep-sizes",
        type=_positive_int,
        nargs="+",
        default=None,
        help="labeled-set sizes of the sweep (default: the "
        "initial set and the final budget)",
    )

    run = bench.add_argument_group("execution")
    run.add_argument(
        "--output-dir",
        default="skal-bench",
        help="results directory (default skal-bench)",
    )
    run.add_argument(
        "--n-jobs",
        type=int,
        default=-1,
        help="parallel cells (joblib processes; with --dask local, "
        "the number of workers); default -1: one per core, each with one torch "
        "thread (small networks train fastest single-threaded)",
    )
    run.add_argument(
        "--dask",
        default=None,
        metavar="SCHEDULER_ADDRESS",
        help="run on a Dask cluster: a scheduler address or 'local'",
    )
    run.add_argument(
        "--torch-threads",
        type=_positive_int,
        default=None,
        help="torch threads per cell (default: cores / n-jobs in worker processes, "
        "so 1 with the default --n-jobs); 1 is best on a machine shared with other "
        "jobs",
    )
    run.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep finished cells (default); --no-resume starts over",
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bars (default on)",
    )


def _add_report(commands):
    report = commands.add_parser(
        "report", help="re-aggregate and re-plot a `skal bench` results directory"
    )
    report.add_argument(
        "output_dir",
        help="directory written by `skal bench` (or, with --combine, where the "
        "combined report goes)",
    )
    report.add_argument(
        "--combine",
        nargs="+",
        metavar="RESULTS_DIR",
        default=None,
        help="combine the cells of these results directories (runs with different "
        "protocols, each its own experiment) into one report in OUTPUT_DIR",
    )
    report.add_argument(
        "--strategies",
        nargs="+",
        default=None,
        help="report only these strategies (default: all in the results)",
    )
    report.add_argument(
        "--drop",
        type=float,
        default=0.1,
        help="accuracy drop between rounds flagged as a collapse",
    )


def _parser():
    parser = argparse.ArgumentParser(
        prog="skal", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_demo(commands)
    _add_bench(commands)
    _add_report(commands)
    return parser


def _bench(args):
    from .experiments import run_benchmark

    strategy_params = {}
    for name, param, value in args.strategy_params:
        strategy_params.setdefault(name, {})[param] = value
    report = run_benchmark(
        args.datasets,
        model=args.model,
        strategies=args.strategies,
        strategy_params=strategy_params,
        seeds=args.seeds,
        n_rounds=args.rounds,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        sgd_batch_size=args.sgd_batch_size,
        dropout=args.dropout,
        lr=args.lr,
        lr_grid=args.lr_grid,
        sweep_sizes=args.sweep_sizes,
        validation_size=args.validation_size,
        pool_size=args.pool_size,
        max_features=args.max_features,
        data_home=args.data_home,
        output_dir=args.output_dir,
        n_jobs=args.n_jobs,
        dask=args.dask,
        torch_threads=args.torch_threads,
        resume=args.resume,
        progress=args.progress,
    )
    return 1 if report.failures else 0


def _demo(args):
    from .demo import run_demo

    run_demo(
        strategies=args.strategies,
        n_seeds=args.seeds,
        n_rounds=args.rounds,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        output_dir=args.output_dir,
        n_jobs=args.n_jobs,
    )
    return 0


def _report(args):
    from pathlib import Path

    from .experiments import write_report

    for directory in args.combine or [args.output_dir]:
        if not (Path(directory) / "cells").is_dir():
            raise FileNotFoundError(
                f"{directory} is not a `skal bench` results directory (it has no "
                f"cells/ folder); give the --output-dir of a `skal bench` run."
            )
    write_report(
        args.output_dir,
        sources=args.combine,
        strategies=args.strategies,
        drop=args.drop,
    )
    return 0


def _one_line_errors(command, run, args):
    """Run a command; a user error (bad path, bad value) is one line, not a traceback.

    Anything else (a bug) keeps its traceback.
    """
    import sys

    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"skal {command}: error: {message}", file=sys.stderr)
        return 1


def main(argv=None):
    """Entry point of the ``skal`` command."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return _one_line_errors("demo", _demo, args)
    elif args.command == "bench":
        try:
            return _bench(args)
        except KeyboardInterrupt:
            return 130
    elif args.command == "report":
        return _one_line_errors("report", _report, args)
    return 0
