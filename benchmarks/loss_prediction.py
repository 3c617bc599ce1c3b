"""How well does the loss-prediction module rank losses, and what does it cost?

For each dataset and model, trains the network with and without a jointly trained
loss-prediction module (Learning Loss's ranking loss; ``skal.nets.LossPrediction``)
on random labeled sets of several sizes, then on the held-out test split reports:

- Spearman correlation between the predicted and the true per-sample
  cross-entropy (what Learning Loss ranks by), and for comparison the correlation
  of the prediction entropy (a free baseline every model has) with the true loss;
- the fraction of test pairs ordered correctly by the predicted loss;
- the test accuracy with and without the module (joint training must not hurt);
- training seconds with and without the module (paper 002, Table IV's column).

Median over seeds. Needs the real data (``--data-home``, see ``../shared/data``):

    python benchmarks/loss_prediction.py --data-home ../shared/data
    python benchmarks/loss_prediction.py --datasets digits --seeds 2   # no files needed
"""

import argparse
import time

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.utils import check_random_state

from skal.experiments import load_benchmark_data, make_model
from skal.nets import LossPrediction

MODELS = {"mnist": "lenet", "isolet": "mlp", "digits": "mlp", "20newsgroups": "mlp"}


def pairwise_order_accuracy(predicted, true, n_pairs=20000, seed=0):
    """Fraction of random pairs whose predicted losses are ordered like the true ones."""
    rng = check_random_state(seed)
    i, j = rng.randint(len(true), size=(2, n_pairs))
    keep = true[i] != true[j]
    agree = np.sign(predicted[i] - predicted[j]) == np.sign(true[i] - true[j])
    return float(agree[keep].mean())


def evaluate(net, X, y):
    proba = net.predict_proba(X)
    rows = np.searchsorted(net.classes_, y)
    true = -np.log(np.maximum(proba[np.arange(len(y)), rows], 1e-12))
    entropy = -(proba * np.log(np.maximum(proba, 1e-12))).sum(1)
    out = {"accuracy": float((net.classes_[proba.argmax(1)] == y).mean())}
    if net.loss_prediction is not None:
        predicted = net.predict_loss(X)
        out["spearman_predicted"] = spearmanr(predicted, true).statistic
        out["pairs_ordered"] = pairwise_order_accuracy(predicted, true)
    out["spearman_entropy"] = spearmanr(entropy, true).statistic
    return out


def run(args):
    rows = []
    for name in args.datasets:
        data = load_benchmark_data(
            name,
            data_home=args.data_home,
            max_features=2000,
            flatten_images=MODELS[name] == "mlp",
        )
        X_test, y_test = data.X_test[: args.n_test], data.y_test[: args.n_test]
        classes = np.unique(data.y_pool)
        base = make_model(
            MODELS[name], max_epochs=args.epochs, sgd_batch_size=16, lr=args.lr
        )
        clone(base).set_params(max_epochs=1).fit(data.X_pool[:64], data.y_pool[:64])
        for n_labeled in args.sizes:  # (the fit above warms up torch, untimed)
            for seed in range(args.seeds):
                labeled = check_random_state(seed).choice(
                    len(data.y_pool), n_labeled, replace=False
                )
                X, y = data.X_pool[labeled], data.y_pool[labeled]
                for with_module in (False, True):
                    net = clone(base).set_params(
                        classes=classes,
                        random_state=seed,
                        loss_prediction=LossPrediction() if with_module else None,
                    )
                    start = time.perf_counter()
                    net.fit(X, y)
                    seconds = time.perf_counter() - start
                    rows.append(
                        dict(
                            dataset=name,
                            model=MODELS[name],
                            n_labeled=n_labeled,
                            seed=seed,
                            loss_module=with_module,
                            train_seconds=seconds,
                            **evaluate(net, X_test, y_test),
                        )
                    )
                    print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "isolet"])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 300])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None, help="also write the rows as CSV")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = run(args)
    if args.output:
        table.to_csv(args.output, index=False)
    summary = table.groupby(["dataset", "model", "n_labeled", "loss_module"]).median(
        numeric_only=True
    )
    summary = summary.drop(columns="seed")
    with pd.option_context(
        "display.width", 200, "display.max_columns", None, "display.precision", 3
    ):
        print(summary)


if __name__ == "__main__":
    main()
