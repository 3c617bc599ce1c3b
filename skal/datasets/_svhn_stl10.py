"""Image sets stored as whole arrays: SVHN (MATLAB ``.mat``) and STL-10 (raw binary)."""

import numpy as np
from sklearn.utils import check_random_state

from ._base import _missing, get_data_home, shared_docs
from ._image_files import (
    _bunch,
    _check_counts,
    _read_members,
    _resize,
    _result,
    _subsample,
)

_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/ (train_32x32.mat, test_32x32.mat)"
_STL10_URL = "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"


# --------------------------------------------------------------------------- SVHN
@shared_docs
def load_svhn(data_home=None, *, n_train=None, n_test=None, random_state=0):
    """Load SVHN cropped digits (Netzer et al., 2011), train split only (no extra).

    Reads ``<data_home>/svhn/train_32x32.mat`` and ``test_32x32.mat`` with
    :func:`scipy.io.loadmat` (arrays ``X`` of shape 32 x 32 x 3 x N and ``y`` with
    labels 1..10, 10 meaning digit 0, mapped to 0). Paper 001 uses a uniform
    subsample of 25,000 training images (``n_train=25000``).

    Parameters
    ----------
    {data_home}
    {n_train_n_test}
    {random_state_subsampling}

    Returns
    -------
    data : Bunch
        ``X_train`` (73,257 x 32 x 32 x 3 uint8), ``y_train`` (digits 0-9),
        ``X_test`` (26,032), ``y_test``, ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    from scipy.io import loadmat

    folder = get_data_home(data_home) / "svhn"
    paths = [folder / "train_32x32.mat", folder / "test_32x32.mat"]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise _missing("SVHN", missing, f"download from {_SVHN_URL} into {folder}")
    arrays = []
    for path in paths:
        mat = loadmat(path)
        X = np.ascontiguousarray(mat["X"].transpose(3, 0, 1, 2), dtype=np.uint8)
        arrays += [X, mat["y"].ravel().astype(np.int64) % 10]
    return _bunch(
        *arrays,
        [str(d) for d in range(10)],
        "SVHN cropped digits (Netzer et al., 2011), train and test .mat files.",
        n_train,
        n_test,
        random_state,
    )


# ------------------------------------------------------------------------- STL-10
@shared_docs
def load_stl10(data_home=None, *, size=32, n_train=None, n_test=None, random_state=0):
    """Load STL-10 (Coates et al., 2011), labeled train/test, resized to 32x32.

    Reads the binary files ``train_X.bin, train_y.bin, test_X.bin, test_y.bin``
    and ``class_names.txt`` from ``<data_home>/stl10/stl10_binary/`` (or directly
    from ``<data_home>/stl10/``, or from the official ``stl10_binary.tar.gz``
    there). Images are 96x96, stored column-major; labels 1..10 become 0..9. The
    unlabeled split is not read.

    Parameters
    ----------
    {data_home}
    size : int or None, default=32
        Resize to ``size x size`` (paper 001 resizes every image to 32x32); None
        keeps 96x96.
    {n_train_n_test}
    {random_state_subsampling}

    Returns
    -------
    data : Bunch
        ``X_train`` (5,000 x size x size x 3 uint8), ``y_train``, ``X_test``
        (8,000), ``y_test``, ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    folder = get_data_home(data_home) / "stl10"
    names = [f"{split}_{xy}.bin" for split in ("train", "test") for xy in "Xy"]
    names.append("class_names.txt")
    if (folder / "train_X.bin").is_file():  # files extracted without their folder
        files = _read_members(folder.parent, folder.name, "", names)
    else:
        files = _read_members(folder, "stl10_binary", "stl10_binary.tar.gz", names)
    if files is None:
        raise _missing(
            "STL-10 (binary version)",
            [folder / "stl10_binary", folder / "stl10_binary.tar.gz"],
            f"download {_STL10_URL} into {folder} and extract it",
        )
    arrays = []
    for split in ("train", "test"):
        X = np.frombuffer(files[f"{split}_X.bin"], dtype=np.uint8)
        # Column-major 3 x 96 x 96 per image: transpose (C, W, H) to (H, W, C).
        X = X.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)
        y = np.frombuffer(files[f"{split}_y.bin"], dtype=np.uint8).astype(np.int64) - 1
        arrays.append((X, y))
    names = [n.strip() for n in files["class_names.txt"].decode().splitlines()]
    names = [n for n in names if n]
    rng = check_random_state(random_state)
    # Subsample before resizing: resizing is the slow part.
    parts = []
    for (X, y), n in zip(arrays, (n_train, n_test)):
        keep = _subsample(len(y), n, rng)
        parts.append((X[keep], y[keep]))
    (X_tr, y_tr), (X_te, y_te) = parts
    return _result(
        _resize(X_tr, size),
        y_tr,
        _resize(X_te, size),
        y_te,
        names,
        f"STL-10 (Coates et al., 2011), labeled binary splits, resized to {size}.",
    )
