"""The ``skal`` command line (also ``python -m skal``)."""

import argparse

from .strategies import available_strategies


def _parser():
    parser = argparse.ArgumentParser(prog="skal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
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
    demo.add_argument("--n-jobs", type=int, default=1, help="parallel cells (joblib)")
    return parser


def main(argv=None):
    """Entry point of the ``skal`` command."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
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
