"""The benchmark of paper 001, section 4: data, protocol, resumable runs, report.

:func:`run_benchmark` runs every (dataset, model, strategy, seed) cell of a
comparison with the protocol of paper 001, section 4.3:

- the training split of each dataset loses a fixed stratified validation split
  (never acquired), the rest is the pool (optionally a uniform subsample);
- a one-time learning-rate sweep per dataset and model picks the rate with the
  best validation accuracy (:func:`sweep_learning_rate`);
- each cell is an :class:`skal.ActiveLearner` run with ``random_state=seed``: an
  initial random set of one batch (the same for every strategy of a seed, as is
  the round-0 model), then rounds of acquisition and retraining from scratch;
- every finished cell is written at once to ``cells/<dataset>__<model>__<strategy>
  __<seed>.csv`` (temp file + ``os.replace``), so an interrupted run loses no
  finished cell and a rerun computes only the missing ones.

:func:`write_report` (``skal report``) aggregates the cells as in section 4.5
(penalty matrices, loss scores, AULC), plots learning curves and heatmaps, and
writes the acquisition-time table.
"""

import json
import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timezone
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import clone
from sklearn.utils import Bunch, check_random_state
from tqdm.auto import tqdm

from .._validation import n_features_of_array
from ..learner import ActiveLearner
from ..strategies import available_strategies, get_strategy, prepare_estimator
from ._aggregate import area_under_learning_curve, loss_scores, penalty_matrix
from ._plots import (
    plot_aulc_ranking,
    plot_learning_curves,
    plot_penalty_matrix,
    timing_table,
)
from ._runner import RESULT_COLUMNS, ParallelBackend, TaskFailure, run_cell
from ._setup import (
    IMAGE_DATASETS,
    MODELS,
    _as_split_data,
    load_benchmark_data,
    make_model,
)

__all__ = [
    "LR_GRID",
    "find_collapses",
    "load_results",
    "run_benchmark",
    "sweep_learning_rate",
    "write_report",
]

LR_GRID = (1e-4, 5e-4, 1e-3, 5e-3, 1e-2)
VIEWS = ("all", "early", "late")
CELLS = "cells"


def _has_lr(estimator):
    return "lr" in estimator.get_params(deep=False)


def _with_lr(estimator, lr):
    estimator = clone(estimator)
    if lr is not None and not np.isnan(lr) and _has_lr(estimator):
        estimator.set_params(lr=float(lr))
    return estimator


# ---------------------------------------------------------- learning-rate sweep
def _sweep_subsets(n_pool, sizes, random_state):
    """Nested random subsets of the pool, one per size (same rows for every lr)."""
    order = check_random_state(random_state).permutation(n_pool)
    return {int(size): np.sort(order[: min(int(size), n_pool)]) for size in sizes}


def _sweep_trial(estimator, lr, data, rows, random_state):
    """Train with ``lr`` on pool ``rows``; return the validation accuracy."""
    model = _with_lr(estimator, lr)
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
    if not _has_lr(estimator):
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


# ------------------------------------------------------------------ file layout
def _safe(name):
    """A name usable in a file name (cells are keyed by it)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(name))


def _cell_path(output_dir, dataset, model, strategy, seed):
    name = "__".join(_safe(p) for p in (dataset, model, strategy, seed))
    return Path(output_dir) / CELLS / f"{name}.csv"


def _write_atomic(path, write):
    """Write through a temp file in the same folder, then ``os.replace``.

    A reader (or a resumed run) sees either no file or a complete one, even if
    the process is killed while writing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_csv(frame, path, **kwargs):
    _write_atomic(path, lambda f: frame.to_csv(f, index=False, **kwargs))


def load_results(output_dir):
    """The tidy results of every finished cell of a results directory.

    Parameters
    ----------
    output_dir : str or path-like
        A directory written by :func:`run_benchmark`.

    Returns
    -------
    results : DataFrame
        Columns ``dataset, model, strategy, seed, round, n_labeled, accuracy,
        acquisition_seconds, training_seconds``, sorted; empty if no cell is
        finished.
    """
    files = sorted((Path(output_dir) / CELLS).glob("*.csv"))
    frames = [
        pd.read_csv(f, dtype={"dataset": str, "model": str, "strategy": str})
        for f in files
    ]
    if not frames:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    results = pd.concat(frames, ignore_index=True)[RESULT_COLUMNS]
    keys = ["dataset", "model", "strategy", "seed", "round"]
    return results.sort_values(keys, ignore_index=True)


