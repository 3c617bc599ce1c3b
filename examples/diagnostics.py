"""See what a strategy does: paper 001's Figures 1-2 and paper 002's Figures 6-8.

Runs on the offline copies in ``/work/shared/data`` (or ``--data-home``) and writes
PNGs and CSVs to ``--out``:

1. ``geometry.png`` (001, Fig. 1): one acquisition step of grad, entropy, BADGE
   and random from the same 10 labeled MNIST digits and the same one-hidden-layer
   net, on 3,000 MNIST rows, B = 10, 20, 40, in PCA projections of the pixels and
   of the pseudo-labeled last-layer gradient embeddings. ``geometry_spread.csv``
   measures what the figure suggests over 10 seeds: the mean pairwise distance
   inside each batch (full space, relative to random pool pairs) and the number
   of distinct true classes in it.
2. ``score_shift.png`` (001, Fig. 2): grad and entropy scores of a net trained on
   5,000 MNIST digits, on 2,000 MNIST test digits and 2,000 CIFAR-10 test images
   converted to 28x28 grayscale (the paper uses CIFAR-10 vs SVHN; SVHN is not
   available offline).
3. ``tsne.png``, ``confidence.png``, ``per_class_accuracy.png``,
   ``class_balance.png`` (002, Figs. 6-8): an LPLgrad run on the 5,000 MNIST
   digits (100 initial labels, 100 per round, 8 rounds), drawn at rounds 2, 4, 6
   and 8; accuracy on 2,000 MNIST test digits.

    python examples/diagnostics.py                 # ~3 minutes on one CPU core

The contraction of the gradient discrepancy (001, Appendix A, Fig. 6) has its own
script, ``docs/results/diagnostics/contraction.py``.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from scipy.spatial.distance import pdist

from skal import ActiveLearner
from skal.callbacks import RoundRecorder
from skal.datasets import load_cifar10_test_jpeg, load_mnist
from skal.diagnostics import (
    acquire_batches,
    last_layer_gradient_embeddings,
    plot_acquisition_geometry,
    plot_class_balance,
    plot_confidence_histograms,
    plot_feature_embeddings,
    plot_per_class_accuracy,
    plot_score_histograms,
)
from skal.nets import MLPClassifier
from skal.strategies import (
    BADGE,
    Entropy,
    GradDiscrepancy,
    LPLgrad,
    RandomSampling,
    prepare_estimator,
)

BATCH_SIZES = (10, 20, 40)


def pixels(images):
    """uint8 N x 28 x 28 (x 1) images -> float32 rows in [0, 1]."""
    return (images.reshape(len(images), -1) / 255.0).astype(np.float32)


def to_gray_28(images):
    """RGB 32x32 uint8 images -> 28x28 grayscale (Pillow, bilinear)."""
    return np.stack(
        [
            np.asarray(
                Image.fromarray(im).convert("L").resize((28, 28), Image.BILINEAR)
            )
            for im in images
        ]
    )


# ------------------------------------------------------- 001, Figure 1
def geometry_strategies(seed):
    return {
        "grad": GradDiscrepancy(),
        "entropy": Entropy(),
        "BADGE": BADGE(random_state=seed),
        "random": RandomSampling(random_state=seed),
    }


def one_step(X, y, seed):
    """Initial set of 10, a net trained on it, and every strategy's batches."""
    rng = np.random.RandomState(seed)
    initial = rng.choice(len(X), 10, replace=False)
    pool = np.setdiff1d(np.arange(len(X)), initial)
    net = MLPClassifier(
        hidden_layer_sizes=(128,),
        max_epochs=50,
        classes=np.arange(10),
        random_state=seed,
    ).fit(X[initial], y[initial])
    batches = acquire_batches(
        geometry_strategies(seed), net, X[initial], y[initial], X[pool], BATCH_SIZES
    )
    return net, initial, pool, batches


def batch_spread(net, X_pool, y_pool, batches, rng):
    """Mean pairwise distance in each batch / that of random pool pairs, classes."""
    reference_rows = rng.choice(len(X_pool), 500, replace=False)
    reference = {
        "input": pdist(X_pool[reference_rows]).mean(),
        "gradient": pdist(
            last_layer_gradient_embeddings(net, X_pool[reference_rows])
        ).mean(),
    }
    rows = []
    for column, column_batches in batches.items():
        for name, batch in column_batches.items():
            gradient = last_layer_gradient_embeddings(net, X_pool[batch])
            rows.append(
                dict(
                    batch=column,
                    strategy=name,
                    input_spread=pdist(X_pool[batch]).mean() / reference["input"],
                    gradient_spread=pdist(gradient).mean() / reference["gradient"],
                    n_classes=len(np.unique(y_pool[batch])),
                )
            )
    return rows


