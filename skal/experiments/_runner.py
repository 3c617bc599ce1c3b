"""Run active-learning comparisons: one learner per (strategy, seed) cell.

Within a seed every strategy starts from the same initial labeled set and sees the
same pool, because :class:`skal.ActiveLearner` draws the initial set first from its
``random_state``.

:class:`ParallelBackend` runs independent tasks (cells, learning-rate trials) on
joblib worker processes or on a Dask cluster and hands back each result as soon as
it is finished, so that callers can write it to disk right away.
"""

import contextlib
import itertools
import os
import traceback

import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone

from ..learner import ActiveLearner
from ..strategies import prepare_estimator
from ._monitors import monitor_columns, monitor_diagnostics

RESULT_COLUMNS = [
    "dataset",
    "model",
    "strategy",
    "seed",
    "round",
    "n_labeled",
    "accuracy",
    "acquisition_seconds",
    "training_seconds",
]


def run_cell(
    estimator,
    strategy,
    seed,
    data,
    *,
    dataset="data",
    model=None,
    return_diagnostics=False,
    **learner_params,
):
    """One active-learning run; returns its rows of the tidy results table.

    Parameters
    ----------
    estimator : classifier
        Cloned and trained from scratch every round.
    strategy : str or QueryStrategy
    seed : int
        ``random_state`` of the learner (initial set, candidate draws, model seeds).
    data : tuple (X_train, y_train, X_test, y_test)
    dataset, model : str
        Labels for the table.
    return_diagnostics : bool, default=False
        Also return the table of the
        :class:`~skal.experiments._monitors.RoundDiagnostics` among the
        ``callbacks`` (None without one).
    **learner_params
        Other :class:`skal.ActiveLearner` parameters (``batch_size``, ``n_rounds``,
        ``callbacks``...).

    Returns
    -------
    rows : pandas.DataFrame
        Columns ``RESULT_COLUMNS``, then, for the monitoring ``callbacks``
        (:func:`skal.experiments._monitors.monitoring_callbacks`),
        ``ssl_accuracy`` and one ``stop_<criterion>`` per stopping criterion.
    diagnostics : DataFrame or None
        Only with ``return_diagnostics=True``: columns ``round, quantity, key,
        value``.
    """
    X_train, y_train, X_test, y_test = data
    learner = ActiveLearner(
        clone(prepare_estimator(estimator, strategy)),
        strategy,
        random_state=seed,
        **learner_params,
    ).fit(X_train, y_train, eval_set=(X_test, y_test))
    history = learner.history_
    name = (
        strategy
        if isinstance(strategy, str)
        else getattr(strategy, "registered_name", type(strategy).__name__)
    )
    rows = pd.DataFrame(
        {
            "dataset": dataset,
            "model": model or type(estimator).__name__,
            "strategy": name,
            "seed": seed,
            "round": history["round"],
            "n_labeled": history["n_labeled"],
            "accuracy": history["eval_score"],
            "acquisition_seconds": history["acquisition_seconds"],
            "training_seconds": history["training_seconds"],
        },
        columns=RESULT_COLUMNS,
    )
    for column, values in monitor_columns(learner.callbacks_).items():
        rows[column] = values
    if return_diagnostics:
        return rows, monitor_diagnostics(learner.callbacks_)
    return rows