# ------------------------------------------------------------------- run config
class _Config:
    """``config.json``: the protocol of a results directory and its run log.

    Cells computed under another protocol must not be mixed, so a resumed run
    refuses a different protocol; adding datasets, strategies or seeds is fine.
    """

    def __init__(self, output_dir):
        self.path = Path(output_dir) / "config.json"

    def read(self):
        if not self.path.exists():
            return None
        return json.loads(self.path.read_text())

    def check_and_log(self, protocol, run, resume):
        old = self.read()
        if resume and old is not None and old["protocol"] != protocol:
            changed = sorted(
                k
                for k in set(protocol) | set(old["protocol"])
                if protocol.get(k) != old["protocol"].get(k)
            )
            diff = ", ".join(
                f"{k}: {old['protocol'].get(k)!r} -> {protocol.get(k)!r}"
                for k in changed
            )
            raise ValueError(
                f"{self.path.parent} holds results of another protocol ({diff}). "
                f"Use another --output-dir, or --no-resume to start over there."
            )
        runs = (old or {}).get("runs", []) if resume else []
        from .._version import __version__

        config = {
            "skal_version": __version__,
            "protocol": protocol,
            "runs": [*runs, run],
        }
        _write_atomic(self.path, lambda f: json.dump(config, f, indent=2))


def _clear_results(output_dir):
    """Delete the cells and sweeps of a previous run (``resume=False``)."""
    shutil.rmtree(Path(output_dir) / CELLS, ignore_errors=True)
    Path(output_dir, "lr_sweep.csv").unlink(missing_ok=True)


# -------------------------------------------------------------------- the runner
def _seed_list(seeds):
    if isinstance(seeds, Integral):
        return list(range(int(seeds)))
    return [int(s) for s in seeds]


def _budget(n_rounds, batch_size):
    return batch_size + n_rounds * batch_size  # initial set = one batch


def _check_budget(name, data, n_rounds, batch_size):
    budget, n_pool = _budget(n_rounds, batch_size), len(data.y_pool)
    if budget > n_pool:
        raise ValueError(
            f"{name}: the labeling budget batch_size * (n_rounds + 1) = {budget} "
            f"exceeds its pool of {n_pool} rows; reduce --rounds or --batch-size "
            f"(or raise --pool-size)."
        )


def _strategy(name, params):
    """A registered strategy, with non-default parameters if any."""
    return get_strategy(name, **params) if params else name


def _cell_task(
    estimator, strategy, params, seed, data, dataset, model, n_rounds, batch_size
):
    """One benchmark cell (runs on a worker)."""
    rows = run_cell(
        estimator,
        _strategy(strategy, params),
        seed,
        (data.X_pool, data.y_pool, data.X_test, data.y_test),
        dataset=dataset,
        model=model,
        batch_size=batch_size,
        n_rounds=n_rounds,
    )
    return rows.assign(strategy=strategy)  # the registered name, params or not


def _preflight_task(estimator, strategy, params, data, batch_size):
    """Run one tiny round of ``strategy`` on a pool subset; raise if it cannot.

    Catches strategies that cannot work with this model or data (e.g. BALD
    without dropout, a strategy without sparse support) before any real cell
    spends time on them: the same code path as a cell, 1 epoch, 3 batches.
    """
    model = clone(prepare_estimator(estimator, _strategy(strategy, params)))
    if "max_epochs" in model.get_params(deep=False):
        model.set_params(max_epochs=1)
    rows = check_random_state(0).permutation(len(data.y_pool))[: 3 * batch_size]
    rows = np.sort(rows)
    ActiveLearner(
        model,
        _strategy(strategy, params),
        batch_size=batch_size,
        n_rounds=1 if len(rows) >= 2 * batch_size else 0,
        classes=np.unique(data.y_pool),
        random_state=0,
    ).fit(data.X_pool[rows], data.y_pool[rows])


def _first_line(failure):
    return failure.error.splitlines()[0][:300]


