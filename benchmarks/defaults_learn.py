"""Do the MLP's defaults learn? Test accuracy on text, tabular data and images.

For each dataset and number of labels, the same random labeled rows (seeded) train

- ``LogReg``: ``LogisticRegression(C=10)`` (a linear reference);
- ``paper``: ``MLPClassifier(first_layer_lr_scale=1.0, criterion__label_smoothing=0)``,
  paper 001's network, loss and optimizer as printed (SGD lr 0.01, momentum 0.9,
  batch 8, 30 epochs, no dropout);
- ``default``: ``MLPClassifier()``;
- any extra configurations given with ``--extra 'dropout=0.5'`` (Python keyword
  arguments for MLPClassifier).

Datasets (``--data-home``, e.g. /work/shared/data): 20 Newsgroups (full TF-IDF
vocabulary, 101,322 columns), ISOLET (standardized), sklearn digits (pixels / 16) and
MNIST (pixel rows in [0, 1]). Test accuracy on at most ``--test`` random test rows;
the mean over ``--seeds`` labeled draws is printed.

    OMP_NUM_THREADS=1 python benchmarks/defaults_learn.py --data-home /work/shared/data
"""

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skal.nets import MLPClassifier


def load(name, data_home):
    from skal import datasets

    if name == "20newsgroups":
        d = datasets.load_20newsgroups(data_home=data_home, download_if_missing=False)
        return d.X_train, d.y_train, d.X_test, d.y_test
    if name == "isolet":
        d = datasets.load_isolet(data_home=data_home, download_if_missing=False)
        return d.X_train, d.y_train, d.X_test, d.y_test
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(np.float32)
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=0.3, random_state=0, stratify=y
        )
        return X_tr, y_tr, X_te, y_te
    d = datasets.load_mnist(data_home=data_home)
    flat = lambda a: a.reshape(len(a), -1).astype(np.float32) / 255.0  # noqa: E731
    return flat(d.X_train), d.y_train, flat(d.X_test), d.y_test


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument(
        "--datasets", nargs="+", default=["20newsgroups", "isolet", "digits", "mnist"]
    )
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 300, 1000, 3000])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--test", type=int, default=3000)
    parser.add_argument("--extra", nargs="*", default=[])
    args = parser.parse_args()
    torch.set_num_threads(1)
    paper = dict(first_layer_lr_scale=1.0, criterion__label_smoothing=0.0)
    configs = {"paper": paper, "default": {}}
    for spec in args.extra:
        configs[spec] = eval(f"dict({spec})")  # noqa: S307 - a command-line option
    names = ["LogReg", *configs]
    print(f"{'dataset':14s} {'labels':>6s}" + "".join(f" {n[:16]:>16s}" for n in names))
    for name in args.datasets:
        X_train, y_train, X_test, y_test = load(name, args.data_home)
        test = np.random.RandomState(99).permutation(X_test.shape[0])[: args.test]
        X_test, y_test = X_test[test], y_test[test]
        classes = np.unique(y_train)
        for n in args.labels:
            if n > X_train.shape[0]:
                continue
            scores = {key: [] for key in names}
            start = time.perf_counter()
            for seed in range(args.seeds):
                rows = np.random.RandomState(seed).permutation(X_train.shape[0])[:n]
                X, y = X_train[rows], y_train[rows]
                logreg = LogisticRegression(C=10, max_iter=1000).fit(X, y)
                scores["LogReg"].append(logreg.score(X_test, y_test))
                for key, params in configs.items():
                    net = MLPClassifier(random_state=seed, classes=classes, **params)
                    scores[key].append(net.fit(X, y).score(X_test, y_test))
            cells = "".join(f" {np.mean(scores[k]):16.3f}" for k in names)
            print(
                f"{name:14s} {n:6d}{cells}   ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
