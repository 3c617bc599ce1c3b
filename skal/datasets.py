"""Dataset loaders for the skal benchmarks (paper 001, section 4.3), offline-capable.

Every loader first reads local files under :func:`get_data_home` (the argument,
else the ``SKAL_DATA`` environment variable, else ``~/skal_data``), then falls back
to the scikit-learn fetcher or OpenML when ``download_if_missing=True``. If neither
works, a :class:`FileNotFoundError` names every path that was looked for and how
to obtain the data; a network error is chained as its ``__cause__``.

Each loader returns a :class:`sklearn.utils.Bunch` with ``X_train, y_train,
X_test, y_test`` (float32 arrays, or CSR for 20 Newsgroups), ``target_names``,
``feature_names`` and a short ``DESCR``. Labels are integers ``0 .. n_classes-1``.
"""

import json
import lzma
import os
import tarfile
from numbers import Integral
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.datasets import fetch_20newsgroups, fetch_openml, load_digits, load_files
from sklearn.datasets._twenty_newsgroups import (
    strip_newsgroup_footer,
    strip_newsgroup_header,
    strip_newsgroup_quoting,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Bunch, check_random_state

__all__ = [
    "get_data_home",
    "load_20newsgroups",
    "load_digits_split",
    "load_isolet",
    "load_openml",
    "load_pokerhand",
]

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


# ------------------------------------------------------------------ 20 Newsgroups
# Each reader returns {split: [(newsgroup, file id, raw text), ...]}.
def _ng_from_jsonl(paths):
    docs = {}
    for split, path in zip(_SPLITS, paths):
        with lzma.open(path, "rt", encoding="utf-8") as f:
            recs = [json.loads(line) for line in f if line.strip()]
        docs[split] = [
            (r["newsgroup"], r["doc_id"].rsplit("/", 1)[-1], r["text"]) for r in recs
        ]
    return docs


def _ng_from_tar(path):
    docs = {split: [] for split in _SPLITS}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if member.isfile() and len(parts) >= 3:
                split = parts[-3].removeprefix("20news-bydate-")
                if split in docs:
                    text = tar.extractfile(member).read().decode("latin-1")
                    docs[split].append((parts[-2], parts[-1], text))
    return docs


def _ng_from_bunches(bunches):
    """From scikit-learn Bunches holding raw texts and their file names."""
    return {
        split: [
            (Path(f).parent.name, Path(f).name, t) for f, t in zip(b.filenames, b.data)
        ]
        for split, b in zip(_SPLITS, bunches)
    }


def _ng_docs(home, download_if_missing):
    folder = home / "20newsgroups"
    jsonl = [folder / f"20news-bydate-{s}.jsonl.xz" for s in _SPLITS]
    tar = folder / "20news-bydate.tar.gz"
    dirs = [folder / f"20news-bydate-{s}" for s in _SPLITS]
    sk_home = os.environ.get("SCIKIT_LEARN_DATA", "~/scikit_learn_data")
    pkz = "20news-bydate_py3.pkz"  # the name fetch_20newsgroups caches under
    caches = [home / pkz, Path(sk_home).expanduser() / pkz]
    if all(p.exists() for p in jsonl):
        return _ng_from_jsonl(jsonl), "local jsonl.xz files"
    if tar.exists():
        return _ng_from_tar(tar), tar.name
    if all(d.is_dir() for d in dirs):
        bunches = [load_files(d, encoding="latin1", shuffle=False) for d in dirs]
        return _ng_from_bunches(bunches), "extracted bydate folders"
    cache = _first(caches)  # scikit-learn's own cache needs no network
    fetch_home = str(home if cache is None else cache.parent)
    how = (
        f"download {_NG_URL} into {folder}, or run "
        f"sklearn.datasets.fetch_20newsgroups(data_home={str(home)!r})"
    )
    bunches = [
        _download(
            lambda s=s: fetch_20newsgroups(
                data_home=fetch_home, subset=s, shuffle=False
            ),
            download_if_missing or cache is not None,
            "20 Newsgroups",
            [*jsonl, tar, *dirs, *caches],
            how,
        )
        for s in _SPLITS
    ]
    return _ng_from_bunches(bunches), "scikit-learn fetch_20newsgroups"


def _ng_key(doc):
    return doc[0], (0, int(doc[1])) if doc[1].isdigit() else (1, doc[1])


def load_20newsgroups(
    data_home=None,
    *,
    max_features=None,
    vectorizer_params=None,
    download_if_missing=True,
):
    """Load 20 Newsgroups (bydate split) as TF-IDF features.

    Headers, footers and quotes are removed with scikit-learn's own functions, so
    the texts equal ``fetch_20newsgroups(remove=('headers', 'footers', 'quotes'))``.
    A TfidfVectorizer with ``stop_words='english'`` is fitted on the training texts
    only. Sources, in order, under ``<data_home>/20newsgroups/``:
    ``20news-bydate-{train,test}.jsonl.xz`` (records with ``newsgroup``, ``doc_id``
    and the raw latin-1 ``text``), the original ``20news-bydate.tar.gz``, its
    extracted ``20news-bydate-{train,test}/`` folders; then scikit-learn's
    ``20news-bydate_py3.pkz`` cache (in ``data_home`` or scikit-learn's data home);
    then ``fetch_20newsgroups(data_home=data_home)``. Documents are ordered by
    newsgroup, then file id, whatever the source.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    max_features : int, default=None
        Vocabulary size limit of the vectorizer.
    vectorizer_params : dict, default=None
        Extra TfidfVectorizer arguments; they override the defaults
        ``stop_words='english', dtype=np.float32``.
    download_if_missing : bool, default=True
        Download with scikit-learn when no local copy is found.

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (CSR), ``y_train, y_test`` (int64), ``target_names``
        (the 20 sorted newsgroup names, as scikit-learn orders them),
        ``feature_names``, the fitted ``vectorizer``, the cleaned
        ``texts_train, texts_test`` and ``DESCR``.
    """
    if vectorizer_params is not None and not isinstance(vectorizer_params, dict):
        raise TypeError(f"vectorizer_params must be a dict, got {vectorizer_params!r}")
    docs, source = _ng_docs(get_data_home(data_home), download_if_missing)
    names = sorted({d[0] for split in _SPLITS for d in docs[split]})
    index = {name: i for i, name in enumerate(names)}
    out = Bunch(target_names=names)
    for split in _SPLITS:
        ordered = sorted(docs[split], key=_ng_key)
        out[f"y_{split}"] = np.array([index[d[0]] for d in ordered], dtype=np.int64)
        out[f"texts_{split}"] = [
            strip_newsgroup_quoting(
                strip_newsgroup_footer(strip_newsgroup_header(d[2]))
            )
            for d in ordered
        ]
    params = {"stop_words": "english", "dtype": np.float32, **(vectorizer_params or {})}
    if max_features is not None:
        params["max_features"] = max_features
    vec = TfidfVectorizer(**params)
    out.X_train = sp.csr_matrix(vec.fit_transform(out.texts_train))
    out.X_test = sp.csr_matrix(vec.transform(out.texts_test))
    out.vectorizer, out.feature_names = vec, vec.get_feature_names_out()
    out.DESCR = (
        f"20 Newsgroups bydate ({source}): {len(out.y_train)} train / "
        f"{len(out.y_test)} test documents, {len(names)} classes. Headers, footers "
        "and quotes removed (scikit-learn's strip_newsgroup_* functions); TF-IDF "
        f"(stop_words='english', {out.X_train.shape[1]} features) fitted on train."
    )
    return out


# ------------------------------------------------------------------------- ISOLET
_ISOLET_GROUPS = (  # one file per group: isolet5_test.csv.gz holds isolet5's rows
    ("isolet1+2+3+4.data", "isolet1+2+3+4.data.gz"),
    ("isolet5.data", "isolet5.data.gz", "isolet5_test.csv.gz"),
)


def load_isolet(
    data_home=None, *, test_size=0.2, random_state=0, download_if_missing=True
):
    """Load ISOLET (spoken letters: 617 features, 26 classes A-Z).

    Local files in ``<data_home>/isolet/``: UCI's ``isolet1+2+3+4.data`` and
    ``isolet5.data`` (or ``.gz``; UCI ships ``.Z`` files, which ``gzip -d``
    decompresses), or ``isolet5_test.csv.gz`` (617 features then the label 1-26;
    the rows of ``isolet5.data``). Every group found is used and ``DESCR`` says
    how many rows were found. Without local files, OpenML ``isolet`` (data_id
    300) is fetched. As in paper 001 the rows are split 80/20 stratified and
    standardized by a StandardScaler fitted on the training part only.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    test_size : float or int, default=0.2
        Test fraction (or count) of the stratified split.
    random_state : int, RandomState instance or None, default=0
        Seed of the split.
    download_if_missing : bool, default=True
        Fetch OpenML data_id 300 when no local file is found.

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (float32), ``y_train, y_test`` (0 = A ... 25 = Z),
        ``target_names``, ``feature_names`` and ``DESCR``.
    """
    home = get_data_home(data_home)
    folder = home / "isolet"
    files = [_first(folder / n for n in names) for names in _ISOLET_GROUPS]
    blocks = [(p.name, _read_csv(p)) for p in files if p is not None]
    if blocks:
        data = np.vstack([b for _, b in blocks])
        X, labels = data[:, :-1].astype(np.float32), data[:, -1]
        found = ", ".join(f"{name}: {len(b)} rows" for name, b in blocks)
        feature_names = [f"f{i + 1}" for i in range(X.shape[1])]
    else:
        paths = [folder / n for names in _ISOLET_GROUPS for n in names]
        how = (
            f"download the UCI files from {_ISOLET_URL} into {folder}, or run "
            f"sklearn.datasets.fetch_openml(data_id=300, data_home={str(home)!r})"
        )
        X, labels, feature_names = _fetch_openml(
            300, home, download_if_missing, "ISOLET", paths, how
        )
        found = "OpenML data_id 300"
    labels = np.asarray(labels).astype(np.float64)
    if not np.all(np.isin(labels, np.arange(1, 27))):
        raise ValueError("ISOLET labels must be the integers 1..26 (A..Z).")
    descr = (
        f"ISOLET: {len(labels)} rows found ({found}). Stratified split (test_size="
        f"{test_size}, random_state={random_state}); StandardScaler fitted on train."
    )
    letters = [chr(ord("A") + i) for i in range(26)]
    y = labels.astype(np.int64) - 1
    out = _split(X, y, test_size, random_state, True)
    out.target_names, out.feature_names, out.DESCR = letters, feature_names, descr
    return out


# ------------------------------------------------------------------------- OpenML
def load_openml(
    data_id,
    data_home=None,
    *,
    test_size=0.2,
    random_state=0,
    scale=True,
    download_if_missing=True,
):
    """Load an OpenML classification dataset with a stratified train/test split.

    Uses ``fetch_openml(data_id=data_id, as_frame=False, parser="auto")`` with its
    cache under ``<data_home>/openml``. Non-numeric feature columns are
    ordinal-coded (sorted categories; missing values stay NaN). Labels are encoded
    0..C-1, numeric labels in numeric order.

    Parameters
    ----------
    data_id : int
        OpenML dataset id.
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    test_size : float or int, default=0.2
        Test fraction (or count) of the stratified split.
    random_state : int, RandomState instance or None, default=0
        Seed of the split.
    scale : bool, default=True
        Standardize with a StandardScaler fitted on the training part only.
    download_if_missing : bool, default=True
        Download when the dataset is not in the OpenML cache.

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (float32), ``y_train, y_test``, ``target_names``,
        ``feature_names`` and ``DESCR``.
    """
    if isinstance(data_id, bool) or not isinstance(data_id, Integral):
        raise TypeError(f"data_id must be an int, got {data_id!r}.")
    home = get_data_home(data_home)
    how = (
        f"run sklearn.datasets.fetch_openml(data_id={data_id}, data_home={str(home)!r})"
    )
    what, paths = f"OpenML dataset {data_id}", [_openml_cached(home, data_id)]
    X, target, feature_names = _fetch_openml(
        int(data_id), home, download_if_missing, what, paths, how
    )
    y, target_names = _encode_labels(target)
    descr = (
        f"OpenML data_id {data_id}: {len(y)} rows, {X.shape[1]} features, "
        f"{len(target_names)} classes. Stratified split (test_size={test_size}, "
        f"random_state={random_state}); "
        + ("StandardScaler fitted on train." if scale else "not scaled.")
    )
    out = _split(X, y, test_size, random_state, scale)
    out.target_names, out.feature_names, out.DESCR = target_names, feature_names, descr
    return out


# --------------------------------------------------------------------- Poker hand
_POKER_CLASSES = (
    "nothing,one pair,two pairs,three of a kind,straight,flush,full house,"
    "four of a kind,straight flush,royal flush"
).split(",")


def _poker_files(folder):
    train = _first(folder / f"poker-hand-training-true.data{z}" for z in ("", ".gz"))
    tests = [folder / f"poker-hand-testing.data{z}" for z in ("", ".gz")]
    tests += sorted(folder.glob("poker-hand-testing*.data*"))
    test = _first(p for p in tests if p.name.endswith((".data", ".data.gz")))
    return train, test  # one test file: a prefix copy would overlap the full one


def load_pokerhand(
    data_home=None,
    *,
    n_train=None,
    n_test=None,
    test_size=0.2,
    random_state=0,
    scale=True,
    source="auto",
    download_if_missing=True,
):
    """Load Poker Hand as in paper 001 (OpenML 155, "pokerhand-normalized").

    ``source='openml'`` fetches OpenML 155 (829,201 rows; MOA's normalized
    ``poker-lsn`` version). ``source='uci'`` reads the UCI files in
    ``<data_home>/pokerhand/``: ``poker-hand-training-true.data(.gz)`` and one
    ``poker-hand-testing*.data(.gz)`` (e.g. ``.first99999.data.gz``), pooled.
    ``'auto'`` uses the OpenML cache if present, else the UCI files, else
    downloads OpenML 155. Rows are split 80/20 stratified (the paper's protocol
    for OpenML 155), optionally subsampled uniformly, then standardized on train.

    UCI rows get OpenML 155's encoding as far as it could be established offline:
    OpenML 155 keeps the suits ``s1..s5`` as nominal attributes (values 1-4, kept
    as codes here) and the ranks ``r1..r5`` as reals in [0, 1] (river's loader for
    the same 829,201-row ``poker-lsn`` file reads suits as int, ranks as float).
    The exact rank formula is unverified; we use ``(rank - 1) / 12`` (min-max, as
    MOA/Weka's Normalize filter). With ``scale=True`` (the paper's StandardScaler)
    any affine rank scaling yields the same features. OpenML 155 also has fewer
    rows than UCI (829,201 of 1,025,010), presumably from dropping duplicate hands;
    that is not reproduced here.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    n_train, n_test : int, default=None
        Keep a uniform random subsample of this many training / test rows.
    test_size : float or int, default=0.2
        Test fraction (or count) of the stratified split.
    random_state : int, RandomState instance or None, default=0
        Seed of the split and of the subsampling.
    scale : bool, default=True
        Standardize with a StandardScaler fitted on the kept training rows.
    source : {'auto', 'openml', 'uci'}, default='auto'
        Where to read the data from (see above).
    download_if_missing : bool, default=True
        Download OpenML 155 when no local copy is found.

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (float32, 10 features), ``y_train, y_test`` (0 nothing
        in hand ... 9 royal flush), ``target_names``, ``feature_names``, ``DESCR``.
    """
    if source not in ("auto", "openml", "uci"):
        raise ValueError(f"source must be 'auto', 'openml' or 'uci', got {source!r}.")
    home = get_data_home(data_home)
    folder = home / "pokerhand"
    train_file, test_file = _poker_files(folder)
    files = [p for p in (train_file, test_file) if p is not None]
    cached = _openml_cached(home, 155).exists()
    names = [f"{k}{i}" for i in range(1, 6) for k in ("s", "r")]
    uci_paths = [
        folder / "poker-hand-training-true.data(.gz)",
        folder / "poker-hand-testing*.data(.gz)",
    ]
    if source == "uci" or (source == "auto" and train_file and not cached):
        if train_file is None:
            how = f"download them from {_POKER_URL} into {folder}"
            raise _missing("Poker Hand UCI files", uci_paths, how)
        data = np.vstack([_read_csv(p) for p in files])
        X, y = data[:, :10].astype(np.float32), data[:, 10].astype(np.int64)
        X[:, 1::2] = (X[:, 1::2] - 1) / 12  # ranks 1..13 -> [0, 1]
        what = "UCI files " + ", ".join(p.name for p in files)
        what += "; suits as codes 1-4, ranks (r - 1) / 12"
    else:
        how = (
            f"run sklearn.datasets.fetch_openml(data_id=155, data_home={str(home)!r})"
            f", or put the UCI files from {_POKER_URL} into {folder}"
        )
        paths = [_openml_cached(home, 155), *uci_paths]
        X, target, names = _fetch_openml(
            155, home, download_if_missing, "Poker Hand", paths, how
        )
        y, what = np.asarray(target).astype(np.float64).astype(np.int64), "OpenML 155"
    out = _split(X, y, test_size, random_state, scale, n_train, n_test)
    out.feature_names, out.target_names = names, list(_POKER_CLASSES)
    out.DESCR = (
        f"Poker Hand ({what}; {len(y)} rows pooled). Stratified split "
        f"(test_size={test_size}), {len(out.y_train)} "
        f"train / {len(out.y_test)} test rows kept; "
        + ("StandardScaler fitted on train." if scale else "not scaled.")
    )
    return out


# ------------------------------------------------------------------------- digits
def load_digits_split(*, test_size=0.25, random_state=0):
    """Load scikit-learn's shipped 8x8 digits, scaled to [0, 1], split stratified.

    Parameters
    ----------
    test_size : float or int, default=0.25
        Test fraction (or count) of the stratified split.
    random_state : int, RandomState instance or None, default=0
        Seed of the split.

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (float32, 64 pixels divided by 16), ``y_train,
        y_test``, ``target_names``, ``feature_names``, ``images_shape``, ``DESCR``.
    """
    digits = load_digits()
    X, y = (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)
    descr = (
        "scikit-learn digits (1,797 8x8 images shipped with scikit-learn), pixels "
        f"divided by 16; stratified split (test_size={test_size}, "
        f"random_state={random_state})."
    )
    out = _split(X, y, test_size, random_state, False)
    out.target_names = [str(t) for t in digits.target_names]
    out.feature_names, out.images_shape = list(digits.feature_names), (8, 8)
    out.DESCR = descr
    return out
