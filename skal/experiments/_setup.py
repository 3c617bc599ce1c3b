"""What ``skal bench`` runs on: the benchmark datasets and models of paper 001.

Datasets are loaded by name (:func:`load_benchmark_data`) and split into a fixed
validation split and the pool (:func:`split_pool`); models are built by name
(:func:`make_model`): the 512-256 MLP of the text/tabular experiments and the
CNNs (LeNet, VGG-16, ResNet-18 with the (512, 256) head) of the image ones.
"""

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

MLP_NAME = "mlp512-256"
#: Model names of ``skal bench --model`` -> the name recorded in the results.
MODELS = {"mlp": MLP_NAME, "lenet": "lenet", "vgg16": "vgg16", "resnet18": "resnet18"}


# ------------------------------------------------------------------------- data
def _load_20newsgroups(data_home, max_features):
    from ..datasets import load_20newsgroups

    return load_20newsgroups(data_home, max_features=max_features)


def _load_isolet(data_home, max_features):
    from ..datasets import load_isolet

    return load_isolet(data_home)


def _load_pokerhand(data_home, max_features):
    from ..datasets import load_pokerhand

    return load_pokerhand(data_home)


def _load_digits(data_home, max_features):
    from ..datasets import load_digits_split

    return load_digits_split()


def _load_mnist(data_home, max_features):
    from ..datasets import load_mnist

    return load_mnist(data_home)


def _load_cifar10(data_home, max_features):
    from ..datasets import load_cifar10

    return load_cifar10(data_home)


def _load_cifar10_test(data_home, max_features):
    from ..datasets import load_cifar10_test_jpeg

    return load_cifar10_test_jpeg(data_home)


# name -> loader(data_home, max_features); every loader returns X/y train/test.
_LOADERS = {
    "20newsgroups": _load_20newsgroups,
    "isolet": _load_isolet,
    "pokerhand": _load_pokerhand,
    "digits": _load_digits,
    "mnist": _load_mnist,
    "cifar10": _load_cifar10,
    "cifar10_test": _load_cifar10_test,
}
#: Datasets of images (uint8 N x H x W x C); the MLP sees them flattened.
IMAGE_DATASETS = ("mnist", "cifar10", "cifar10_test")


def available_datasets():
    """Names of the benchmark datasets known to :func:`load_benchmark_data`.

    Returns
    -------
    names : list of str
        ``20newsgroups`` (TF-IDF, sparse), ``isolet``, ``pokerhand`` (the tabular
        sets of paper 001), ``digits`` (scikit-learn's, for quick checks) and the
        images ``mnist`` (the IDX files, or offline the 5k training subset with the
        t10k test set), ``cifar10`` (the official python batches) and
        ``cifar10_test`` (the offline JPEG copy of the CIFAR-10 test set, split
        8,000 / 2,000; see :func:`skal.datasets.load_cifar10_test_jpeg`).
    """
    return sorted(_LOADERS)


def split_pool(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    validation_size=0.1,
    pool_size=None,
    random_state=0,
):
    """Split a training set into a validation split and the unlabeled pool.

    The validation split is stratified (uniform when a class is too rare to
    stratify) and never enters the pool; the pool is the rest, optionally a
    uniform random subsample of ``pool_size`` rows.

    Parameters
    ----------
    X_train, y_train : array-like or sparse matrix, array-like
        The training split of the dataset.
    X_test, y_test : array-like or sparse matrix, array-like
        The test split, kept as it is.
    validation_size : float or int, default=0.1
        Fraction (or number) of training rows held out for the learning-rate sweep.
    pool_size : int, default=None
        Keep a uniform random subsample of this many pool rows (all if None or
        larger than the pool).
    random_state : int or RandomState, default=0
        Seed of the split and the subsample; fixed per dataset, independent of
        the seeds of the active-learning runs.

    Returns
    -------
    data : Bunch
        ``X_pool, y_pool, X_val, y_val, X_test, y_test``.
    """
    rng = check_random_state(random_state)
    y_train = np.asarray(y_train)
    rows = np.arange(len(y_train))
    _, counts = np.unique(y_train, return_counts=True)
    stratify = y_train if counts.min() >= 2 else None
    try:
        pool, val = train_test_split(
            rows, test_size=validation_size, stratify=stratify, random_state=rng
        )
    except ValueError:  # e.g. fewer validation rows than classes
        pool, val = train_test_split(rows, test_size=validation_size, random_state=rng)
    if pool_size is not None and pool_size < len(pool):
        pool = rng.choice(pool, pool_size, replace=False)
    pool, val = np.sort(pool), np.sort(val)
    return Bunch(
        X_pool=X_train[pool],
        y_pool=y_train[pool],
        X_val=X_train[val],
        y_val=y_train[val],
        X_test=X_test,
        y_test=np.asarray(y_test),
    )


