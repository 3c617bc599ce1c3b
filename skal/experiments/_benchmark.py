"""The benchmark of paper 001, section 4: resumable, parallel runs of every cell.

:func:`run_benchmark` runs every (dataset, model, strategy, seed) cell of a
comparison with the protocol of paper 001, section 4.3
(:class:`BenchmarkProtocol` holds its parameters):

- the training split of each dataset loses a fixed stratified validation split
  (never acquired), the rest is the pool (optionally a uniform subsample);
- a one-time learning-rate sweep per dataset and model picks the rate with the
  best validation accuracy (``_sweep.py``);
- strategies that cannot work with the model or data fail a tiny trial round and
  are skipped, with the reason in ``skipped.csv``;
- each cell is an :class:`skal.ActiveLearner` run with ``random_state=seed``: an
  initial random set of one batch (the same for every strategy of a seed, as is
  the round-0 model), then rounds of acquisition and retraining from scratch;
- with ``evaluate=("ssl",)`` / ``stopping=True`` each cell also records a
  semi-supervised score and where stopping criteria would have stopped
  (``_monitors.py``); with ``diagnostics=True`` a per-round table for the
  report's round figures, in a side file; the cell itself is unchanged;
- every finished cell is written at once to the results directory
  (``_results.py``), so an interrupted run loses no finished cell and a rerun
  computes only the missing ones;
- at the end :func:`write_report` (``_report.py``) aggregates them.
"""

import inspect
import time
import warnings
from dataclasses import fields, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.utils import Bunch, check_random_state
from tqdm.auto import tqdm

from .._validation import n_features_of_array
from ..learner import ActiveLearner
from ..strategies import get_strategy, prepare_estimator
from ._monitors import monitoring_callbacks
from ._protocol import BenchmarkProtocol
from ._report import write_report
from ._results import (
    CELLS,
    DIAGNOSTICS,
    cell_path,
    check_and_log_run,
    clear_results,
    diagnostics_path,
    load_results,
    record_learning_rates,
    record_skipped,
    write_csv,
)
from ._runner import ParallelBackend, TaskFailure, run_cell
from ._setup import IMAGE_DATASETS, _as_split_data, load_benchmark_data
from ._sweep import learning_rates, with_lr

__all__ = ["run_benchmark"]


# --------------------------------------------------------- tasks run on workers
def _strategy(name, params):
    """A registered strategy, with non-default parameters if any."""
    return get_strategy(name, **params) if params else name


def _cell_task(
    estimator, strategy, params, seed, data, dataset, model, learner_params, monitors
):
    """One benchmark cell (runs on a worker).

    ``learner_params``: the protocol's ``n_rounds``, ``batch_size``,
    ``warm_start`` and ``initial_strategy`` (:func:`learner_params`).
    ``monitors``: the protocol's ``evaluate``, ``ssl_every``, ``stopping`` and
    ``diagnostics`` (:func:`monitoring_callbacks`).

    Returns the cell's rows and its diagnostics table (None without
    ``diagnostics``).
    """
    classes = np.unique(data.y_pool)
    callbacks = monitoring_callbacks(
        **monitors,
        seed=seed,
        estimator=estimator,
        n_classes=len(classes),
        dataset=dataset,
        classes=classes,
    )
    rows, diagnostics = run_cell(
        estimator,
        _strategy(strategy, params),
        seed,
        (data.X_pool, data.y_pool, data.X_test, data.y_test),
        dataset=dataset,
        model=model,
        # A warm-started network needs every output from round 0 on. Only then:
        # classes changes the first rounds' networks, hence the cold protocol's cells.
        classes=classes if learner_params.get("warm_start") else None,
        callbacks=callbacks or None,
        return_diagnostics=True,
        **learner_params,
    )
    return rows.assign(strategy=strategy), diagnostics  # the registered name


def learner_params(protocol):
    """The :class:`skal.ActiveLearner` parameters a protocol sets for every cell."""
    return dict(
        n_rounds=protocol.n_rounds,
        batch_size=protocol.batch_size,
        warm_start=protocol.warm_start,
        initial_strategy=protocol.initial_strategy,
    )


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