def run_comparison(
    estimator, strategies, seeds, data, *, n_jobs=1, verbose=0, **kwargs
):
    """Every (strategy, seed) cell of a comparison, in parallel with joblib.

    Parameters
    ----------
    estimator : classifier
    strategies : list of str or QueryStrategy
    seeds : list of int
    data : tuple (X_train, y_train, X_test, y_test)
    n_jobs : int, default=1
        joblib workers (processes); ``-1`` for all cores.
    verbose : int, default=0
        joblib verbosity.
    **kwargs
        Passed to :func:`run_cell`.

    Returns
    -------
    results : pandas.DataFrame
        The tidy results table, one row per (strategy, seed, round).
    """
    # Worker processes share the cores: one thread each avoids oversubscription.
    threads = None if n_jobs == 1 else max(1, (os.cpu_count() or 1) // abs(n_jobs))
    calls = Parallel(n_jobs=n_jobs, verbose=verbose)(
        delayed(_call)(
            (strategy, seed),
            run_cell,
            (estimator, strategy, seed, data),
            kwargs,
            threads,
        )
        for strategy, seed in itertools.product(strategies, seeds)
    )
    failures = [(key, out) for key, out in calls if isinstance(out, TaskFailure)]
    if failures:
        (strategy, seed), failure = failures[0]
        raise RuntimeError(
            f"{len(failures)} cell(s) failed; first: strategy {strategy!r}, seed {seed}: "
            f"{failure.error}\n{failure.traceback}"
        )
    return pd.concat([out for _, out in calls], ignore_index=True)


# --------------------------------------------------------------- parallel backends
class TaskFailure:
    """The error of a task that raised: the run goes on and reports it at the end.

    Parameters
    ----------
    error : str
        ``repr`` of the exception.
    traceback : str
        The formatted traceback (from the worker).
    """

    def __init__(self, error, traceback):
        self.error = error
        self.traceback = traceback

    def __repr__(self):
        return f"TaskFailure({self.error})"


def _call(key, func, args, kwargs, n_threads):
    """Run one task on a worker; an exception becomes a :class:`TaskFailure`.

    Only ``Exception`` is caught: a KeyboardInterrupt still stops the run.
    """
    limits = contextlib.nullcontext()
    if n_threads is not None:
        import torch
        from threadpoolctl import threadpool_limits

        # Worker processes share the cores: without this each one would start a
        # thread per core and they would oversubscribe the machine. BLAS too:
        # OpenBLAS threads on busy cores slowed NumPy-heavy strategies 5-8x.
        torch.set_num_threads(n_threads)
        limits = threadpool_limits(limits=n_threads)
    try:
        with limits:
            return key, func(*args, **kwargs)
    except Exception as exc:
        return key, TaskFailure(repr(exc), traceback.format_exc())


class ParallelBackend:
    """Run independent tasks with joblib or on a Dask cluster, yielding as they end.

    Use as a context manager; it connects to (or starts) the Dask cluster on entry
    and closes what it started on exit.

    Parameters
    ----------
    n_jobs : int, default=1
        joblib worker processes (``-1``: one per core). With ``dask='local'``, the
        number of workers of the local cluster.
    dask : str, distributed.Client or None, default=None
        ``None`` uses joblib. ``'local'`` starts a ``distributed.LocalCluster``
        (one single-threaded worker process per job); any other string is the
        address of a running scheduler (e.g. ``'tcp://10.0.0.1:8786'``); a
        ``Client`` is used as is (and left open).
    torch_threads : int, default=None
        Torch threads per task. ``None``: cores // workers for local worker
        processes, unchanged in-process and on remote clusters. On a machine
        shared with other jobs, ``1`` avoids oversubscription, which can slow
        small networks down by an order of magnitude. The setting of the calling
        process is restored on exit.

    Attributes
    ----------
    description : str
        Human-readable backend, for logs.
    """

    def __init__(self, n_jobs=1, dask=None, torch_threads=None):
        self.n_jobs = n_jobs
        self.dask = dask
        self.torch_threads = torch_threads
        self._client = self._cluster = None
        self._shared = {}

    def __enter__(self):
        import torch

        self._caller_threads = torch.get_num_threads()  # tasks may run in-process
        if self.dask is None:
            return self
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ImportError(
                "The Dask backend needs dask.distributed: pip install "
                "'dask[distributed]' (or pip install 'skal[dask]')."
            ) from exc
        if isinstance(self.dask, str) and self.dask == "local":
            self._cluster = LocalCluster(
                n_workers=self._n_workers(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            self._client = Client(self._cluster)
        elif isinstance(self.dask, str):
            self._client = Client(self.dask)
        else:
            self._client = self.dask  # a Client made by the caller: theirs to close
        return self

    def __exit__(self, *exc_info):
        import torch

        torch.set_num_threads(self._caller_threads)
        if self.dask is not None and not isinstance(self.dask, str):
            return
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None
        self._shared = {}

    @property
    def description(self):
        if self.dask is None:
            return f"joblib, n_jobs={self.n_jobs}"
        if self._cluster is not None:
            return f"Dask LocalCluster ({self._n_workers()} worker processes)"
        address = getattr(getattr(self._client, "scheduler", None), "address", None)
        return f"Dask scheduler {address or self.dask}"

    def _n_workers(self):
        return os.cpu_count() if self.n_jobs in (None, -1) else max(1, self.n_jobs)

    def _threads_per_task(self):
        """Torch threads per worker process, or None to leave the default."""
        if self.torch_threads is not None:
            return int(self.torch_threads)
        if self.dask is None:
            if self._n_workers() == 1:
                return None  # in-process: leave the caller's setting alone
            return max(1, (os.cpu_count() or 1) // self._n_workers())
        if self._cluster is not None:
            return max(1, (os.cpu_count() or 1) // self._n_workers())
        return None  # a remote cluster: its workers know their machines

    def share(self, obj):
        """Make ``obj`` available to every task once (Dask: scatter to workers).

        Parameters
        ----------
        obj : object
            Typically a dataset shared by many tasks.

        Returns
        -------
        handle : object
            Pass it as a task argument in place of ``obj``.
        """
        if self._client is None:
            return obj
        if id(obj) not in self._shared:  # scatter each object once
            handle = self._client.scatter([obj], broadcast=True)[0]
            self._shared[id(obj)] = (obj, handle)  # obj kept alive: id stays unique
        return self._shared[id(obj)][1]

    def imap_unordered(self, func, tasks):
        """Run ``func(*args, **kwargs)`` for every task; yield results as they end.

        Parameters
        ----------
        func : callable
            Must be importable by the workers (a module-level function).
        tasks : iterable of (key, args, kwargs)

        Yields
        ------
        key, result : object, object
            ``result`` is ``func``'s return value or a :class:`TaskFailure`.
        """
        tasks = list(tasks)
        if not tasks:
            return
        n_threads = self._threads_per_task()
        if self._client is None:
            yield from Parallel(n_jobs=self.n_jobs, return_as="generator_unordered")(
                delayed(_call)(key, func, args, kwargs, n_threads)
                for key, args, kwargs in tasks
            )
            return
        yield from self._dask_imap(func, tasks, n_threads)

    def _dask_imap(self, func, tasks, n_threads):
        from distributed import as_completed

        futures = {
            self._client.submit(
                _call, key, func, args, kwargs, n_threads, pure=False
            ): key
            for key, args, kwargs in tasks
        }
        try:
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # e.g. a worker died: report, go on
                    yield (
                        futures[future],
                        TaskFailure(repr(exc), traceback.format_exc()),
                    )
        finally:
            self._client.cancel(list(futures))
