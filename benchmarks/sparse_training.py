"""Training speed on sparse TF-IDF-like input: skal's MLPClassifier vs plain skorch.

All train a 512-256 MLP (SGD, momentum 0.9, mini-batch 8) for one epoch on the same
CSR matrix:

- plain skorch: an ``nn.Linear`` MLP; its DataLoader densifies each row separately;
- skal, dense path (``lazy_sparse_updates=False``): each mini-batch is sliced from the
  CSR matrix and densified, and SGD updates all 10M first-layer weights;
- skal, lazy sparse path (default): the batch stays sparse, the first layer is an
  ``embedding_bag`` and LazyMomentumSGD updates only the rows of the batch's features.

The two skal paths start from the same seed and must end at the same weights: the
largest difference of their predicted probabilities is printed.

    python benchmarks/sparse_training.py --rows 1000 --features 20000 --repeats 3
"""

import argparse
import time

import numpy as np
import torch
from scipy import sparse
from skorch import NeuralNetClassifier
from torch import nn

from skal.nets import MLPClassifier


def tfidf_like(n_rows, n_features, nnz_per_row, n_classes, seed=0):
    """Random CSR rows with ~nnz_per_row non-zeros, L2-normalized like TF-IDF."""
    rng = np.random.RandomState(seed)
    X = sparse.random(
        n_rows,
        n_features,
        density=nnz_per_row / n_features,
        format="csr",
        random_state=rng,
        dtype=np.float32,
    )
    norms = np.sqrt(X.multiply(X).sum(axis=1)).A.ravel()
    X = sparse.diags(1 / np.maximum(norms, 1e-12)) @ X
    return X.tocsr().astype(np.float32), rng.randint(0, n_classes, n_rows)


def plain_mlp(n_features, n_classes):
    """The papers' MLP in plain torch layers (skorch's baseline)."""
    return nn.Sequential(
        nn.Linear(n_features, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, n_classes),
    )


def time_one_epoch(make_net, X, y, repeats):
    times, net = [], None
    for _ in range(repeats):
        net = make_net()
        start = time.perf_counter()
        net.fit(X, y)
        times.append(time.perf_counter() - start)
    return np.array(times), net


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20000)
    parser.add_argument("--nnz", type=int, default=80, help="non-zeros per row")
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    X, y = tfidf_like(args.rows, args.features, args.nnz, args.classes)
    steps = int(np.ceil(args.rows / args.batch_size))
    common = dict(
        max_epochs=1, batch_size=args.batch_size, lr=0.01, train_split=None, verbose=0
    )

    def plain_skorch():
        return NeuralNetClassifier(
            plain_mlp,
            module__n_features=args.features,
            module__n_classes=args.classes,
            criterion=nn.CrossEntropyLoss,
            optimizer=torch.optim.SGD,
            optimizer__momentum=0.9,
            iterator_train__shuffle=True,
            **common,
        )

    def skal_dense():
        return MLPClassifier(lazy_sparse_updates=False, random_state=0, **common)

    def skal_lazy():
        return MLPClassifier(random_state=0, **common)

    print(
        f"torch threads: {torch.get_num_threads()}; {args.rows} rows x {args.features} "
        f"features, {X.nnz / args.rows:.0f} nnz/row, batch {args.batch_size} "
        f"({steps} steps/epoch); {args.repeats} repeats, one epoch each"
    )
    runs = {
        "plain skorch (row-wise DataLoader)": plain_skorch,
        "skal dense path (lazy off)": skal_dense,
        "skal lazy sparse path": skal_lazy,
    }
    ms_per_step, nets = {}, {}
    for name, make in runs.items():
        t, nets[name] = time_one_epoch(make, X, y, args.repeats)
        ms_per_step[name] = ms = 1000 * t / steps
        print(
            f"{name:36s} {np.median(ms):7.2f} ms/step (median)  range "
            f"[{ms.min():.2f}, {ms.max():.2f}]  epoch {np.median(t):.2f} s"
        )
    plain, dense, lazy = (np.median(ms) for ms in ms_per_step.values())
    print(
        f"speed-up of the lazy path: {plain / lazy:.1f}x over plain skorch, "
        f"{dense / lazy:.1f}x over skal's dense path "
        f"(dense path vs plain skorch: {plain / dense:.2f}x)"
    )
    same = np.abs(
        nets["skal dense path (lazy off)"].predict_proba(X)
        - nets["skal lazy sparse path"].predict_proba(X)
    ).max()
    print(f"max |proba(dense path) - proba(lazy path)| = {same:.1e}")


if __name__ == "__main__":
    main()