class _Run:
    """State of one :func:`run_benchmark` call: plan, data, rates, files."""

    def __init__(self, output_dir, model, estimator, protocol, progress, print_fn):
        self.output_dir = Path(output_dir)
        self.model, self.estimator = model, estimator
        self.protocol, self.progress, self.print = protocol, progress, print_fn
        self.failures = []
        self.data = {}
        self.flatten_images = False

    def load(self, names, user_data, data_home, split):
        """Load (and split) the datasets; check the budget fits every pool."""
        p = self.protocol
        for name in names:
            start = time.perf_counter()
            if user_data is not None:
                data = _as_split_data(user_data[name], **split)
            else:
                data = load_benchmark_data(
                    name,
                    data_home=data_home,
                    max_features=p["max_features"],
                    flatten_images=self.flatten_images,
                    **split,
                )
            _check_budget(name, data, p["n_rounds"], p["batch_size"])
            self.data[name] = data
            self.print(
                f"  {name}: pool {len(data.y_pool)}, validation {len(data.y_val)}, "
                f"test {len(data.y_test)} rows, {n_features_of_array(data.X_pool)} features "
                f"(loaded in {time.perf_counter() - start:.0f} s)"
            )

    # --- strategies that cannot run -----------------------------------------------
    def preflight(self, pending, rates, backend):
        """Drop the strategies that fail a tiny trial round; record why."""
        pairs = sorted({(name, strategy) for name, strategy, _ in pending})
        tasks = [
            (
                (name, strategy),
                (
                    _with_lr(self.estimator, rates[name][0]),
                    strategy,
                    self.protocol["strategy_params"].get(strategy, {}),
                    backend.share(self.data[name]),
                    self.protocol["batch_size"],
                ),
                {},
            )
            for name, strategy in pairs
        ]
        skipped = []
        bar = tqdm(total=len(tasks), desc="trial rounds", disable=not self.progress)
        for (name, strategy), outcome in backend.imap_unordered(_preflight_task, tasks):
            if isinstance(outcome, TaskFailure):
                skipped.append((name, self.model, strategy, _first_line(outcome)))
            bar.update()
        bar.close()
        for name, _, strategy, reason in sorted(skipped):
            self.print(f"  SKIPPED {strategy} on {name}: {reason}")
        self._record_skipped(skipped, {name for name, _ in pairs})
        drop = {(name, strategy) for name, _, strategy, _ in skipped}
        return [cell for cell in pending if cell[:2] not in drop]

    def _record_skipped(self, skipped, checked):
        """``skipped.csv``: (dataset, model, strategy, reason) of the latest check."""
        path = self.output_dir / "skipped.csv"
        columns = ["dataset", "model", "strategy", "reason"]
        table = pd.DataFrame(skipped, columns=columns)
        if path.exists():
            old = pd.read_csv(path, dtype=str)
            rechecked = old["dataset"].isin(checked) & (old["model"] == self.model)
            table = pd.concat([old[~rechecked], table], ignore_index=True)
        _write_csv(table.sort_values(columns[:3]), path)

    # --- learning rates ---------------------------------------------------------
    def _read_sweeps(self):
        path = self.output_dir / "lr_sweep.csv"
        return (
            pd.read_csv(path, dtype={"dataset": str, "model": str})
            if path.exists()
            else None
        )

    def learning_rates(self, backend):
        """The learning rate of each dataset: given, swept before, or swept now."""
        datasets = self.data
        p = self.protocol
        if p["lr"] is not None or not _has_lr(self.estimator):
            source = "given" if p["lr"] is not None else "n/a (no lr parameter)"
            return {name: (p["lr"], source) for name in datasets}
        old = self._read_sweeps()
        done = set() if old is None else set(old["dataset"][old["model"] == self.model])
        todo = {name: data for name, data in datasets.items() if name not in done}
        if todo:
            self._sweep(todo, old, backend)
        sweeps = self._read_sweeps()
        chosen = sweeps[sweeps["selected"] & (sweeps["model"] == self.model)]
        rates = chosen.groupby("dataset")["lr"].first()
        return {name: (float(rates[name]), "sweep") for name in datasets}

    def _sweep(self, todo, old, backend):
        p = self.protocol
        sizes = p["sweep_sizes"] or [
            p["batch_size"],
            _budget(p["n_rounds"], p["batch_size"]),
        ]
        tasks = []
        for name, data in todo.items():
            n_pool = len(data.y_pool)
            kept = sorted({min(int(s), n_pool) for s in sizes})
            tasks += _sweep_tasks(
                self.estimator,
                backend.share(data),
                p["lr_grid"],
                kept,
                p["data_seed"],
                key=(name,),
            )
        outcomes = {}
        bar = tqdm(
            total=len(tasks), desc="learning-rate sweep", disable=not self.progress
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
        tables = [
            _sweep_table(result).assign(dataset=name, model=self.model)
            for name, result in sorted(outcomes.items())
        ]
        table = pd.concat(
            [t for t in [old, *tables] if t is not None], ignore_index=True
        )
        cols = ["dataset", "model", "lr", "n_train", "val_accuracy", "selected"]
        _write_csv(table[cols], self.output_dir / "lr_sweep.csv")

    # --- cells -------------------------------------------------------------------
    def run_cells(self, pending, rates, backend):
        """Run the pending cells; write each one as soon as it is finished."""
        p, datasets = self.protocol, self.data
        shared = {name: backend.share(data) for name, data in datasets.items()}
        estimators = {
            name: _with_lr(self.estimator, rates[name][0]) for name in datasets
        }
        tasks = [
            (
                (name, strategy, seed),
                (
                    estimators[name],
                    strategy,
                    p["strategy_params"].get(strategy, {}),
                    seed,
                    shared[name],
                    name,
                    self.model,
                    p["n_rounds"],
                    p["batch_size"],
                ),
                {},
            )
            for name, strategy, seed in pending
        ]
        bar = tqdm(total=len(tasks), desc="cells", disable=not self.progress)
        for (name, strategy, seed), rows in backend.imap_unordered(_cell_task, tasks):
            if isinstance(rows, TaskFailure):
                self.failures.append((name, self.model, strategy, seed, rows))
                bar.write(f"cell {name}/{strategy}/seed {seed} failed: {rows.error}")
            else:
                path = _cell_path(self.output_dir, name, self.model, strategy, seed)
                _write_csv(rows, path)
            bar.update()
        bar.close()


def _describe(estimator):
    """Class and parameters of an estimator (skorch's repr omits the parameters)."""
    params = estimator.get_params(deep=False)
    text = ", ".join(
        f"{k}={v!r}" for k, v in sorted(params.items()) if not k.startswith("_")
    )
    text = f"{type(estimator).__name__}({text})"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)  # addresses change every run


