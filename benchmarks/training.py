"""Training speed: skal vs skorch's own loop vs a minimal hand-written torch loop.

Per-step time (one torch thread, after a warm-up fit; median epoch duration / steps)
of the same network trained with SGD, momentum 0.9, on

- ``dense``: the papers' MLP 617-512-256-26 on standardized features;
- ``sparse``: the MLP on 20 Newsgroups-like CSR rows (101,322 columns, ~100
  Zipf-distributed non-zeros per row, L2-normalized), first layer an
  ``embedding_bag`` trained with exact lazy momentum;
- ``lenet``: LeNet + head (512, 256) on 28x28 uint8 images;

at batch 8 and 64. Columns: the minimal loop (plain torch, written here: data as
tensors, one permutation per epoch, slices; for ``sparse`` the gathered-rows lazy
momentum step), skal (``MLPClassifier``/``CNNClassifier``), skal forced through
skorch's loop (``lean_training=False``) and plain skorch (``NeuralNetClassifier``
with its DataLoader; not run on ``sparse``, whose rows it densifies one by one).
Ratios are to the minimal loop in the same run.

``--cell`` also times one paper-001 20 Newsgroups cell's training: ``MLPClassifier()``
with its defaults (30 epochs, batch 8) trained from scratch on random labeled sets
of 100, 200, ..., 2,000 documents (real data from ``--data-home`` when present).

    OMP_NUM_THREADS=1 python benchmarks/training.py
    OMP_NUM_THREADS=1 python benchmarks/training.py --cell --data-home /work/shared/data
    # before/after: the cell at another checkout
    git worktree add /tmp/skal_before HEAD
    PYTHONPATH=/tmp/skal_before python benchmarks/training.py --cell --skip-steps ...
"""

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from skorch import NeuralNetClassifier
from torch import nn

from skal.nets import CNNClassifier, CNNModule, MLPClassifier, MLPModule

N_TEXT_FEATURES = 101_322


# --- data ----------------------------------------------------------------------------
def dense_data(n, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, 617).astype(np.float32), rng.randint(0, 26, n)


def text_data(n, n_features=N_TEXT_FEATURES, nnz=100, n_classes=20, seed=0):
    """L2-normalized rows with Zipf-distributed columns, like TF-IDF documents."""
    rng = np.random.RandomState(seed)
    p = 1.0 / np.arange(1, n_features + 1)
    cols = rng.choice(n_features, size=(n, nnz), p=p / p.sum())
    rows = np.repeat(np.arange(n), nnz)
    X = sparse.csr_matrix(
        (rng.rand(n * nnz).astype(np.float32), (rows, cols.ravel())),
        shape=(n, n_features),
    )
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sparse.csr_matrix(sparse.diags(1 / norms) @ X, dtype=np.float32)
    return X, rng.randint(0, n_classes, n)


def image_data(n, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, (n, 28, 28), dtype=np.uint8), rng.randint(0, 10, n)


# --- minimal loops ---------------------------------------------------------------------
def minimal_dense(module, X, y, batch_size, epochs, lr=0.01):
    """Plain torch: tensors, one permutation per epoch, slices; epoch durations."""
    optimizer = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    durations = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(X))
        Xp, yp = X[order], y[order]
        for s in range(0, len(X), batch_size):
            optimizer.zero_grad()
            loss = F.cross_entropy(
                module(Xp[s : s + batch_size].float()), yp[s : s + batch_size]
            )
            loss.backward()
            optimizer.step()
        durations.append(time.perf_counter() - start)
    return durations


