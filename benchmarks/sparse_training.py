"""Training speed on sparse TF-IDF-like input: skal's MLPClassifier vs plain skorch.

Both train the same 512-256 MLP (SGD, momentum 0.9, mini-batch 8) for one epoch on
the same CSR matrix. Plain skorch densifies each row separately in its DataLoader;
skal slices each mini-batch from the CSR matrix and densifies only that batch.

    python benchmarks/sparse_training.py --rows 1000 --features 20000 --repeats 3
"""

import argparse
import time

import numpy as np
import torch
from scipy import sparse
from skorch import NeuralNetClassifier
from torch import nn

from skal.nets import MLPClassifier, MLPModule


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


def time_one_epoch(make_net, X, y, repeats):
    times = []
    for _ in range(repeats):
        net = make_net()
        start = time.perf_counter()
        net.fit(X, y)
        times.append(time.perf_counter() - start)
    return np.array(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20000)
    parser.add_argument("--nnz", type=int, default=80, help="non-zeros per row")
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    X, y = tfidf_like(args.rows, args.features, args.nnz, args.classes)
    steps = int(np.ceil(args.rows / args.batch_size))
    common = dict(max_epochs=1, batch_size=args.batch_size, lr=0.01, train_split=None)

    def plain_skorch():
        return NeuralNetClassifier(
            MLPModule,
            module__n_features=args.features,
            module__n_classes=args.classes,
            criterion=nn.CrossEntropyLoss,
            optimizer=torch.optim.SGD,
            optimizer__momentum=0.9,
            iterator_train__shuffle=True,
            **common,
        )

    def skal_mlp():
        return MLPClassifier(**common)

    print(
        f"torch threads: {torch.get_num_threads()}; {args.rows} rows x {args.features} "
        f"features, {X.nnz / args.rows:.0f} nnz/row, batch {args.batch_size} "
        f"({steps} steps/epoch)"
    )
    results = {}
    for name, make in [
        ("plain skorch (row-wise DataLoader)", plain_skorch),
        ("skal MLPClassifier (batch slicing)", skal_mlp),
    ]:
        t = time_one_epoch(make, X, y, args.repeats)
        results[name] = t
        print(
            f"{name:38s} epoch median {np.median(t):7.2f} s  range "
            f"[{t.min():.2f}, {t.max():.2f}]  {1000 * np.median(t) / steps:6.1f} ms/step"
        )
    plain, ours = (np.median(t) for t in results.values())
    print(f"speed-up: {plain / ours:.1f}x")


if __name__ == "__main__":
    main()