def _protocol(
    *,
    strategy_params,
    model,
    estimator,
    n_rounds,
    batch_size,
    lr,
    lr_grid,
    sweep_sizes,
    validation_size,
    pool_size,
    max_features,
    data_seed,
):
    """What decides the numbers in a cell (besides dataset, strategy and seed)."""
    return {
        "model": model,
        "estimator": _describe(estimator),
        "n_rounds": int(n_rounds),
        "batch_size": int(batch_size),
        "initial_set": "one batch, uniform at random",
        "lr": None if lr is None else float(lr),
        "lr_grid": [float(x) for x in lr_grid],
        "sweep_sizes": None if sweep_sizes is None else [int(s) for s in sweep_sizes],
        "validation_size": validation_size,
        "pool_size": None if pool_size is None else int(pool_size),
        "max_features": None if max_features is None else int(max_features),
        "data_seed": int(data_seed),
        "strategy_params": {k: dict(v) for k, v in sorted(strategy_params.items())},
    }


def run_benchmark(
    datasets=("digits",),
    *,
    strategies=None,
    strategy_params=None,
    seeds=3,
    n_rounds=39,
    batch_size=100,
    max_epochs=30,
    sgd_batch_size=8,
    dropout=0.0,
    estimator=None,
    model=None,
    lr=None,
    lr_grid=LR_GRID,
    sweep_sizes=None,
    validation_size=0.1,
    pool_size=None,
    max_features=None,
    data_home=None,
    data_seed=0,
    output_dir="skal-bench",
    n_jobs=1,
    dask=None,
    torch_threads=None,
    resume=True,
    report=True,
    progress=True,
    print_fn=print,
):
    """Run the active-learning benchmark of paper 001 (section 4), resumably.

    Every (dataset, strategy, seed) cell is an :class:`skal.ActiveLearner` run
    (see the module docstring for the protocol). Finished cells are written to
    ``output_dir/cells/`` as they end; with ``resume=True`` (the default) cells
    already there are not recomputed. At the end :func:`write_report` writes
    ``results.csv``, the summaries and the plots, and prints the summary.

    The defaults are the paper's text/tabular scale (batch 100, 39 rounds, 30
    epochs, SGD batch 8); scale them down for a laptop, e.g. ``n_rounds=5,
    batch_size=20, max_epochs=10, sgd_batch_size=32, pool_size=2000``.

    Parameters
    ----------
    datasets : sequence of str, or dict, default=("digits",)
        Names from :func:`available_datasets`, or ``{name: data}`` where ``data``
        is ``(X_train, y_train, X_test, y_test)``, a Bunch with those keys, or an
        already split Bunch (:func:`split_pool`).
    strategies : sequence of str, default=None
        Registered strategy names; ``None`` means every one that exists
        (:func:`skal.strategies.available_strategies`).
    strategy_params : dict, default=None
        Non-default parameters per strategy name, e.g. ``{"npc":
        {"max_candidates": 100}}`` to make a costly strategy affordable. They
        are part of the protocol recorded in ``config.json``.
    seeds : int or sequence of int, default=3
        An int ``n`` means seeds ``0 .. n-1``.
    n_rounds : int, default=39
        Acquisition rounds after the initial set.
    batch_size : int, default=100
        Points acquired per round; the initial set has the same size.
    max_epochs, sgd_batch_size : int, default=30, 8
        Epochs and SGD mini-batch size of the built model (ignored when an
        ``estimator`` is given).
    dropout : float, default=0.0
        Dropout of the default MLP, for every strategy. The paper's MLP has
        none; the Monte-Carlo dropout strategies need it and are skipped without.
    estimator : classifier, default=None
        Trained from scratch each round; ``None`` means :func:`make_model`
        (``model``).
    model : str, default=None
        Without ``estimator``: the model to build (:func:`make_model`: ``'mlp'``,
        the default, or the CNNs ``'lenet'``, ``'vgg16'``, ``'resnet18'``, which
        need image datasets); the MLP sees images as rows of pixels in [0, 1].
        With ``estimator``: its name in the results (default: its class name).
    lr : float, default=None
        Learning rate for every dataset; skips the sweep.
    lr_grid : sequence of float, default=LR_GRID
        Rates of the sweep (used when ``lr`` is None and the estimator has an
        ``lr`` parameter).
    sweep_sizes : sequence of int, default=None
        Labeled-set sizes of the sweep; ``None`` means the initial set and the
        final budget (see :func:`sweep_learning_rate`).
    validation_size : float or int, default=0.1
        Stratified validation split of the training data, excluded from the pool.
    pool_size : int, default=None
        Subsample the pool uniformly to this many rows (fixed per dataset).
    max_features : int, default=None
        TF-IDF vocabulary size for 20 Newsgroups.
    data_home : str or path-like, default=None
        Where the dataset files are (see :func:`skal.datasets.get_data_home`).
    data_seed : int, default=0
        Seed of the validation split, the pool subsample and the sweep subsets.
    output_dir : str or path-like, default="skal-bench"
        Results directory.
    n_jobs : int, default=1
        joblib worker processes over cells (``-1``: all cores); with
        ``dask='local'``, the number of local Dask workers.
    dask : str or distributed.Client, default=None
        Run the cells on a Dask cluster: a scheduler address, ``'local'`` for a
        LocalCluster, or a Client (see :class:`ParallelBackend`).
    torch_threads : int, default=None
        Torch threads per cell (see :class:`ParallelBackend`); ``1`` is best on
        a machine shared with other jobs.
    resume : bool, default=True
        Keep finished cells and the recorded sweep; ``False`` deletes them and
        starts over.
    report : bool, default=True
        Aggregate, plot and print the summary at the end (:func:`write_report`);
        ``False`` only writes ``results.csv``.
    progress : bool, default=True
        Show tqdm progress bars.
    print_fn : callable, default=print
        Where the summary is printed (``None`` for silence).

    Returns
    -------
    report : Bunch
        ``results`` (the tidy table of every finished cell in ``output_dir``),
        ``failures`` (list of ``(dataset, model, strategy, seed, TaskFailure)``)
        and ``seconds`` (wall time of this call), plus, with ``report=True``,
        the summaries and ``files`` of :func:`write_report`.
    """
    start = time.perf_counter()
    print_fn = print_fn or (lambda *a, **k: None)
    strategies = list(available_strategies() if strategies is None else strategies)
    unknown = [s for s in strategies if s not in available_strategies()]
    if unknown:
        raise ValueError(
            f"Unknown strategies {unknown}; available: {available_strategies()}."
        )
    for name, params in (strategy_params or {}).items():
        get_strategy(name, **params)  # unknown names or parameters fail here
    seeds = _seed_list(seeds)
    user_data = datasets if isinstance(datasets, dict) else None
    names = list(user_data or datasets)
    flatten_images = False
    if estimator is None:
        key = model or "mlp"
        estimator = make_model(
            key, max_epochs=max_epochs, sgd_batch_size=sgd_batch_size, dropout=dropout
        )
        model, flatten_images = MODELS[key], key == "mlp"
        if key != "mlp":
            bad = [n for n in names if user_data is None and n not in IMAGE_DATASETS]
            if bad:
                raise ValueError(
                    f"The {key} model needs images; {', '.join(bad)} are not image "
                    f"datasets (images: {', '.join(IMAGE_DATASETS)})."
                )
    model = model or type(estimator).__name__
    protocol = _protocol(
        strategy_params=strategy_params or {},
        model=model,
        estimator=estimator,
        n_rounds=n_rounds,
        batch_size=batch_size,
        lr=lr,
        lr_grid=lr_grid,
        sweep_sizes=sweep_sizes,
        validation_size=validation_size,
        pool_size=pool_size,
        max_features=max_features,
        data_seed=data_seed,
    )
    output_dir = Path(output_dir)
    if not resume:
        _clear_results(output_dir)
    run_log = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "datasets": names,
        "strategies": strategies,
        "seeds": seeds,
        "n_jobs": n_jobs,
        "dask": dask if isinstance(dask, str) or dask is None else "client",
    }
    _Config(output_dir).check_and_log(protocol, run_log, resume)

    pending = [
        (name, strategy, seed)
        for name in names
        for strategy in strategies
        for seed in seeds
        if not _cell_path(output_dir, name, model, strategy, seed).exists()
    ]
    n_cells = len(names) * len(strategies) * len(seeds)
    print_fn(
        f"skal bench: {n_cells} cells ({len(names)} datasets x {len(strategies)} "
        f"strategies x {len(seeds)} seeds), {n_cells - len(pending)} already "
        f"finished in {output_dir}."
    )
    run = _Run(output_dir, model, estimator, protocol, progress, print_fn)
    split = dict(
        validation_size=validation_size, pool_size=pool_size, random_state=data_seed
    )
    run.flatten_images = flatten_images
    run.load(
        sorted({c[0] for c in pending}, key=names.index), user_data, data_home, split
    )
    rates = {}
    try:
        with ParallelBackend(n_jobs, dask, torch_threads) as backend:
            if pending:
                print_fn(f"  running on {backend.description}")
                rates = run.learning_rates(backend)
                for name, (rate, source) in rates.items():
                    print_fn(f"  {name}: learning rate {rate} ({source})")
                pending = run.preflight(pending, rates, backend)
            run.run_cells(pending, rates, backend)
    except KeyboardInterrupt:
        print_fn(
            f"\nInterrupted. Finished cells are in {output_dir / CELLS}; rerun the "
            f"same command to resume."
        )
        raise
    _record_learning_rates(output_dir, model, rates)
    if report:
        report = write_report(output_dir, print_fn=print_fn)
    else:
        report = Bunch(results=load_results(output_dir))
        if len(report.results):
            _write_csv(report.results, output_dir / "results.csv")
    report.failures = run.failures
    report.seconds = time.perf_counter() - start
    for name, model_, strategy, seed, failure in run.failures:
        print_fn(f"FAILED {name}/{model_}/{strategy}/seed {seed}: {failure.error}")
    if run.failures:
        print_fn(f"{len(run.failures)} cells failed; rerun to retry them.")
    print_fn(f"Wall time: {report.seconds:.0f} s.")
    return report