def minimal_sparse(X, y, batch_size, epochs, lr=0.01, mu=0.9, n_classes=20):
    """Embedding-bag first layer with exact lazy momentum, in plain torch.

    Per batch: the unique feature rows are gathered once, caught up in closed form
    (the momentum-only steps they missed), trained as a small dense block, and
    written back; the upper layers use torch.optim.SGD.
    """
    n, n_features = X.shape
    weight = torch.empty(512, n_features)
    nn.init.kaiming_uniform_(weight, a=5**0.5)
    weight = weight.t().contiguous()
    velocity = torch.zeros_like(weight)
    last_step = torch.zeros(n_features, dtype=torch.int64)
    bias = nn.Parameter(torch.zeros(512))
    upper = nn.Sequential(
        nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, n_classes)
    )
    optimizer = torch.optim.SGD([bias, *upper.parameters()], lr=lr, momentum=mu)
    y = torch.from_numpy(y)
    step, durations = 0, []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n)
        Xp = X[order.numpy()]
        indptr = torch.from_numpy(Xp.indptr.astype(np.int64))
        indices = torch.from_numpy(Xp.indices.astype(np.int64))
        values = torch.from_numpy(Xp.data)
        yp = y[order]
        for s in range(0, n, batch_size):
            e = min(s + batch_size, n)
            a, b = int(Xp.indptr[s]), int(Xp.indptr[e])
            rows, local = torch.unique(indices[a:b], return_inverse=True)
            owed = (step - last_step.index_select(0, rows)).double()
            v = velocity.index_select(0, rows)
            w = weight.index_select(0, rows)
            w.addcmul_(v, (-lr * mu * (1 - mu**owed) / (1 - mu)).float()[:, None])
            v.mul_((mu**owed).float()[:, None])
            w.requires_grad_()
            optimizer.zero_grad()
            hidden = F.embedding_bag(
                local, w, indptr[s:e] - a, mode="sum", per_sample_weights=values[a:b]
            )
            loss = F.cross_entropy(upper(hidden + bias), yp[s:e])
            loss.backward()
            optimizer.step()
            step += 1
            with torch.no_grad():
                v.mul_(mu).add_(w.grad)
                weight.index_copy_(0, rows, w.add_(v, alpha=-lr))
                velocity.index_copy_(0, rows, v)
                last_step.index_fill_(0, rows, step)
        durations.append(time.perf_counter() - start)
    return durations


# --- skal and skorch -------------------------------------------------------------------
def lean_supported():
    return "lean_training" in MLPClassifier().get_params()


def net_epochs(make, X, y, epochs):
    make(max_epochs=1).fit(X, y)  # warm-up: one-time set-up costs
    net = make(max_epochs=epochs).fit(X, y)
    return list(net.history[:, "dur"])


def skal_net(workload, lean, batch_size, **params):
    extra = {} if lean is None else {"lean_training": lean}
    common = dict(batch_size=batch_size, random_state=0, **extra, **params)
    if workload == "lenet":
        return CNNClassifier("lenet", **common)
    return MLPClassifier(**common)


def plain_skorch(workload, batch_size, n_features, n_classes, **params):
    if workload == "lenet":
        module, kwargs = CNNModule, dict(module__in_shape=(1, 28, 28))
    else:
        module, kwargs = MLPModule, {}
    return NeuralNetClassifier(
        module,
        module__n_features=n_features,
        module__n_classes=n_classes,
        **kwargs,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.01,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
        **params,
    )


def per_step_times(workload, batch_size, n_rows, epochs):
    """ms/step of each loop for one workload and batch size."""
    torch.manual_seed(0)
    if workload == "dense":
        X, y = dense_data(n_rows)
        minimal = lambda: minimal_dense(MLPModule(617, 26), X, y, batch_size, epochs)  # noqa: E731
    elif workload == "sparse":
        X, y = text_data(n_rows)
        minimal = lambda: minimal_sparse(X, y, batch_size, epochs)  # noqa: E731
    else:
        X, y = image_data(n_rows)
        minimal = lambda: minimal_dense(  # noqa: E731
            CNNModule(784, 10, (1, 28, 28)), X, y, batch_size, epochs
        )
    n_features, n_classes = int(np.prod(X.shape[1:])), len(np.unique(y))
    minimal()  # warm-up
    steps = int(np.ceil(n_rows / batch_size))
    runs = {"minimal": minimal()}
    lean = lean_supported()
    runs["skal"] = net_epochs(
        lambda **p: skal_net(workload, True if lean else None, batch_size, **p),
        X,
        y,
        epochs,
    )
    if lean:
        runs["skal, skorch loop"] = net_epochs(
            lambda **p: skal_net(workload, False, batch_size, **p), X, y, epochs
        )
    if workload != "sparse":
        Xs = X.astype(np.float32)
        runs["plain skorch"] = net_epochs(
            lambda **p: plain_skorch(workload, batch_size, n_features, n_classes, **p),
            Xs,
            y,
            epochs,
        )
    # Median over the epochs after the first (which pays first-touch costs).
    return {name: 1000 * np.median(d[1:]) / steps for name, d in runs.items()}