def acquisition_geometry(X, y, out, n_seeds):
    net, initial, pool, batches = one_step(X, y, seed=0)
    fig = plot_acquisition_geometry(net, X[initial], X[pool], batches)
    fig.savefig(out / "geometry.png", dpi=110)
    rows = []
    for seed in range(n_seeds):
        if seed:
            net, initial, pool, batches = one_step(X, y, seed)
        rng = np.random.RandomState(seed)
        for row in batch_spread(net, X[pool], y[pool], batches, rng):
            rows.append(dict(seed=seed, **row))
    table = pd.DataFrame(rows)
    table.to_csv(out / "geometry_spread.csv", index=False)
    summary = table.groupby(["batch", "strategy"], sort=False)[
        ["input_spread", "gradient_spread", "n_classes"]
    ].agg(["mean", "std"])
    print(f"\nBatch spread over {n_seeds} seeds (1 = as spread as random pool pairs):")
    print(summary.round(2).to_string())


# ------------------------------------------------------- 001, Figure 2
def score_shift(mnist, cifar, out):
    X_train, y_train = pixels(mnist.X_train), mnist.y_train
    net = MLPClassifier(
        hidden_layer_sizes=(256,), max_epochs=15, batch_size=32, random_state=0
    ).fit(X_train, y_train)
    strategies = {
        "grad": GradDiscrepancy().fit(X_train, y_train, estimator=net),
        "entropy": Entropy().fit(X_train, y_train, estimator=net),
    }
    X_in = pixels(mnist.X_test)
    X_out = pixels(to_gray_28(np.concatenate([cifar.X_train, cifar.X_test])))
    print(f"\nMNIST-trained net: test accuracy {net.score(X_in, mnist.y_test):.3f}")
    fig = plot_score_histograms(
        strategies,
        {
            "MNIST test (in)": X_in,
            "CIFAR-10 as 28x28 gray (out)": X_out,
        },
        log=True,
    )
    fig.savefig(out / "score_shift.png", dpi=110)


# ------------------------------------------------------- 002, Figures 6-8
def lplgrad_run(mnist, out, n_rounds=8, batch_size=100, shown=(2, 4, 6, 8)):
    X, y = pixels(mnist.X_train), mnist.y_train
    X_test, y_test = pixels(mnist.X_test), mnist.y_test
    # The learner runs the rounds; the recorder keeps each round's model and picks.
    recorder = RoundRecorder(keep_estimators=True)
    strategy = LPLgrad()
    learner = ActiveLearner(
        # LPLgrad trains the net jointly with a loss-prediction module.
        prepare_estimator(
            # Plain cross-entropy, as in the paper (label smoothing, the
            # MLPClassifier default, caps the confidences near 0.9).
            MLPClassifier(
                hidden_layer_sizes=(256,),
                criterion__label_smoothing=0.0,
                random_state=0,
            ),
            strategy,
        ),
        strategy,
        batch_size=batch_size,
        n_rounds=n_rounds,
        classes=np.arange(10),
        callbacks=[recorder],
        random_state=0,
    ).fit(X, y, eval_set=(X_test, y_test))
    for round_, n_labeled, score in zip(
        learner.history_["round"],
        learner.history_["n_labeled"],
        learner.history_["eval_score"],
    ):
        print(f"round {round_}: {n_labeled} labeled, test accuracy {score:.3f}")
    records = learner.callbacks_[0].records_
    chosen = [r for r in records if r.round in shown]
    figures = {
        "tsne": plot_feature_embeddings(chosen, X, y, max_points=1500),
        "confidence": plot_confidence_histograms(chosen, X, log=True),
        "per_class_accuracy": plot_per_class_accuracy(records, X_test, y_test),
        "class_balance": plot_class_balance(records, y),
    }
    for name, fig in figures.items():
        fig.savefig(out / f"{name}.png", dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-home", default="/work/shared/data")
    parser.add_argument("--out", default="docs/results/diagnostics", type=Path)
    parser.add_argument("--seeds", type=int, default=10, help="geometry spread seeds")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)

    mnist = load_mnist(args.data_home, n_test=2000, random_state=0)
    start = time.perf_counter()
    geometry_rows = np.random.RandomState(0).choice(len(mnist.y_train), 3000, False)
    acquisition_geometry(
        pixels(mnist.X_train[geometry_rows]),
        mnist.y_train[geometry_rows],
        args.out,
        args.seeds,
    )
    print(f"[geometry: {time.perf_counter() - start:.0f} s]")

    start = time.perf_counter()
    cifar = load_cifar10_test_jpeg(args.data_home, source="npz")
    score_shift(mnist, cifar, args.out)
    print(f"[score shift: {time.perf_counter() - start:.0f} s]")

    start = time.perf_counter()
    lplgrad_run(mnist, args.out)
    print(f"[LPLgrad rounds and figures: {time.perf_counter() - start:.0f} s]")


if __name__ == "__main__":
    main()