# ---------------------------------------------------------------------- one run
class _Run:
    """State of one :func:`run_benchmark` call: protocol, data, files, failures."""

    def __init__(self, protocol, model, estimator, built, print_fn):
        self.protocol, self.model, self.estimator = protocol, model, estimator
        self.output_dir = Path(protocol.output_dir)
        # The built MLP sees images as rows of pixels; CNNs and given estimators
        # get the data as it is.
        self.flatten_images = built and protocol.model in (None, "mlp")
        self.print = print_fn
        self.failures = []
        self.data = {}

    def load(self, names, user_data):
        """Load (and split) the datasets; check the budget fits every pool."""
        p = self.protocol
        split = dict(
            validation_size=p.validation_size,
            pool_size=p.pool_size,
            random_state=p.data_seed,
        )
        for name in names:
            start = time.perf_counter()
            if user_data is not None:
                data = _as_split_data(user_data[name], **split)
            else:
                data = load_benchmark_data(
                    name,
                    data_home=p.data_home,
                    max_features=p.max_features,
                    flatten_images=self.flatten_images,
                    **split,
                )
            self._check_budget(name, data)
            self.data[name] = data
            self.print(
                f"  {name}: pool {len(data.y_pool)}, validation {len(data.y_val)}, "
                f"test {len(data.y_test)} rows, {n_features_of_array(data.X_pool)} features "
                f"(loaded in {time.perf_counter() - start:.0f} s)"
            )

    def _check_budget(self, name, data):
        budget, n_pool = self.protocol.budget, len(data.y_pool)
        if budget > n_pool:
            raise ValueError(
                f"{name}: the labeling budget batch_size * (n_rounds + 1) = {budget} "
                f"exceeds its pool of {n_pool} rows; reduce --rounds or --batch-size "
                f"(or raise --pool-size)."
            )

    def preflight(self, pending, rates, backend):
        """Drop the strategies that fail a tiny trial round; record why."""
        pairs = sorted({(name, strategy) for name, strategy, _ in pending})
        p = self.protocol
        tasks = [
            (
                (name, strategy),
                (
                    with_lr(self.estimator, rates[name][0]),
                    strategy,
                    p.strategy_params.get(strategy, {}),
                    backend.share(self.data[name]),
                    p.batch_size,
                ),
                {},
            )
            for name, strategy in pairs
        ]
        skipped = []
        bar = tqdm(total=len(tasks), desc="trial rounds", disable=not p.progress)
        for (name, strategy), outcome in backend.imap_unordered(_preflight_task, tasks):
            if isinstance(outcome, TaskFailure):
                skipped.append((name, self.model, strategy, _first_line(outcome)))
            bar.update()
        bar.close()
        for name, _, strategy, reason in sorted(skipped):
            self.print(f"  SKIPPED {strategy} on {name}: {reason}")
        record_skipped(self.output_dir, self.model, skipped, {n for n, _ in pairs})
        drop = {(name, strategy) for name, _, strategy, _ in skipped}
        return [cell for cell in pending if cell[:2] not in drop]

    def learning_rates(self, backend):
        return learning_rates(
            self.protocol,
            self.output_dir,
            self.estimator,
            self.model,
            self.data,
            backend,
        )

    def run_cells(self, pending, rates, backend):
        """Run the pending cells; write each one as soon as it is finished."""
        p = self.protocol
        shared = {name: backend.share(data) for name, data in self.data.items()}
        estimators = {
            name: with_lr(self.estimator, rates[name][0]) for name in self.data
        }
        monitors = dict(
            evaluate=p.evaluate,
            ssl_every=p.ssl_every,
            stopping=p.stopping,
            diagnostics=p.diagnostics,
        )
        tasks = [
            (
                (name, strategy, seed),
                (
                    estimators[name],
                    strategy,
                    p.strategy_params.get(strategy, {}),
                    seed,
                    shared[name],
                    name,
                    self.model,
                    learner_params(p),
                    monitors,
                ),
                {},
            )
            for name, strategy, seed in pending
        ]
        bar = tqdm(total=len(tasks), desc="cells", disable=not p.progress)
        for (name, strategy, seed), out in backend.imap_unordered(_cell_task, tasks):
            if isinstance(out, TaskFailure):
                self.failures.append((name, self.model, strategy, seed, out))
                bar.write(f"cell {name}/{strategy}/seed {seed} failed: {out.error}")
            else:
                self._write_cell((name, self.model, strategy, seed), *out)
            bar.update()
        bar.close()

    def _write_cell(self, cell, rows, diagnostics):
        """The diagnostics file first: a cell file marks a finished cell, so a
        run killed between the two writes recomputes the cell (and rewrites both)."""
        if diagnostics is not None:
            path = diagnostics_path(self.output_dir, *cell)
            write_csv(diagnostics, path, float_format="%.6g")  # counts as integers
        write_csv(rows, cell_path(self.output_dir, *cell))

    def warn_missing_diagnostics(self, finished):
        """Finished cells without their diagnostics file are not recomputed.

        The file can only be lost after the cell finished (both are written
        when it ends, the diagnostics first); recomputing would replace a
        finished cell, which resume never does. The report leaves such cells
        out of the round figures and lists them.
        """
        if not self.protocol.diagnostics:
            return
        missing = [
            cell_path(self.output_dir, name, self.model, strategy, seed).name
            for name, strategy, seed in finished
            if not diagnostics_path(
                self.output_dir, name, self.model, strategy, seed
            ).exists()
        ]
        if missing:
            message = (
                f"{len(missing)} finished cell(s) have no diagnostics file in "
                f"{self.output_dir / DIAGNOSTICS} (first: {missing[0]}); they are "
                f"not recomputed and the report's round figures leave them out. "
                f"To recompute them, delete their files in {self.output_dir / CELLS} "
                f"and rerun."
            )
            warnings.warn(message, UserWarning, stacklevel=3)
            self.print(f"  WARNING: {message}")


