"""The ``skal`` command line (also ``python -m skal``).

- ``skal demo``: a quick comparison of every strategy on digits.
- ``skal bench``: the evaluation of paper 001 (section 4), scaled by flags,
  resumable, in parallel with joblib or on a Dask cluster.
- ``skal report OUTPUT_DIR``: re-aggregate and re-plot a ``skal bench`` directory.
"""

import argparse

from .experiments._options import GROUPS, SAME_DEFAULT
from .experiments._protocol import BenchmarkProtocol, flag_of, options
from .strategies import available_strategies


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
    # One flag per BenchmarkProtocol field: a new field is a new flag.
    groups = {name: bench.add_argument_group(name) for name in GROUPS}
    exclusive = {}
    for f, option in options():
        group = groups[option.group]
        if option.exclusive:
            if option.exclusive not in exclusive:
                exclusive[option.exclusive] = group.add_mutually_exclusive_group()
            group = exclusive[option.exclusive]
        cli = dict(option.cli)
        if callable(cli.get("choices")):  # registries: read when the parser is made
            cli["choices"] = cli["choices"]()
        default = (
            f.default if option.cli_default is SAME_DEFAULT else option.cli_default
        )
        flag = flag_of(f)
        if not {"action", "choices"} & set(cli):  # --rounds ROUNDS, not N_ROUNDS
            cli.setdefault("metavar", flag[2:].replace("-", "_").upper())
        group.add_argument(
            flag,
            dest=f.name,
            default=default,
            help=option.help + _shown_default(default),
            **cli,
        )


def _shown_default(default):
    if default is None or isinstance(default, bool) or default == ():
        return ""  # the help says what None (none) means; --x/--no-x shows itself
    if isinstance(default, tuple | list):
        default = " ".join(map(str, default))
    return f" (default: {default})"


def _bench_protocol(args):
    """The :class:`BenchmarkProtocol` of parsed ``skal bench`` arguments."""
    return BenchmarkProtocol(**{f.name: getattr(args, f.name) for f, _ in options()})


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


def _bench(protocol):
    from .experiments import run_benchmark

    report = run_benchmark(protocol=protocol)
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
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError) as exc:
        return _print_error(command, exc)


def _print_error(command, exc):
    import sys

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
            protocol = _bench_protocol(args)
        except (ValueError, TypeError) as exc:  # a bad value or strategy parameter
            return _print_error("bench", exc)
        # An error while running keeps its traceback (it may be a bug, and a
        # long run's log needs it).
        try:
            return _bench(protocol)
        except KeyboardInterrupt:
            return 130
    elif args.command == "report":
        return _one_line_errors("report", _report, args)
    return 0