def _record_learning_rates(output_dir, model, rates):
    """Keep ``learning_rates.csv`` (dataset, model, lr, source) up to date."""
    path = Path(output_dir) / "learning_rates.csv"
    new = pd.DataFrame(
        [(name, model, rate, source) for name, (rate, source) in rates.items()],
        columns=["dataset", "model", "lr", "source"],
    )
    if path.exists():
        old = pd.read_csv(path, dtype={"dataset": str, "model": str})
        keep = ~old.set_index(["dataset", "model"]).index.isin(
            new.set_index(["dataset", "model"]).index
        )
        new = pd.concat([old[keep], new], ignore_index=True)
    if len(new):
        _write_csv(new.sort_values(["dataset", "model"]), path)


# ---------------------------------------------------------------------- report
def find_collapses(results, *, drop=0.1):
    """Rounds whose accuracy fell by more than ``drop`` from the previous round.

    With SGD momentum, too high a learning rate can make a round's model
    collapse; such a drop looks like an acquisition failure of whatever strategy
    ran (DESIGN.md). Check this before reading a comparison.

    Parameters
    ----------
    results : DataFrame
        Tidy results.
    drop : float, default=0.1
        Absolute accuracy drop that counts as a collapse.

    Returns
    -------
    collapses : DataFrame
        One row per collapse: ``dataset, model, strategy, seed, round,
        n_labeled, accuracy, previous_accuracy, drop``.
    """
    keys = ["dataset", "model", "strategy", "seed"]
    ordered = results.sort_values([*keys, "round"])
    previous = ordered.groupby(keys)["accuracy"].shift()
    out = ordered.assign(
        previous_accuracy=previous, drop=previous - ordered["accuracy"]
    )
    out = out[out["drop"] > drop]
    cols = [*keys, "round", "n_labeled", "accuracy", "previous_accuracy", "drop"]
    return out[cols].reset_index(drop=True)