# ------------------------------------------------------------------ the function
def _show_protocol_keywords(func):
    """List the protocol's fields in ``func``'s signature (help, IDEs).

    ``func`` takes them as ``**params`` so that a new protocol field needs no
    change here; its signature shows them anyway, with their defaults.
    """
    signature = inspect.signature(func)
    shown = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    shown += [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
        for f in fields(BenchmarkProtocol)
        if f.name not in signature.parameters
    ]
    func.__signature__ = signature.replace(parameters=shown)
    return func


def _make_protocol(protocol, datasets, params):
    """The protocol of a call: ``protocol=`` or the keywords, and ``datasets``."""
    if protocol is not None and params:
        raise TypeError(
            f"run_benchmark got both protocol= and protocol parameters "
            f"{sorted(params)}; put them in the protocol "
            f"(dataclasses.replace(protocol, ...))."
        )
    if protocol is None:
        known = {f.name for f in fields(BenchmarkProtocol)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise TypeError(
                f"run_benchmark got unexpected keyword arguments {unknown}; "
                f"the protocol's parameters are {sorted(known)}."
            )
        protocol = BenchmarkProtocol(**params)
    if datasets is not None:
        protocol = replace(protocol, datasets=list(datasets))  # a dict: its names
    return protocol


def _check_images(protocol, user_data):
    key = protocol.model or "mlp"
    bad = [n for n in protocol.datasets if n not in IMAGE_DATASETS]
    if key != "mlp" and user_data is None and bad:
        raise ValueError(
            f"The {key} model needs images; {', '.join(bad)} are not image "
            f"datasets (images: {', '.join(IMAGE_DATASETS)})."
        )


@_show_protocol_keywords
def run_benchmark(
    datasets=None,
    *,
    protocol=None,
    estimator=None,
    report=True,
    print_fn=print,
    **params,
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
    datasets : sequence of str, or dict, default=None
        Names from :func:`available_datasets`, or ``{name: data}`` where ``data``
        is ``(X_train, y_train, X_test, y_test)``, a Bunch with those keys, or an
        already split Bunch (:func:`split_pool`). None: the protocol's datasets
        (default ``("digits",)``).
    protocol : BenchmarkProtocol, default=None
        All parameters at once; None builds it from ``**params``.
    estimator : classifier, default=None
        Trained from scratch each round; ``None`` means the protocol's ``model``
        (:func:`make_model` with ``max_epochs``, ``sgd_batch_size``,
        ``dropout``).
    report : bool, default=True
        Aggregate, plot and print the summary at the end (:func:`write_report`);
        ``False`` only writes ``results.csv``.
    print_fn : callable, default=print
        Where the summary is printed (``None`` for silence).
    **params
        The fields of :class:`BenchmarkProtocol`, with their defaults:
        ``strategies`` (None: every registered one), ``strategy_params``,
        ``seeds=3``, ``n_rounds=39``, ``batch_size=100``, ``max_epochs=30``,
        ``sgd_batch_size=8``, ``dropout=0.0``, ``model``, ``lr``, ``lr_grid``,
        ``sweep_sizes``, ``validation_size=0.1``, ``pool_size``,
        ``max_features``, ``data_home``, ``data_seed=0``, ``evaluate=()``,
        ``ssl_every=1``, ``stopping=False``, ``warm_start=False``,
        ``diagnostics=False``, ``output_dir="skal-bench"``, ``n_jobs=1``,
        ``dask``, ``torch_threads``,
        ``resume=True``, ``progress=True``; see its documentation.

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
    user_data = datasets if isinstance(datasets, dict) else None
    protocol = _make_protocol(protocol, datasets, params)
    built = estimator is None
    if built:
        estimator = protocol.make_estimator()
        _check_images(protocol, user_data)
    model = protocol.model_name(None if built else estimator)
    config = protocol.to_config(None if built else estimator)
    output_dir = Path(protocol.output_dir)
    if not protocol.resume:
        clear_results(output_dir)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    check_and_log_run(
        output_dir,
        config["protocol"],
        {"started": started, **config["run"]},
        protocol.resume,
        defaults=BenchmarkProtocol.recorded_defaults(),
    )

    names, strategies, seeds = protocol.datasets, protocol.strategies, protocol.seeds
    cells = [
        (name, strategy, seed)
        for name in names
        for strategy in strategies
        for seed in seeds
    ]
    is_finished = [
        cell_path(output_dir, name, model, strategy, seed).exists()
        for name, strategy, seed in cells
    ]
    pending = [c for c, done in zip(cells, is_finished) if not done]
    finished = [c for c, done in zip(cells, is_finished) if done]
    n_cells = len(cells)
    print_fn(
        f"skal bench: {n_cells} cells ({len(names)} datasets x {len(strategies)} "
        f"strategies x {len(seeds)} seeds), {n_cells - len(pending)} already "
        f"finished in {output_dir}."
    )
    run = _Run(protocol, model, estimator, built, print_fn)
    run.warn_missing_diagnostics(finished)
    run.load(sorted({c[0] for c in pending}, key=names.index), user_data)
    rates = {}
    try:
        with ParallelBackend(
            protocol.n_jobs, protocol.dask, protocol.torch_threads
        ) as backend:
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
    record_learning_rates(output_dir, model, rates)
    if report:
        report = write_report(output_dir, print_fn=print_fn)
    else:
        report = Bunch(results=load_results(output_dir))
        if len(report.results):
            write_csv(report.results, output_dir / "results.csv")
    report.failures = run.failures
    report.seconds = time.perf_counter() - start
    for name, model_, strategy, seed, failure in run.failures:
        print_fn(f"FAILED {name}/{model_}/{strategy}/seed {seed}: {failure.error}")
    if run.failures:
        print_fn(f"{len(run.failures)} cells failed; rerun to retry them.")
    print_fn(f"Wall time: {report.seconds:.0f} s.")
    return report