def load_benchmark_data(
    name,
    *,
    data_home=None,
    max_features=None,
    validation_size=0.1,
    pool_size=None,
    random_state=0,
    flatten_images=False,
):
    """Load a benchmark dataset and split it into pool, validation and test.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets`.
    data_home : str or path-like, default=None
        Where the loaders look for the files (see :func:`skal.datasets.get_data_home`).
    max_features : int, default=None
        TF-IDF vocabulary size (20 Newsgroups only).
    validation_size, pool_size, random_state
        See :func:`split_pool`.
    flatten_images : bool, default=False
        Give images as rows of float32 pixels in [0, 1] (for the MLP); by default
        they stay uint8 ``N x H x W x C`` (for the CNNs).

    Returns
    -------
    data : Bunch
        ``X_pool, y_pool, X_val, y_val, X_test, y_test`` and ``DESCR``.
    """
    if name not in _LOADERS:
        raise ValueError(
            f"Unknown dataset {name!r}; available: {', '.join(available_datasets())}."
        )
    raw = _LOADERS[name](data_home, max_features)
    data = split_pool(
        raw.X_train,
        raw.y_train,
        raw.X_test,
        raw.y_test,
        validation_size=validation_size,
        pool_size=pool_size,
        random_state=random_state,
    )
    data.DESCR = raw.get("DESCR", name)
    if flatten_images:
        for key in ("X_pool", "X_val", "X_test"):
            data[key] = flat_pixels(data[key])
    return data


def flat_pixels(X):
    """Images as rows of float32 values in [0, 1] (uint8 pixels / 255).

    Non-image arrays (two dimensions or fewer, or sparse) are returned unchanged.
    """
    if getattr(X, "ndim", 2) <= 2:
        return X
    X = np.asarray(X).reshape(len(X), -1)
    return X.astype(np.float32) / 255 if X.dtype == np.uint8 else X.astype(np.float32)


def _as_split_data(data, **split_params):
    """A user-given dataset as a split Bunch (already split ones are kept)."""
    if isinstance(data, dict) and "X_pool" in data:
        return data
    if isinstance(data, dict):
        data = (data["X_train"], data["y_train"], data["X_test"], data["y_test"])
    return split_pool(*data, **split_params)


# ---------------------------------------------------------------------- models
def make_mlp(*, max_epochs=30, sgd_batch_size=8, lr=0.01, dropout=0.0):
    """The MLP of paper 001 (hidden layers 512 and 256, SGD with momentum 0.9).

    Parameters
    ----------
    max_epochs : int, default=30
        Epochs per training (the paper uses 30-60).
    sgd_batch_size : int, default=8
        SGD mini-batch size (the paper uses 8; larger is faster on CPUs).
    lr : float, default=0.01
        Learning rate (the sweep replaces it).
    dropout : float, default=0.0
        Dropout after each hidden layer. The paper's MLP has none; the
        Monte-Carlo dropout strategies (BALD, ...) need it.

    Returns
    -------
    estimator : skal.nets.MLPClassifier
    """
    return make_model(
        "mlp",
        max_epochs=max_epochs,
        sgd_batch_size=sgd_batch_size,
        lr=lr,
        dropout=dropout,
    )


def make_model(name="mlp", *, max_epochs=30, sgd_batch_size=8, lr=0.01, dropout=0.0):
    """A model of paper 001 by name: the 512-256 MLP or a CNN with that head.

    Parameters
    ----------
    name : {'mlp', 'lenet', 'vgg16', 'resnet18'}, default='mlp'
        ``'mlp'`` is :func:`make_mlp`; the others are
        :class:`skal.nets.CNNClassifier` with that backbone and the (512, 256)
        head (section 4.3), SGD with momentum 0.9.
    max_epochs, sgd_batch_size, lr, dropout
        As in :func:`make_mlp` (the CNN's dropout is in its head).

    Returns
    -------
    estimator : skal.nets.MLPClassifier or skal.nets.CNNClassifier
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; available: {', '.join(MODELS)}.")
    from ..nets import CNNClassifier, MLPClassifier

    training = dict(
        dropout=dropout,
        max_epochs=max_epochs,
        batch_size=sgd_batch_size,
        lr=lr,
        optimizer__momentum=0.9,
    )
    if name == "mlp":
        # Paper 001 trains with plain cross-entropy: switch off MLPClassifier's
        # default label smoothing so the bench keeps the paper's protocol.
        return MLPClassifier(
            hidden_layer_sizes=(512, 256), criterion__label_smoothing=0.0, **training
        )
    return CNNClassifier(name, head=(512, 256), **training)