def _rounds_view(view):
    """Acquisition rounds (round 0 excluded) of a penalty-matrix view.

    Round 0 is the same model for every strategy of a seed, so it can never
    separate two strategies; counting it would only dilute the 1/n_rounds wins.
    The early and late views are the first and second halves, as in
    :func:`skal.experiments.penalty_matrix`.
    """

    def select(rounds):
        acquired = rounds[rounds > 0] if (rounds > 0).any() else rounds
        n = len(acquired)
        return {
            "all": acquired,
            "early": acquired[: (n + 1) // 2],
            "late": acquired[n // 2 :],
        }[view]

    return select


def _aulc_table(results):
    """Mean and std over seeds of the normalized AULC, strategies x datasets."""
    aulc = area_under_learning_curve(results)
    stats = aulc.groupby(["dataset", "model", "strategy"])["aulc"].agg(["mean", "std"])
    return aulc, stats.reset_index()


def _format_aulc(stats):
    text = stats.assign(
        value=[
            f"{m:.3f} ± {0 if np.isnan(s) else s:.3f}"
            for m, s in zip(stats["mean"], stats["std"])
        ],
        experiment=stats["dataset"] + " (" + stats["model"] + ")",
    )
    table = text.pivot(index="strategy", columns="experiment", values="value")
    order = stats.groupby("strategy")["mean"].mean().sort_values(ascending=False)
    return table.loc[order.index]


def _plot_curves(results, stem):
    """Learning curves, one wide panel per experiment; PNG and PDF."""
    n = results.groupby(["dataset", "model"]).ngroups
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(7.5 * ncols, 5.5 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for extra in axes[n:]:
        extra.set_visible(False)
    # plot_learning_curves gives each strategy its own color and line style and
    # draws one legend outside the panels.
    plot_learning_curves(results, ax=axes[:n])
    # Every strategy ranked by AULC (the curves highlight only the best few).
    ranking = plot_aulc_ranking(results)
    return _save_both(fig, stem) + _save_both(
        ranking, Path(stem).with_name("aulc_ranking")
    )


def _save_both(fig, stem):
    paths = [Path(f"{stem}.png"), Path(f"{stem}.pdf")]
    for path in paths:
        fig.savefig(path, bbox_inches="tight", dpi=130)
    return paths


def write_report(
    output_dir, *, sources=None, strategies=None, drop=0.1, print_fn=print
):
    """Aggregate, plot and summarize a results directory (``skal report``).

    Reads every finished cell (of ``output_dir``, or of several ``sources``) and
    writes, in ``output_dir``:

    - ``results.csv``: the tidy table of all cells;
    - ``aulc.csv`` (per seed) and ``aulc_summary.csv`` (mean, std over seeds);
    - ``penalty_matrix_{all,early,late}.csv`` and ``loss_scores.csv``: paper 001,
      section 4.5, over the acquisition rounds (round 0 is the same for every
      strategy), summed over experiments; early/late are the two halves;
    - ``timing_acquisition.csv`` (median seconds per acquisition round) and
      ``timing_training.csv`` (median seconds per training);
    - ``collapses.csv``: rounds whose accuracy fell by more than ``drop``;
    - ``learning_curves.{png,pdf}`` (mean and +-1 std over seeds) and
      ``penalty_matrix_{all,early,late}.{png,pdf}`` (heatmap and loss scores);
    - ``summary.txt``: the printed summary.

    Parameters
    ----------
    output_dir : str or path-like
        A directory written by :func:`run_benchmark`, or where to write the
        combined report of ``sources``.
    sources : sequence of str or path-like, default=None
        Results directories to combine (None: ``output_dir`` itself). Runs whose
        protocols differ (e.g. text and tabular data) are combined this way: each
        (dataset, model) is its own experiment of the penalty matrix, whose
        matrices are summed over experiments. A (dataset, model) found in two
        sources is refused.
    strategies : sequence of str, default=None
        Report only these strategies (None: all). The penalty matrix depends on
        which strategies are compared (its multiple-testing correction runs over
        their pairs).
    drop : float, default=0.1
        Threshold of :func:`find_collapses`.
    print_fn : callable, default=print
        Where the summary is printed (``None`` for silence).

    Returns
    -------
    report : Bunch
        ``results``, ``aulc``, ``aulc_summary``, ``penalty_matrices`` (dict by
        view), ``loss_scores`` (DataFrame, one column per view), ``timing``,
        ``collapses``, ``files`` (list of written paths) and ``summary`` (str).
    """
    print_fn = print_fn or (lambda *a, **k: None)
    out = Path(output_dir)
    sources = [out] if sources is None else [Path(s) for s in sources]
    results = _combined_results(sources)
    if strategies is not None:
        results = results[results["strategy"].isin(list(strategies))]
    if results.empty:
        where = ", ".join(str(s / CELLS) for s in sources)
        raise FileNotFoundError(f"No finished cells in {where}.")
    out.mkdir(parents=True, exist_ok=True)
    files = []

    def save(frame, name, index=False):
        _write_atomic(out / name, lambda f: frame.to_csv(f, index=index))
        files.append(out / name)

    save(results, "results.csv")
    aulc, aulc_stats = _aulc_table(results)
    save(aulc, "aulc.csv")
    save(aulc_stats, "aulc_summary.csv")
    matrices = {v: penalty_matrix(results, rounds=_rounds_view(v)) for v in VIEWS}
    scores = pd.DataFrame({v: loss_scores(P) for v, P in matrices.items()})
    scores.index.name = "strategy"
    for view, P in matrices.items():
        save(P, f"penalty_matrix_{view}.csv", index=True)
    save(scores, "loss_scores.csv", index=True)
    acquired = results[results["round"] > 0]  # round 0 has no acquisition step
    timing = timing_table(acquired) if len(acquired) else pd.DataFrame()
    save(timing, "timing_acquisition.csv", index=True)
    save(
        timing_table(results, column="training_seconds"),
        "timing_training.csv",
        index=True,
    )
    collapses = find_collapses(results, drop=drop)
    save(collapses, "collapses.csv")

    files += _plot_curves(results, out / "learning_curves")
    n_experiments = results.groupby(["dataset", "model"]).ngroups
    for view, P in matrices.items():
        title = (
            f"Penalty matrix, {view} acquisition rounds ({n_experiments} experiments)"
        )
        fig = plot_penalty_matrix(P, title=title)
        files += _save_both(fig, out / f"penalty_matrix_{view}")

    skipped = [
        pd.read_csv(source / "skipped.csv", dtype=str)
        for source in sources
        if (source / "skipped.csv").exists()
    ]
    skipped = pd.concat(skipped, ignore_index=True) if skipped else None
    summary = _summary_text(
        out, results, aulc_stats, scores, timing, collapses, drop, skipped
    )
    if sources != [out]:
        summary = f"Combined from: {', '.join(map(str, sources))}\n{summary}"
    _write_atomic(out / "summary.txt", lambda f: f.write(summary + "\n"))
    files.append(out / "summary.txt")
    print_fn(summary)
    return Bunch(
        results=results,
        aulc=aulc,
        aulc_summary=aulc_stats,
        penalty_matrices=matrices,
        loss_scores=scores,
        timing=timing,
        collapses=collapses,
        files=files,
        summary=summary,
    )


def _combined_results(sources):
    """The cells of several results directories; an experiment must not repeat."""
    tables = [load_results(source) for source in sources]
    owner = {}
    for source, table in zip(sources, tables):
        for experiment in table.groupby(["dataset", "model"]).groups:
            if experiment in owner:
                raise ValueError(
                    f"Experiment {experiment} is in both {owner[experiment]} and "
                    f"{source}: combine runs of different experiments only."
                )
            owner[experiment] = source
    tables = [t for t in tables if len(t)]
    if not tables:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return pd.concat(tables, ignore_index=True)


def _summary_text(out, results, aulc_stats, scores, timing, collapses, drop, skipped):
    n_cells = results.groupby(["dataset", "model", "strategy", "seed"]).ngroups
    n_seeds = results.groupby(["dataset", "model", "strategy"])["seed"].nunique()
    lines = [
        f"Results in {out}: {n_cells} finished cells, "
        f"{results['strategy'].nunique()} strategies, {n_seeds.min()}-"
        f"{n_seeds.max()} seeds per strategy.",
        "",
    ]
    if (out / "learning_rates.csv").exists():
        rates = pd.read_csv(out / "learning_rates.csv", dtype=str)
        lines += [
            "Learning rates: "
            + ", ".join(f"{r.dataset} {r.lr} ({r.source})" for r in rates.itertuples()),
            "",
        ]
    lines += [
        "Area under the learning curve (mean test accuracy over the labeling "
        "budget), mean ± std over seeds:",
        _format_aulc(aulc_stats).to_string(),
        "",
        "Loss scores (column means of the penalty matrix over the acquisition "
        "rounds; lower is better):",
        scores.sort_values("all").round(3).to_string(),
        "",
        "Median acquisition seconds per round:",
        timing.round(4).to_string() if len(timing) else "(no acquisition rounds)",
        "",
    ]
    if len(collapses):
        lines += [
            f"WARNING: {len(collapses)} round-to-round accuracy drops > {drop} "
            "(possible training collapses; see collapses.csv):",
            collapses.round(3).head(20).to_string(index=False),
        ]
    else:
        lines.append(f"No round-to-round accuracy drop > {drop} (no collapses).")
    if skipped is not None and len(skipped):
        lines += ["", "Skipped (failed a trial round with this model and data):"]
        lines += [
            f"  {r.strategy} on {r.dataset} ({r.model}): {r.reason}"
            for r in skipped.itertuples()
        ]
    run_files = ""
    if (out / CELLS).is_dir():  # a run's own directory, not a combined report
        run_files = (
            "cells/, lr_sweep.csv, learning_rates.csv, skipped.csv, config.json, "
        )
    lines += [
        "",
        f"Files: {out / 'results.csv'}, aulc*.csv, penalty_matrix_*.csv/png/pdf, "
        "loss_scores.csv, timing_*.csv, collapses.csv, learning_curves.png/pdf, "
        f"{run_files}summary.txt.",
    ]
    return "\n".join(lines)
