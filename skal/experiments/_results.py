"""The results directory of :func:`run_benchmark`: its files and how they are written.

::

    OUT/config.json          the protocol (checked on resume) and a log of every run
    OUT/cells/<dataset>__<model>__<strategy>__<seed>.csv   one per finished cell
    OUT/diagnostics/<the cell's file name>   with --diagnostics: the cell's round
                             diagnostics (round, quantity, key, value)
    OUT/lr_sweep.csv         every trial of the learning-rate sweeps
    OUT/learning_rates.csv   the rate each (dataset, model) ran with, and its source
    OUT/skipped.csv          strategies that failed their trial round, and why

Every file is written through a temp file and ``os.replace``: a reader, or a
resumed run, sees either no file or a complete one, even if the process is killed
while writing. A cell file exists only once the cell has finished, so a rerun
computes exactly the cells whose files are missing (a cell's diagnostics file
is written just before its cell file).
"""

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.utils import Bunch

from ._monitors import DIAGNOSTIC_COLUMNS, is_monitor_column, monitor_column_order
from ._runner import RESULT_COLUMNS

CELLS = "cells"
DIAGNOSTICS = "diagnostics"
CELL_KEYS = ["dataset", "model", "strategy", "seed"]
LR_SWEEP = "lr_sweep.csv"
LEARNING_RATES = "learning_rates.csv"
SKIPPED = "skipped.csv"
CONFIG = "config.json"


def _safe(name):
    """A name usable in a file name (cells are keyed by it)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(name))


def cell_path(output_dir, dataset, model, strategy, seed):
    """Where the cell (dataset, model, strategy, seed) is written."""
    name = "__".join(_safe(p) for p in (dataset, model, strategy, seed))
    return Path(output_dir) / CELLS / f"{name}.csv"


def diagnostics_path(output_dir, dataset, model, strategy, seed):
    """Where the round diagnostics of a cell are written (``--diagnostics``)."""
    cell = cell_path(output_dir, dataset, model, strategy, seed)
    return Path(output_dir) / DIAGNOSTICS / cell.name


def write_atomic(path, write):
    """Call ``write(file)`` on a temp file in the same folder, then ``os.replace``."""
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


def write_csv(frame, path, **kwargs):
    """``frame.to_csv(path)``, atomically."""
    write_atomic(path, lambda f: frame.to_csv(f, index=False, **kwargs))


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
        acquisition_seconds, training_seconds``, then the columns of
        ``--evaluate``/``--stopping`` if any cell has them (``ssl_accuracy``,
        ``stop_<criterion>``; missing, i.e. NaN, in cells without them), sorted;
        empty if no cell is finished.
    """
    files = sorted((Path(output_dir) / CELLS).glob("*.csv"))
    frames = [
        pd.read_csv(f, dtype={"dataset": str, "model": str, "strategy": str})
        for f in files
    ]
    if not frames:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    monitored = {c for frame in frames for c in frame.columns if is_monitor_column(c)}
    # ssl_accuracy first, then the stop_* and the stat_* columns by name.
    extra = sorted(monitored, key=monitor_column_order)
    results = pd.concat(frames, ignore_index=True)[RESULT_COLUMNS + extra]
    keys = ["dataset", "model", "strategy", "seed", "round"]
    return results.sort_values(keys, ignore_index=True)


def load_diagnostics(output_dir):
    """The round diagnostics of the finished cells of a results directory.

    Parameters
    ----------
    output_dir : str or path-like
        A directory written by :func:`run_benchmark`.

    Returns
    -------
    diagnostics : Bunch
        ``table``: DataFrame with columns ``dataset, model, strategy, seed,
        round, quantity, key, value`` (keys as strings) of every finished cell
        with a diagnostics file (a file without its cell file is left out: its
        cell did not finish); ``missing``: the file names of the finished cells
        that have none although the directory's protocol recorded
        ``diagnostics`` (lost files; cells of a run without ``--diagnostics``
        are not missing).
    """
    output_dir = Path(output_dir)
    config = read_config(output_dir)
    recorded = bool(config and config["protocol"].get("diagnostics", False))
    frames, missing = [], []
    for cell in sorted((output_dir / CELLS).glob("*.csv")):
        path = output_dir / DIAGNOSTICS / cell.name
        if not path.exists():
            if recorded:
                missing.append(cell.name)
            continue
        keys = pd.read_csv(cell, nrows=1, usecols=CELL_KEYS, dtype=str)
        table = pd.read_csv(path, dtype={"quantity": str, "key": str})
        for column in CELL_KEYS:
            table[column] = keys[column].iloc[0]
        frames.append(table)
    columns = CELL_KEYS + DIAGNOSTIC_COLUMNS
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    table = table.reindex(columns=columns)
    if len(table):
        table["seed"] = table["seed"].astype(int)
    return Bunch(table=table, missing=missing)


