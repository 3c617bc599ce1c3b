"""Self-training (with and without DARP) against supervised training on digits.

sklearn's digits (1,797 8x8 images, 10 balanced classes): 497 held out for
testing, a pool of 1,300 of which 50 random rows are labeled (class counts as
drawn, i.e. imbalanced like an active-learning labeled set). Models: skal's
MLPClassifier with one hidden layer of 64 units, 10 or 30 epochs (paper 001's
SGD, mini-batch 8, lr 0.01, momentum 0.9), and, for reference, scikit-learn's LogisticRegression(C=10).
Self-training: up to 5 rounds; DARP towards the uniform distribution or none.
Five seeds (split, labeled rows and network seed all follow the seed).

    OMP_NUM_THREADS=1 python docs/results/assl/self_training_digits.py
"""

import time

import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from skal.nets import MLPClassifier
from skal.semi_supervised import SelfTrainingClassifier

N_LABELED, N_POOL, SEEDS, THRESHOLDS = 50, 1300, range(5), (0.75, 0.9, 0.95)


def models(seed):
    mlp = {
        f"MLP(64), {epochs} epochs": MLPClassifier(
            hidden_layer_sizes=(64,),
            max_epochs=epochs,
            classes=np.arange(10),
            random_state=seed,
        )
        for epochs in (10, 30)
    }
    return {**mlp, "LogisticRegression(C=10)": LogisticRegression(C=10.0)}


def split(seed):
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(y))
    pool, test = order[:N_POOL], order[N_POOL:]
    y_partial = np.full(N_POOL, -1)
    labeled = rng.choice(N_POOL, N_LABELED, replace=False)
    y_partial[labeled] = y[pool][labeled]
    return X[pool], y[pool], y_partial, X[test], y[test]


def pseudo_label_stats(model, y_pool, y_partial):
    pseudo = (model.transduction_ != -1) & (y_partial == -1)
    if not pseudo.any():
        return 0, np.nan, np.nan
    accuracy = np.mean(model.transduction_[pseudo] == y_pool[pseudo])
    counts = np.bincount(model.transduction_[pseudo], minlength=10)
    return int(pseudo.sum()), accuracy, counts.max() / max(counts.min(), 1)


def mean(values):
    """Mean over the seeds that have a value ('-' when none has)."""
    values = values[~np.isnan(values)]
    return values.mean() if len(values) else np.nan


def main():
    torch.set_num_threads(1)
    rows = []
    start = time.time()
    for name in models(0):
        results = {}
        for seed in SEEDS:
            X, y_pool, y_partial, X_test, y_test = split(seed)
            base = models(seed)[name]
            labeled = y_partial != -1
            supervised = clone(base).fit(X[labeled], y_partial[labeled])
            results.setdefault("supervised", []).append(
                (supervised.score(X_test, y_test), 0, np.nan, np.nan, 0)
            )
            for threshold in THRESHOLDS:
                for target in (None, "uniform"):
                    model = SelfTrainingClassifier(
                        base, threshold=threshold, max_iter=5, darp=target
                    ).fit(X, y_partial)
                    key = f"self-training t={threshold} darp={target}"
                    results.setdefault(key, []).append(
                        (model.score(X_test, y_test),)
                        + pseudo_label_stats(model, y_pool, y_partial)
                        + (len(model.n_pseudo_labels_),)
                    )
        base_acc = np.array([r[0] for r in results["supervised"]])
        for key, values in results.items():
            values = np.array(values, dtype=float)
            gain = values[:, 0] - base_acc
            rows.append(
                f"| {name} | {key} | {values[:, 0].mean():.3f} ± {values[:, 0].std():.3f} "
                f"| {gain.mean():+.3f} | {(gain > 0).sum()}/{len(gain)} "
                f"| {values[:, 1].mean():.0f} | {mean(values[:, 2]):.3f} "
                f"| {mean(values[:, 3]):.1f} | {values[:, 4].mean():.1f} |"
            )
            print(rows[-1], flush=True)
    print(f"\n{time.time() - start:.0f} s")
    header = (
        "| model | learner | test accuracy (mean ± sd, 5 seeds) | gain vs supervised "
        "| seeds with a gain | pseudo-labels | pseudo-label accuracy "
        "| pseudo-label max/min class count | refits |\n|" + "---|" * 9
    )
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