def paper_cell(data_home, epochs=30, seed=0):
    """Seconds to train MLPClassifier() on labeled sets 100, 200, ..., 2000."""
    X = y = None
    if data_home:
        try:
            from skal.datasets import load_20newsgroups

            data = load_20newsgroups(data_home=data_home, download_if_missing=False)
            X, y, source = data.X_train, data.y_train, "20 Newsgroups"
        except Exception as error:  # noqa: BLE001 - fall back to synthetic rows
            print(f"(20 Newsgroups not loaded: {error}; synthetic rows instead)")
    if X is None:
        X, y = text_data(11_314, nnz=60)
        source = "synthetic 20NG-like"
    order = np.random.RandomState(seed).permutation(X.shape[0])
    classes = np.unique(y)
    MLPClassifier(max_epochs=1, random_state=0).fit(X[order[:100]], y[order[:100]])
    start = time.perf_counter()
    for n in range(100, 2001, 100):
        MLPClassifier(random_state=seed, classes=classes, max_epochs=epochs).fit(
            X[order[:n]], y[order[:n]]
        )
    seconds = time.perf_counter() - start
    steps = epochs * sum(-(-n // 8) for n in range(100, 2001, 100))
    return seconds, steps, source, X[order[:2000]], y[order[:2000]]


def minimal_steps_ms(X, y, epochs=3):
    """ms/step of the minimal sparse loop on rows X and of the minimal dense step."""
    _, y = np.unique(y, return_inverse=True)
    minimal_sparse(X, y, 8, 1, n_classes=y.max() + 1)  # warm-up
    sparse_ms = minimal_sparse(X, y, 8, epochs, n_classes=y.max() + 1)
    Xd, yd = dense_data(512)
    minimal_dense(MLPModule(617, 26), Xd, yd, 8, 1)
    dense_ms = minimal_dense(MLPModule(617, 26), Xd, yd, 8, epochs)
    steps, dense_steps = -(-X.shape[0] // 8), 64
    return (
        1000 * np.median(sparse_ms[1:]) / steps,
        1000 * np.median(dense_ms[1:]) / dense_steps,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512, help="training rows per fit")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--workloads", nargs="+", default=["dense", "sparse", "lenet"])
    parser.add_argument("--cell", action="store_true", help="time a paper-001 cell")
    parser.add_argument(
        "--cell-epochs",
        type=int,
        default=30,
        help="epochs per fit in the cell (fewer: a quicker estimate, ~linear)",
    )
    parser.add_argument("--skip-steps", action="store_true")
    parser.add_argument("--data-home", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import skal  # which checkout is measured (before/after runs use PYTHONPATH)

    print(
        f"skal from {skal.__file__}; torch {torch.__version__}, 1 thread; "
        f"{args.rows} rows, median epoch / steps"
    )
    if not args.skip_steps:
        header = f"{'workload':8s} {'batch':>5s} {'minimal':>8s}"
        names = ["skal", "skal, skorch loop", "plain skorch"]
        print(header + "".join(f" {n:>24s}" for n in names))
        dense_8 = None
        for workload in args.workloads:
            for batch_size in args.batch_sizes:
                ms = per_step_times(workload, batch_size, args.rows, args.epochs)
                base = ms["minimal"]
                if workload == "dense" and batch_size == 8:
                    dense_8 = base
                cells = [
                    f"{ms[n]:8.3f} ms ({ms[n] / base:4.2f}x)" if n in ms else "n/a"
                    for n in names
                ]
                print(
                    f"{workload:8s} {batch_size:5d} {base:5.3f} ms"
                    + "".join(f" {c:>24s}" for c in cells),
                    flush=True,
                )
                if workload == "sparse" and batch_size == 8 and dense_8:
                    print(
                        f"   sparse skal step / minimal dense step (batch 8): "
                        f"{ms['skal'] / dense_8:.2f}x",
                        flush=True,
                    )
    if args.cell:
        seconds, steps, source, X, y = paper_cell(args.data_home, args.cell_epochs)
        print(
            f"paper-001 cell ({source}, {X.shape[1]} features): labeled sets "
            f"100..2000 step 100, {args.cell_epochs} epochs, batch 8: {seconds:.1f} s",
            flush=True,
        )
        # The machine's speed changes between sessions: compare the cell with the
        # minimal loops' steps measured now (an absolute time alone says little).
        sparse_ms, dense_ms = minimal_steps_ms(X, y)
        print(
            f"   {steps} steps: {1000 * seconds / steps:.2f} ms each; minimal sparse "
            f"loop on the cell's 2,000 rows {sparse_ms:.2f} ms/step (cell / minimal: "
            f"{seconds / (steps * sparse_ms / 1000):.2f}x); minimal dense 617-512-256 "
            f"step {dense_ms:.2f} ms (cell step / dense step: "
            f"{1000 * seconds / steps / dense_ms:.2f}x)"
        )


if __name__ == "__main__":
    main()
