"""Shared pieces of the loaders: data home, error messages, splits, docstrings."""

import os
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.datasets import fetch_openml
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Bunch, check_random_state

_NG_URL = "http://qwone.com/~jason/20Newsgroups/20news-bydate.tar.gz"
_ISOLET_URL = "https://archive.ics.uci.edu/dataset/54/isolet"
_POKER_URL = "https://archive.ics.uci.edu/dataset/158/poker+hand"
_SPLITS = ("train", "test")


def get_data_home(data_home=None):
    """Return the folder where skal looks for (and downloads) datasets.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Explicit folder. If None, the ``SKAL_DATA`` environment variable is used,
        else ``~/skal_data``. The folder is not created.

    Returns
    -------
    data_home : pathlib.Path
        The folder, with ``~`` expanded.
    """
    if data_home is None:
        data_home = os.environ.get("SKAL_DATA") or "~/skal_data"
    return Path(data_home).expanduser()


# ------------------------------------------------------- shared docstring entries
# Parameter entries that many loaders document word for word; a docstring line
# holding only ``{name}`` becomes the entry (see `shared_docs`).
_DOC_ENTRIES = {
    "data_home": """data_home : str or path-like, default=None
    See :func:`get_data_home`.""",
    "n_train_n_test": """n_train, n_test : int, default=None
    Keep a uniform random subsample of this many training / test images.""",
    "n_train": """n_train : int, default=None
    Keep a uniform random subsample of this many training images.""",
    "test_size": """test_size : float or int, default=0.2
    Test fraction (or count) of the stratified split.""",
    "random_state_subsampling": """random_state : int, RandomState instance or None, default=0
    Seed of the subsampling.""",
    "random_state_split": """random_state : int, RandomState instance or None, default=0
    Seed of the split.""",
    "random_state_split_subsampling": """random_state : int, RandomState instance or None, default=0
    Seed of the split and of the subsampling.""",
}


def shared_docs(func):
    """Decorator: replace each docstring line ``{name}`` by the entry ``name``.

    The entry is indented like the line it replaces; an unknown name raises
    ``KeyError`` at import, so a typo cannot reach the documentation.
    """
    if func.__doc__ is None:  # python -OO
        return func
    lines = []
    for line in func.__doc__.splitlines():
        key = line.strip()
        if key.startswith("{") and key.endswith("}"):
            indent = line[: len(line) - len(line.lstrip())]
            entry = _DOC_ENTRIES[key[1:-1]]
            lines += [indent + part for part in entry.splitlines()]
        else:
            lines.append(line)
    func.__doc__ = "\n".join(lines)
    return func


# ----------------------------------------------------------------- shared helpers
def _missing(what, paths, how, why=""):
    looked = "\n".join(f"  - {p}" for p in paths)
    msg = f"{what} not found{why}. Looked for:\n{looked}\nTo obtain it: {how}"
    return FileNotFoundError(msg)


def _download(fetch, allowed, what, paths, how):
    """Call ``fetch()`` if allowed; a refusal or network failure -> _missing."""
    if not allowed:
        raise _missing(what, paths, how, " and download_if_missing=False")
    try:
        return fetch()
    except OSError as exc:  # URLError, HTTPError, timeouts: no network
        raise _missing(what, paths, how, " and the download failed") from exc


def _openml_cached(home, data_id):
    """Where fetch_openml caches the description of ``data_id`` under home."""
    return home / "openml" / "openml.org" / f"api/v1/json/data/{data_id}.gz"


def _fetch_openml(data_id, home, allowed, what, paths, how):
    """fetch_openml -> (float32 X, raw target, feature names); cache needs no net."""
    allowed = allowed or _openml_cached(home, data_id).exists()
    kw = dict(data_id=data_id, data_home=str(home), as_frame=False, parser="auto")
    bunch = _download(lambda: fetch_openml(**kw), allowed, what, paths, how)
    return _numeric(bunch.data), bunch.target, list(bunch.feature_names)


def _numeric(X):
    """Float32 features; non-numeric columns are ordinal-coded (NaN kept)."""
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float32)
    X = np.asarray(X)
    if X.dtype != object:
        return X.astype(np.float32)
    cols = []
    for col in X.T:
        try:
            cols.append(col.astype(np.float64))
        except (TypeError, ValueError):
            codes = pd.factorize(col, sort=True)[0].astype(np.float64)
            cols.append(np.where(codes < 0, np.nan, codes))
    return np.column_stack(cols).astype(np.float32)


def _encode_labels(y):
    """Integer codes 0..C-1; numeric-looking labels keep their numeric order."""
    y = np.asarray(y)
    try:
        classes, codes = np.unique(y.astype(np.float64), return_inverse=True)
        names = [format(c, "g") for c in classes]
    except (TypeError, ValueError):
        classes, codes = np.unique(y.astype(str), return_inverse=True)
        names = list(classes)
    return codes.astype(np.int64), np.asarray(names)


def _check_n(n, name):
    if n is not None and (isinstance(n, bool) or not isinstance(n, Integral) or n < 1):
        raise ValueError(f"{name} must be a positive int or None, got {n!r}.")


def _split(X, y, test_size, random_state, scale, n_train=None, n_test=None):
    """Stratified split, optional uniform subsampling, StandardScaler fitted on
    the kept training rows only; returns the result Bunch."""
    _check_n(n_train, "n_train")
    _check_n(n_test, "n_test")
    rng = check_random_state(random_state)
    parts = train_test_split(X, y, test_size=test_size, random_state=rng, stratify=y)
    for i, n in enumerate((n_train, n_test)):
        if n is not None and n < parts[2 + i].shape[0]:
            keep = np.sort(rng.choice(parts[2 + i].shape[0], n, replace=False))
            parts[i], parts[2 + i] = parts[i][keep], parts[2 + i][keep]
    X_tr, X_te, y_tr, y_te = parts
    if scale:
        scaler = StandardScaler(with_mean=not sp.issparse(X_tr)).fit(X_tr)
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    return Bunch(X_train=X_tr, X_test=X_te, y_train=y_tr, y_test=y_te)


def _read_csv(path):
    return pd.read_csv(path, header=None, dtype=np.float64).to_numpy()


def _first(paths):
    return next((p for p in paths if p.exists()), None)
