"""The one-time learning-rate sweep of paper 001, section 4.3.

:func:`sweep_learning_rate` trains a model with every rate of a grid on random
labeled subsets of the pool and picks the rate with the best validation accuracy.
:func:`learning_rates` does it for the datasets of a benchmark run, once per
(dataset, model): the trials are kept in ``lr_sweep.csv`` and a resumed run
reads its rates there.
"""

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from ._results import read_sweeps, write_sweeps
from ._runner import ParallelBackend, TaskFailure

LR_GRID = (1e-4, 5e-4, 1e-3, 5e-3, 1e-2)


def has_lr(estimator):
    return "lr" in estimator.get_params(deep=False)


def with_lr(estimator, lr):
    """A clone of ``estimator`` with learning rate ``lr`` (if it has one)."""
    estimator = clone(estimator)
    if lr is not None and not np.isnan(lr) and has_lr(estimator):
        estimator.set_params(lr=float(lr))
    return estimator


def _sweep_subsets(n_pool, sizes, random_state):
    """Nested random subsets of the pool, one per size (same rows for every lr)."""
    order = check_random_state(random_state).permutation(n_pool)
    return {int(size): np.sort(order[: min(int(size), n_pool)]) for size in sizes}


def _sweep_trial(estimator, lr, data, rows, random_state):
    """Train with ``lr`` on pool ``rows``; return the validation accuracy."""
    model = with_lr(estimator, lr)
    if model.get_params(deep=False).get("random_state", 0) is None:
        model.set_params(random_state=random_state)
    params = model.get_params(deep=False)
    if "classes" in params and params["classes"] is None:
        model.set_params(classes=np.unique(data.y_pool))
    model.fit(data.X_pool[rows], data.y_pool[rows])
    return float(model.score(data.X_val, data.y_val))


def _sweep_tasks(estimator, data, lr_grid, sizes, random_state, key=()):
    subsets = _sweep_subsets(len(data.y_pool), sizes, random_state)
    for lr in lr_grid:
        for size, rows in subsets.items():
            yield (*key, float(lr), size), (estimator, lr, data, rows, random_state), {}


def _sweep_table(outcomes):
    """Sweep results as a table, with the selected learning rate marked."""
    rows = [
        {"lr": lr, "n_train": size, "val_accuracy": acc}
        for (lr, size), acc in outcomes.items()
    ]
    table = pd.DataFrame(rows).sort_values(["lr", "n_train"], ignore_index=True)
    mean = table.groupby("lr")["val_accuracy"].mean()
    # idxmax keeps the first maximum: ties go to the smaller (more stable) rate.
    table["selected"] = table["lr"] == mean.idxmax()
    return table


def sweep_learning_rate(
    estimator, data, *, lr_grid=LR_GRID, sizes=None, random_state=0, n_jobs=1
):
    """One-time learning-rate sweep on the validation split (paper 001, 4.3).

    For every rate, ``estimator`` is trained on a random labeled subset of the
    pool of each size in ``sizes`` (the same rows for every rate) and scored on
    the validation split. The selected rate has the best validation accuracy
    averaged over the sizes (ties go to the smaller rate).

    Parameters
    ----------
    estimator : classifier with an ``lr`` parameter
    data : Bunch
        From :func:`load_benchmark_data` or :func:`split_pool`.
    lr_grid : sequence of float, default=LR_GRID
        The paper's grid {1e-4, 5e-4, 1e-3, 5e-3, 1e-2}.
    sizes : sequence of int, default=None
        Labeled-set sizes trained on; ``None`` means 10% of the pool. The runner
        uses the initial set and the final budget: a rate must work at both ends
        of the learning curve (DESIGN.md warns that too high a rate makes small
        labeled sets collapse).
    random_state : int, default=0
        Seed of the subsets and of the models (where their own is None).
    n_jobs : int, default=1
        joblib workers.

    Returns
    -------
    sweep : DataFrame
        Columns ``lr, n_train, val_accuracy, selected`` (True on the rows of the
        selected rate).
    """
    if not has_lr(estimator):
        raise ValueError(f"{type(estimator).__name__} has no `lr` parameter to sweep.")
    if sizes is None:
        sizes = [max(1, len(data.y_pool) // 10)]
    tasks = _sweep_tasks(estimator, data, lr_grid, sizes, random_state)
    with ParallelBackend(n_jobs=n_jobs) as backend:
        outcomes = dict(backend.imap_unordered(_sweep_trial, tasks))
    failed = {k: v for k, v in outcomes.items() if isinstance(v, TaskFailure)}
    if failed:
        raise RuntimeError(f"Learning-rate trials failed: {failed}")
    return _sweep_table(outcomes)


# ------------------------------------------------------------- in a benchmark run
def learning_rates(protocol, output_dir, estimator, model, datasets, backend):
    """The learning rate of each dataset: given, swept before, or swept now.

    Parameters
    ----------
    protocol : BenchmarkProtocol
    output_dir : path-like
        The results directory (``lr_sweep.csv``).
    estimator : classifier
    model : str
        The model's name in the results.
    datasets : dict
        Split data by dataset name.
    backend : ParallelBackend

    Returns
    -------
    rates : dict
        ``{dataset: (lr, source)}``, source ``"given"``, ``"sweep"`` or ``"n/a
        (no lr parameter)"``.
    """
    if protocol.lr is not None or not has_lr(estimator):
        source = "given" if protocol.lr is not None else "n/a (no lr parameter)"
        return {name: (protocol.lr, source) for name in datasets}
    old = read_sweeps(output_dir)
    done = set() if old is None else set(old["dataset"][old["model"] == model])
    todo = {name: data for name, data in datasets.items() if name not in done}
    if todo:
        new = _run_sweeps(protocol, estimator, model, todo, backend)
        write_sweeps(
            output_dir,
            pd.concat([t for t in [old, *new] if t is not None], ignore_index=True),
        )
    sweeps = read_sweeps(output_dir)
    chosen = sweeps[sweeps["selected"] & (sweeps["model"] == model)]
    rates = chosen.groupby("dataset")["lr"].first()
    return {name: (float(rates[name]), "sweep") for name in datasets}


def _run_sweeps(protocol, estimator, model, datasets, backend):
    """Sweep every dataset at once (all trials in one parallel batch)."""
    sizes = protocol.sweep_sizes or (protocol.batch_size, protocol.budget)
    tasks = []
    for name, data in datasets.items():
        n_pool = len(data.y_pool)
        kept = sorted({min(int(s), n_pool) for s in sizes})
        tasks += _sweep_tasks(
            estimator,
            backend.share(data),
            protocol.lr_grid,
            kept,
            protocol.data_seed,
            key=(name,),
        )
    outcomes = {}
    bar = tqdm(
        total=len(tasks), desc="learning-rate sweep", disable=not protocol.progress
    )
    for (name, lr, size), acc in backend.imap_unordered(_sweep_trial, tasks):
        if isinstance(acc, TaskFailure):
            raise RuntimeError(
                f"The learning-rate trial {name} lr={lr} n={size} failed: "
                f"{acc.error}\n{acc.traceback}"
            )
        outcomes.setdefault(name, {})[(lr, size)] = acc
        bar.update()
    bar.close()
    return [
        _sweep_table(result).assign(dataset=name, model=model)
        for name, result in sorted(outcomes.items())
    ]
