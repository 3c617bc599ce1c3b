"""FixMatch (optionally with DARP) against supervised LeNet on MNIST with 100 labels.

The pool is the offline MNIST training subset (5,000 digits, 500 per class; the
full training images are not in /work/shared/data); 100 random rows of it are
labeled, the other 4,900 are the unlabeled data. Test: the full t10k set.

- supervised: skal's CNNClassifier('lenet') with paper 001's training (30
  epochs, SGD lr 0.01, momentum 0.9, mini-batch 8) on the 100 labels;
- supervised + weak augmentation: the same with FixMatch's weak augmentation
  (translation by up to 12.5 %, reflect padding; no flip for digits) and as many
  labeled mini-batches as FixMatch sees (30 epochs underfit with augmentation),
  to separate what augmentation alone gives;
- FixMatch: the same network, lr 0.03 with FixMatch's cosine decay, B = 8,
  mu = 7, threshold 0.95, lambda_u = 1, ``--epochs`` passes over the unlabeled
  rows; with ``--darp`` also FixMatch + DARP towards the uniform distribution.

``--imbalance R`` draws the labels with class weights ``R ** (-k / 9)`` (class 0
R times as likely as class 9), like a class-imbalanced actively acquired set;
the unlabeled rows stay balanced.

    OMP_NUM_THREADS=1 python docs/results/assl/fixmatch_mnist.py --seeds 0 1 2 --epochs 10
"""

import argparse
import json
import math
import time

import numpy as np
import torch

from skal.datasets import load_mnist
from skal.nets import CNNClassifier
from skal.semi_supervised import FixMatchClassifier, WeakAugment

N_LABELED = 100


def lenet(seed, **params):
    return CNNClassifier("lenet", classes=np.arange(10), random_state=seed, **params)


def draw_labeled(y, seed, imbalance):
    """100 rows; class k is drawn with weight imbalance ** (-k / 9)."""
    rng = np.random.RandomState(seed)
    if imbalance == 1:
        return rng.choice(len(y), N_LABELED, replace=False)
    weights = float(imbalance) ** (-y / (y.max() or 1))
    return rng.choice(len(y), N_LABELED, replace=False, p=weights / weights.sum())


def run(seed, data, epochs, with_darp, imbalance=1.0):
    labeled = draw_labeled(data.y_train, seed, imbalance)
    print(
        seed, "labeled class counts", np.bincount(data.y_train[labeled], minlength=10)
    )
    y_partial = np.full(len(data.y_train), -1)
    y_partial[labeled] = data.y_train[labeled]
    X_labeled, y_labeled = data.X_train[labeled], data.y_train[labeled]
    weak = WeakAugment(flip=False)
    # FixMatch's labeled steps: one per mu * B = 56 unlabeled rows, B = 8.
    n_unlabeled = len(y_partial) - N_LABELED
    matched_epochs = math.ceil(epochs * math.ceil(n_unlabeled / 56) / (N_LABELED / 8))
    learners = {
        "supervised": lambda: lenet(seed).fit(X_labeled, y_labeled),
        f"supervised + weak augmentation ({matched_epochs} epochs)": lambda: lenet(
            seed, augment=weak, max_epochs=matched_epochs
        ).fit(X_labeled, y_labeled),
    }
    for darp in [None, "uniform"] if with_darp else [None]:
        name = "FixMatch" + (" + DARP (uniform)" if darp else "")
        learners[name] = lambda darp=darp: FixMatchClassifier(
            lenet(seed, lr=0.03),
            weak_augment=weak,
            max_epochs=epochs,
            darp=darp,
            random_state=seed,
        ).fit(data.X_train, y_partial)
    results = {}
    for name, fit in learners.items():
        start = time.time()
        model = fit()
        seconds = time.time() - start
        record = {"accuracy": model.score(data.X_test, data.y_test), "seconds": seconds}
        if isinstance(model, FixMatchClassifier):
            record["mask_rate_last_epoch"] = model.history_[-1]["mask_rate"]
        results[name] = record
        print(seed, name, json.dumps(record), flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--darp", action="store_true")
    parser.add_argument(
        "--imbalance",
        type=float,
        default=1.0,
        help="draw labels of class k with weight imbalance ** (-k / 9) (1: random)",
    )
    parser.add_argument("--data-home", default="/work/shared/data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_mnist(data_home=args.data_home)
    print(data.DESCR.splitlines()[0])
    per_seed = {
        seed: run(seed, data, args.epochs, args.darp, args.imbalance)
        for seed in args.seeds
    }
    names = list(per_seed[args.seeds[0]])
    print("\n| learner | test accuracy (mean ± sd) | per seed | seconds per fit |")
    print("|---|---|---|---|")
    for name in names:
        accuracy = np.array([per_seed[s][name]["accuracy"] for s in args.seeds])
        seconds = np.mean([per_seed[s][name]["seconds"] for s in args.seeds])
        print(
            f"| {name} | {accuracy.mean():.3f} ± {accuracy.std():.3f} "
            f"| {', '.join(f'{a:.3f}' for a in accuracy)} | {seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
