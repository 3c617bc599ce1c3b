"""Tabular data sets: ISOLET, OpenML, poker hand, digits."""

from numbers import Integral

import numpy as np
from sklearn.datasets import load_digits

from ._base import (
    _ISOLET_URL,
    _POKER_URL,
    _encode_labels,
    _fetch_openml,
    _first,
    _missing,
    _openml_cached,
    _read_csv,
    _split,
    get_data_home,
    shared_docs,
)

# ------------------------------------------------------------------------- ISOLET
_ISOLET_GROUPS = (  # one file per group: isolet5_test.csv.gz holds isolet5's rows
    ("isolet1+2+3+4.data", "isolet1+2+3+4.data.gz"),
    ("isolet5.data", "isolet5.data.gz", "isolet5_test.csv.gz"),
)


@shared_docs
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
    {data_home}
    {test_size}
    {random_state_split}
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
@shared_docs
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
    {data_home}
    {test_size}
    {random_state_split}
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


@shared_docs
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
    {data_home}
    n_train, n_test : int, default=None
        Keep a uniform random subsample of this many training / test rows.
    {test_size}
    {random_state_split_subsampling}
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
@shared_docs
def load_digits_split(*, test_size=0.25, random_state=0):
    """Load scikit-learn's shipped 8x8 digits, scaled to [0, 1], split stratified.

    Parameters
    ----------
    test_size : float or int, default=0.25
        Test fraction (or count) of the stratified split.
    {random_state_split}

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
