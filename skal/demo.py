"""``skal demo``: an active-learning comparison on scikit-learn's digits.

Runs every registered strategy with the papers' MLP (512-256) for a few seeds and
rounds, prints the mean test accuracy per round and strategy, and writes a
learning-curve plot. Sized to finish in a few minutes on two CPU cores.

Strategies defined with a training setup get it (``prepare_estimator``): the
MC-dropout strategies train the MLP with dropout 0.1, Learning Loss and LPLgrad
with a loss-prediction module; all others use the plain MLP.
"""

import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .experiments._runner import ParallelBackend, TaskFailure, run_cell
from .nets import MLPClassifier
from .strategies import available_strategies, get_strategy

# Smaller than the defaults so that the whole demo fits a few minutes on a laptop:
# NPC's randomized search over 1,000 candidate batches costs seconds per round.
DEMO_STRATEGY_PARAMS = {"npc": {"max_candidates": 100}, "qbc": {"n_members": 3}}


def load_demo_data(random_state=0):
    """Digits scaled to [0, 1], split 75/25 stratified: (X_train, y_train, X_test, y_test)."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        (X / 16.0).astype(np.float32),
        y,
        test_size=0.25,
        stratify=y,
        random_state=random_state,
    )
    return X_train, y_train, X_test, y_test


def accuracy_table(results):
    """Mean test accuracy (over seeds) per strategy (rows) and labeled-set size."""
    table = results.pivot_table(
        index="strategy", columns="n_labeled", values="accuracy", aggfunc="mean"
    )
    table["mean"] = table.mean(axis=1)
    return table.sort_values("mean", ascending=False)


def run_demo(
    *,
    strategies=None,
    n_seeds=3,
    n_rounds=8,
    batch_size=20,
    max_epochs=30,
    output_dir="skal-demo-output",
    n_jobs=2,
    print_fn=print,
):
    """Run the demo comparison and write its outputs.

    Parameters
    ----------
    strategies : list of str, default=None
        Registered strategy names; ``None`` means all of them.
    n_seeds : int, default=3
        Seeds 0..n_seeds-1; each seed shares its initial set across strategies.
    n_rounds : int, default=8
        Acquisition rounds after the initial set.
    batch_size : int, default=20
        Points per round (and initial set size).
    max_epochs : int, default=30
        Training epochs of the MLP each round.
    output_dir : str or Path, default="skal-demo-output"
        Where ``results.csv`` and ``learning_curves.png`` are written.
    n_jobs : int, default=2
        joblib worker processes over (strategy, seed) cells (one torch thread each).
    print_fn : callable, default=print
        Where the progress lines (one per finished cell) and the table are printed.

    Returns
    -------
    results : pandas.DataFrame
        The tidy results table.
    """
    from .experiments import plot_learning_curves

    strategies = [
        get_strategy(name, **DEMO_STRATEGY_PARAMS.get(name, {}))
        for name in (strategies or available_strategies())
    ]
    data = load_demo_data()
    estimator = MLPClassifier(max_epochs=max_epochs)
    start = time.perf_counter()
    results = _run_cells(
        estimator,
        strategies,
        list(range(n_seeds)),
        data,
        n_jobs=n_jobs,
        print_fn=print_fn,
        dataset="digits",
        model="MLP 512-256",
        batch_size=batch_size,
        n_rounds=n_rounds,
    )
    seconds = time.perf_counter() - start
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results.to_csv(output_dir / "results.csv", index=False)
    plot_path = output_dir / "learning_curves.png"
    plot_learning_curves(results, path=plot_path)

    with np.printoptions(precision=3):
        print_fn(
            f"Active learning on digits ({len(data[1])} pool, {len(data[3])} test), "
            f"MLP 512-256, {n_seeds} seeds, batch {batch_size}, {n_rounds} rounds"
        )
        print_fn("Mean test accuracy by number of labeled samples:")
        print_fn(accuracy_table(results).round(3).to_string())
        acquisition = results.groupby("strategy")["acquisition_seconds"].median()
        print_fn("Median acquisition seconds per round:")
        print_fn(acquisition.round(4).to_string())
    print_fn(f"Wrote {output_dir / 'results.csv'} and {plot_path} ({seconds:.0f} s).")
    return results


def _run_cells(estimator, strategies, seeds, data, *, n_jobs, print_fn, **kwargs):
    """Every (strategy, seed) cell, printing a line as each one finishes.

    The demo takes minutes: without these lines it would print nothing until the
    end.
    """
    cells = list(itertools.product(strategies, seeds))
    print_fn(
        f"Running {len(cells)} cells ({len(strategies)} strategies x {len(seeds)} "
        f"seeds) with {n_jobs} worker(s); a line per finished cell."
    )
    tasks = [
        ((i, strategy, seed), (estimator, strategy, seed, data), kwargs)
        for i, (strategy, seed) in enumerate(cells)
    ]
    start = time.perf_counter()
    done = {}
    with ParallelBackend(n_jobs=n_jobs) as backend:
        for (i, strategy, seed), rows in backend.imap_unordered(run_cell, tasks):
            name = getattr(strategy, "registered_name", type(strategy).__name__)
            if isinstance(rows, TaskFailure):
                raise RuntimeError(
                    f"The {name} cell (seed {seed}) failed: {rows.error}\n"
                    f"{rows.traceback}"
                )
            done[i] = rows
            elapsed = time.perf_counter() - start
            print_fn(
                f"[{len(done)}/{len(cells)}] {name}, seed {seed}: final accuracy "
                f"{rows['accuracy'].iloc[-1]:.3f} ({elapsed:.0f} s elapsed)"
            )
    return pd.concat([done[i] for i in sorted(done)], ignore_index=True)