def clear_results(output_dir):
    """Delete the cells and sweeps of a previous run (``resume=False``)."""
    shutil.rmtree(Path(output_dir) / CELLS, ignore_errors=True)
    shutil.rmtree(Path(output_dir) / DIAGNOSTICS, ignore_errors=True)
    Path(output_dir, LR_SWEEP).unlink(missing_ok=True)


# ------------------------------------------------------------------- config.json
def read_config(output_dir):
    """The parsed ``config.json`` of a results directory, or None."""
    path = Path(output_dir) / CONFIG
    return json.loads(path.read_text()) if path.exists() else None


def _protocol_difference(old, new):
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)


def check_and_log_run(output_dir, protocol, run, resume, defaults=None):
    """Refuse another protocol on resume; append ``run`` to the run log.

    Cells computed under another protocol must not be mixed, so a resumed run
    refuses a ``protocol`` dict different from the recorded one; adding datasets,
    strategies or seeds is fine (those are in the run log, not the protocol).

    Parameters
    ----------
    output_dir : path-like
    protocol : dict
        ``config.json``'s ``"protocol"`` (JSON types: compared as read back).
    run : dict
        This run's log entry.
    resume : bool
        False starts the log over (the results were cleared).
    defaults : dict, default=None
        Values of protocol keys that an older ``config.json`` lacks (a
        parameter added since it was written).
    """
    old = read_config(output_dir)
    recorded = {**(defaults or {}), **old["protocol"]} if old is not None else None
    if resume and old is not None and recorded != protocol:
        raise ValueError(
            f"{output_dir} holds results of another protocol "
            f"({_protocol_difference(recorded, protocol)}). "
            f"Use another --output-dir, or --no-resume to start over there."
        )
    runs = (old or {}).get("runs", []) if resume else []
    from .._version import __version__

    config = {"skal_version": __version__, "protocol": protocol, "runs": [*runs, run]}
    write_atomic(Path(output_dir) / CONFIG, lambda f: json.dump(config, f, indent=2))


# --------------------------------------------------------------- the other tables
def read_sweeps(output_dir):
    """``lr_sweep.csv`` (every sweep trial so far), or None."""
    path = Path(output_dir) / LR_SWEEP
    if not path.exists():
        return None
    return pd.read_csv(path, dtype={"dataset": str, "model": str})


def write_sweeps(output_dir, table):
    cols = ["dataset", "model", "lr", "n_train", "val_accuracy", "selected"]
    write_csv(table[cols], Path(output_dir) / LR_SWEEP)


def record_skipped(output_dir, model, skipped, checked):
    """``skipped.csv``: (dataset, model, strategy, reason) of the latest check.

    The rows of the ``checked`` datasets (with this ``model``) are replaced by
    ``skipped``; the other rows are kept.
    """
    path = Path(output_dir) / SKIPPED
    columns = ["dataset", "model", "strategy", "reason"]
    table = pd.DataFrame(skipped, columns=columns)
    if path.exists():
        old = pd.read_csv(path, dtype=str)
        rechecked = old["dataset"].isin(checked) & (old["model"] == model)
        table = pd.concat([old[~rechecked], table], ignore_index=True)
    write_csv(table.sort_values(columns[:3]), path)


def record_learning_rates(output_dir, model, rates):
    """Keep ``learning_rates.csv`` (dataset, model, lr, source) up to date."""
    path = Path(output_dir) / LEARNING_RATES
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
        write_csv(new.sort_values(["dataset", "model"]), path)
