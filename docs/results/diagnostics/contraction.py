"""Does the gradient discrepancy contract during training? (paper 001, Appendix A)

As in the appendix: a two-layer network (one hidden layer of 256 ReLUs, so two
weight layers), learning rate 1e-4, a sample S of 1,000 training rows drawn
uniformly, S_J a uniformly drawn half of S, 150 epochs, trained on S, and
``||grad f(S) - grad f(S_J)||`` over all parameters recorded before training and
after every epoch (:class:`skal.diagnostics.GradientDiscrepancyMonitor`).
skal's MLP defaults otherwise: SGD with momentum 0.9, mini-batches of 8. The
paper's German and Gisette are not available offline; we use 20 Newsgroups
(TF-IDF limited to 5,000 features to keep the full gradient small), ISOLET and
Poker Hand (UCI encoding, standardized). ``--lr`` adds runs at other rates.

    python docs/results/diagnostics/contraction.py                  # ~3 min, 1 core
    python docs/results/diagnostics/contraction.py --lr 1e-4 1e-2   # ~6 min

Writes ``contraction.png`` (one row of panels per rate) and ``contraction.csv``
next to this script.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from skal.datasets import load_20newsgroups, load_isolet, load_pokerhand
from skal.diagnostics import GradientDiscrepancyMonitor, plot_discrepancy_curves
from skal.nets import MLPClassifier

HERE = Path(__file__).resolve().parent
SAMPLE_SIZE = 1000


def datasets(data_home):
    newsgroups = load_20newsgroups(
        data_home, max_features=5000, download_if_missing=False
    )
    isolet = load_isolet(data_home, download_if_missing=False)
    poker = load_pokerhand(
        data_home, source="uci", n_train=20000, download_if_missing=False
    )
    return {
        "20 Newsgroups (TF-IDF, 5k features)": newsgroups,
        "ISOLET": isolet,
        "Poker Hand": poker,
    }


def run(name, data, lr, epochs, seed=0):
    rng = np.random.RandomState(seed)
    rows = np.sort(rng.choice(len(data.y_train), SAMPLE_SIZE, replace=False))
    X, y = data.X_train[rows], data.y_train[rows]
    monitor = GradientDiscrepancyMonitor(X, y, subset_size=0.5, random_state=seed)
    net = MLPClassifier(
        hidden_layer_sizes=(256,),
        lr=lr,
        max_epochs=epochs,
        classes=np.unique(data.y_train),
        callbacks=[monitor],
        random_state=seed,
    )
    start = time.perf_counter()
    net.fit(X, y)
    seconds = time.perf_counter() - start
    values = np.array([monitor.initial_discrepancy_, *monitor.discrepancies_])
    peak = int(np.argmax(values))
    after_peak = np.diff(values[peak:])
    print(
        f"{name} (lr {lr:g}): {seconds:.0f} s, train accuracy "
        f"{net.score(X, y):.3f}, test accuracy "
        f"{net.score(data.X_test, data.y_test):.3f}; DF epoch 0 {values[0]:.4g}, "
        f"max {values[peak]:.4g} at epoch {peak}, last {values[-1]:.4g} "
        f"({values[-1] / values[peak]:.2f} x max); "
        f"{np.mean(after_peak <= 0):.0%} of the {len(after_peak)} steps after the "
        f"max do not increase it"
    )
    return monitor, values


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-home", default="/work/shared/data")
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-4])
    parser.add_argument("--epochs", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(1)

    data = datasets(args.data_home)
    rows, curves = [], {}
    for lr in args.lr:
        for name, bunch in data.items():
            monitor, values = run(name, bunch, lr, args.epochs)
            curves[f"{name}, lr {lr:g}"] = monitor
            rows += [
                dict(dataset=name, lr=lr, epoch=e, discrepancy=v)
                for e, v in enumerate(values)
            ]
    plot_discrepancy_curves(curves).savefig(HERE / "contraction.png", dpi=110)
    pd.DataFrame(rows).to_csv(HERE / "contraction.csv", index=False)


if __name__ == "__main__":
    main()
